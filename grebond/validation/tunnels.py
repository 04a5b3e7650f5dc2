"""A link's tunnels: one GRETAP per underlay path, each with both ends' underlay addresses."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from grebond import model
from grebond.source import LocatedMap
from grebond.validation.names import ENCAPLIMIT_HINT, IFNAMSIZ, TTL_HINT, TUNNEL_KEYS, check_ifname
from grebond.validation.reader import Checker, close_matches, describe

NOT_GIVEN: tuple[bool, int | None] = (False, None)


def encaplimit_of(c: Checker, m: LocatedMap, path: str) -> tuple[bool, int | None]:
    """``encaplimit`` of a link or tunnel: (given, the limit or None for 'none')."""
    if "encaplimit" not in m:
        return NOT_GIVEN
    if m["encaplimit"] == "none":
        return True, None
    value = c.integer(m, "encaplimit", path, 0, 255, None, ENCAPLIMIT_HINT)
    return (True, value) if value is not None else NOT_GIVEN


def tunnels_of(c: Checker, m: LocatedMap, path: str, nodes: list[str], ttl: int | None,
               underlay_mtu: int | None, link_encaplimit: tuple[bool, int | None] = NOT_GIVEN) -> list[model.Tunnel]:
    """The link's tunnels; ``nodes`` are the two ends as declared (empty if 'ends' is itself wrong).
    ``link_encaplimit``: the link's own ``encaplimit``, the default of its IPv6 tunnels."""
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
    copies: dict[str, str] = {}        # copy name -> the tunnel whose weight made it
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
        tttl = c.integer(t, "ttl", tpath, 0, 255, ttl, TTL_HINT)
        tumtu = c.integer(t, "underlay-mtu", tpath, 576, 65535, underlay_mtu,
                          "use the MTU of the WireGuard device this tunnel runs over")
        weight = c.integer(t, "weight", tpath, 1, model.MAX_WEIGHT, 1,
                           f"use 1 to {model.MAX_WEIGHT}: the path's share of packets relative to the others")
        delay = c.delay_us(t, "delay", tpath, model.MAX_DELAY_US)
        given, encaplimit = encaplimit_of(c, t, tpath)
        if given and addrs and addrs[0][1].version == 4:
            c.add(c.line(t, "encaplimit"), f"{tpath}.encaplimit", "only applies to IPv6 (ip6gretap) tunnels",
                  "remove it")
        elif not given:
            encaplimit = link_encaplimit[1]
        if not name_ok or len(c.problems) > before or not addrs or tttl is None or tumtu is None:
            continue
        if tumtu and addrs[0][1].version == 6 and tumtu < 1280:
            c.add(c.line(t, "underlay-mtu") if "underlay-mtu" in t else c.line(m, "underlay-mtu"),
                  f"{tpath}.underlay-mtu", f"{tumtu} is below 1280, the minimum for an IPv6 underlay",
                  "use the MTU of the WireGuard device (1420 by default)")
            continue
        if weight is None or not _copies_fit(c, t, tpath, name, key, weight, tm, copies):
            continue
        for copy, copy_key in model.weight_copies(name, key, weight):
            tunnels.append(model.Tunnel(name=copy, underlay=addrs, ttl=tttl, underlay_mtu=tumtu, key=copy_key,
                                        encaplimit=encaplimit if addrs[0][1].version == 6 else None,
                                        delay_us=delay, copy_of=None if copy == name else name))
    if link_encaplimit[0] and tunnels and all(t.family == 4 for t in tunnels):
        c.add(c.line(m, "encaplimit"), f"{path}.encaplimit", "only applies to IPv6 (ip6gretap) tunnels, and this "
              "link has none", "remove it")
    return tunnels


def check_weights(c: Checker, m: LocatedMap, path: str, mode: model.BondMode, tunnels: list[model.Tunnel]) -> None:
    """Warn where ``weight`` or ``delay`` cannot do what it says in the link's mode.

    A weight gives a path more share by giving it more slaves, which only modes that share packets
    or flows out over the slaves can use (not active-backup or broadcast). A delay evens out round
    trips for a mode that stripes one flow over every tunnel (balance-rr, and tlb/alb which move
    flows between them); where each flow stays on one tunnel it only adds latency."""
    if not tunnels:
        return          # no tunnels made it (the file's 'tunnels' is missing or wrong): said already
    tm = m["tunnels"]
    does = {model.BondMode.ACTIVE_BACKUP: "sends only over one tunnel at a time",
            model.BondMode.BROADCAST: "sends every frame over every tunnel"}
    if mode in does:
        for name in dict.fromkeys(t.copy_of for t in tunnels if t.copy_of):
            what = does[mode] + (", so the copies only duplicate it" if mode is model.BondMode.BROADCAST else "")
            c.add(c.line(tm[name], "weight"), f"{path}.tunnels.{name}.weight",
                  f"has no use in {mode.value} mode, which {what}", "remove weight, or use balance-rr", warning=True)
    if mode.reorders:
        return
    for t in tunnels:
        if t.delay_us and t.copy_of is None:
            c.add(c.line(tm[t.name], "delay"), f"{path}.tunnels.{t.name}.delay",
                  f"only adds latency in {mode.value} mode, which {does.get(mode, 'keeps each flow on one tunnel')}; "
                  "a delay evens out the round trips of a mode that stripes one flow over every tunnel",
                  "remove delay, or use balance-rr", warning=True)


def _copies_fit(c: Checker, t: LocatedMap, tpath: str, name: str, key: int | None, weight: int,
                tm: LocatedMap, copies: dict[str, str]) -> bool:
    """The copies ``weight`` makes have names Linux accepts, keys that fit in 32 bits, and names no
    other tunnel of the link has; each problem is one line at ``weight``."""
    line, where = c.line(t, "weight"), f"{tpath}.weight"
    made = model.weight_copies(name, key, weight)[1:]
    if not made:
        return True
    last_name, last_key = made[-1]
    if len(last_name.encode()) >= IFNAMSIZ:
        c.add(line, where, f"{weight} names copies of '{name}' {', '.join(n for n, _k in made)}, and '{last_name}' "
              f"is {len(last_name.encode())} bytes; Linux allows at most {IFNAMSIZ - 1}",
              f"shorten the tunnel's name to at most {IFNAMSIZ - 2} characters (a copy adds one letter)")
        return False
    if last_key is not None and last_key > 2**32 - 1:
        c.add(line, where, f"{weight} needs keys {key} to {last_key} for '{name}' and its copies, past the largest "
              "GRE key 4294967295", f"use a key of at most {2**32 - weight}")
        return False
    for copy, _k in made:
        other = copies.get(copy) or (copy if copy in tm else None)
        if other is not None:
            what = f"a copy of '{other}' (its weight)" if copy in copies else "another tunnel of this link"
            c.add(line, where, f"{weight} makes a copy of '{name}' named '{copy}', which is already {what}",
                  f"rename '{name}' or '{copy}', or lower the weight")
            return False
    copies.update((copy, name) for copy, _k in made)
    return True


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
