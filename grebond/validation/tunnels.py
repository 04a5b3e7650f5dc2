"""A link's tunnels: one GRETAP per underlay path, each with both ends' underlay addresses."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from grebond import model
from grebond.source import LocatedMap
from grebond.validation.names import TUNNEL_KEYS, check_ifname
from grebond.validation.reader import Checker, close_matches, describe


def tunnels_of(c: Checker, m: LocatedMap, path: str, nodes: list[str], ttl: int | None,
             underlay_mtu: int | None) -> list[model.Tunnel]:
    """The link's tunnels; ``nodes`` are the two ends as declared (empty if 'ends' is itself wrong)."""
    where = f"{path}.tunnels"
    if "tunnels" not in m:
        c.missing(m.line, where, "add 'tunnels:' with one GRETAP tunnel per underlay path")
        return []
    tm = c.mapping(m["tunnels"], where, c.line(m, "tunnels"), None, "tunnel name -> {ends: ...}")
    if tm is None:
        return []
    if not tm:
        c.add(tm.line, where, "is empty", "add one tunnel per underlay path")
        return []
    tunnels: list[model.Tunnel] = []
    for name, raw in tm.items():
        tpath = f"{where}.{name}"
        name_ok = check_ifname(c, name, tm.key_lines[name], tpath, "tunnel")
        t = c.mapping(raw, tpath, tm.value_lines[name], TUNNEL_KEYS, "{ends: {node: address}, ...}")
        if t is None:
            continue
        before = len(c.problems)
        kind = t.get("kind", "gretap")
        if kind in ("gre", "ip6gre"):
            c.add(c.line(t, "kind"), f"{tpath}.kind",
                  f"'{kind}' is a layer-3 tunnel and cannot be a bond slave (a bond carries Ethernet frames)",
                  f"use '{'gretap' if kind == 'gre' else 'ip6gretap'}' (or leave 'kind' out): "
                  "GRETAP carries Ethernet over GRE")
        elif kind not in ("gretap", "ip6gretap"):
            shown = f"'{kind}'" if isinstance(kind, str) else describe(kind)
            c.add(c.line(t, "kind"), f"{tpath}.kind", f"{shown} is not a supported tunnel kind",
                  "leave 'kind' out; grebond uses gretap, or ip6gretap for IPv6 underlay addresses")
        addrs = _tunnel_ends(c, t, tpath, nodes)
        key = None
        if "key" in t:
            key = c.integer(t, "key", tpath, 0, 2**32 - 1, None, "use a decimal number from 1 to 4294967295")
            if key == 0:
                c.add(c.line(t, "key"), f"{tpath}.key", "key 0 means 'no key' to the kernel and networkd",
                      "remove 'key', or use 1 to 4294967295")
        tttl = c.integer(t, "ttl", tpath, 0, 255, ttl, "use 1-255 (255 is the usual; 0 inherits)")
        tumtu = c.integer(t, "underlay-mtu", tpath, 576, 65535, underlay_mtu,
                          "use the MTU of the WireGuard device this tunnel runs over")
        encaplimit = None
        if "encaplimit" in t:
            raw_el = t["encaplimit"]
            if addrs and addrs[0][1].version == 4:
                c.add(c.line(t, "encaplimit"), f"{tpath}.encaplimit", "only applies to IPv6 (ip6gretap) tunnels",
                      "remove it")
            elif raw_el == "none":
                encaplimit = None
            else:
                encaplimit = c.integer(t, "encaplimit", tpath, 0, 255, None,
                                       "use 'none' (the default: saves 8 bytes per packet) or 0-255")
        if not name_ok or len(c.problems) > before or not addrs or tttl is None or tumtu is None:
            continue
        if tumtu and addrs[0][1].version == 6 and tumtu < 1280:
            c.add(c.line(t, "underlay-mtu") if "underlay-mtu" in t else c.line(m, "underlay-mtu"),
                  f"{tpath}.underlay-mtu", f"{tumtu} is below 1280, the minimum for an IPv6 underlay",
                  "use the MTU of the WireGuard device (1420 by default)")
            continue
        tunnels.append(model.Tunnel(name=name, underlay=addrs, ttl=tttl, underlay_mtu=tumtu, key=key,
                                    encaplimit=encaplimit))
    return tunnels


def _tunnel_ends(c: Checker, t: LocatedMap, tpath: str, nodes: list[str]) -> tuple[tuple[str, Any], ...]:
    where = f"{tpath}.ends"
    if "ends" not in t:
        c.missing(t.line, where, "give each end's underlay address: ends: {r1: 10.65.0.1, r2: 10.65.0.2}")
        return ()
    em = c.mapping(t["ends"], where, c.line(t, "ends"), None, "node -> underlay address")
    if em is None:
        return ()
    result: list[tuple[str, Any]] = []
    absent = [n for n in nodes if n not in em]
    for node, raw in em.items():
        if nodes and node not in nodes:
            close = close_matches(node, absent, 0.5)
            fix = f"did you mean '{close[0]}'?" if close else f"the link's ends are {' and '.join(nodes)}"
            if close:
                c.suggested.add(f"{where}:{close[0]}")
            c.add(em.key_lines[node], f"{where}.{node}", f"'{node}' is not an end of this link", fix)
            continue
        if not isinstance(raw, str):
            c.add(em.value_lines[node], f"{where}.{node}", f"must be an IP address, not {describe(raw)}",
                  "write the underlay address, e.g. 10.65.0.2")
            continue
        if "/" in raw:
            c.add(em.value_lines[node], f"{where}.{node}", f"'{raw}' has a prefix length",
                  f"give the address alone: '{raw.split('/')[0]}'")
            continue
        try:
            addr = ip_address(raw.strip())
        except ValueError:
            c.add(em.value_lines[node], f"{where}.{node}", f"'{raw}' is not a valid IP address",
                  "write the underlay address, e.g. 10.65.0.2 or fd65::2")
            continue
        if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
            c.add(em.value_lines[node], f"{where}.{node}", f"'{raw}' cannot be a tunnel endpoint",
                  "use the unicast address of the underlay (WireGuard) interface")
            continue
        result.append((node, addr))
    missing = [n for n in nodes if n not in em]
    for node in missing:
        if f"{where}:{node}" not in c.suggested:
            c.add(c.line(t, "ends"), where, f"has no address for {node}",
                  f"add '{node}: <its underlay address>'; every tunnel joins both ends of the link")
    if len(result) == 2:
        (_n1, a1), (_n2, a2) = result
        if a1.version != a2.version:
            c.add(c.line(t, "ends"), where, f"mixes IPv{a1.version} ({a1}) and IPv{a2.version} ({a2})",
                  "both ends of a tunnel must use the same address family")
            return ()
        if a1 == a2:
            c.add(c.line(t, "ends"), where, f"both ends have the address {a1}", "give each end its own underlay address")
            return ()
    return tuple(result) if len(result) == 2 and not missing else ()
