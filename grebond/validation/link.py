"""One link: its mode, its two ends and their bond addresses, its MTU, and the model built from them."""

from __future__ import annotations

from ipaddress import ip_interface
from typing import Any

from grebond import model, mtu
from grebond.source import LocatedList, LocatedMap
from grebond.validation.bond import monitor, options
from grebond.validation.names import END_KEYS, LINK_KEYS, NODE_NAME_RE, TTL_HINT, check_ifname
from grebond.validation.reader import Checker, describe
from grebond.validation.tunnels import check_weights, encaplimit_of, tunnels_of


def link_of(c: Checker, name: str, raw: Any, parent: LocatedMap) -> model.Link | None:
    path = f"links.{name}"
    ok = check_ifname(c, name, parent.key_lines[name], path, "bond")
    m = c.mapping(raw, path, parent.value_lines[name], LINK_KEYS, "the link's ends, tunnels and options")
    if m is None:
        return None
    errors_before = len([p for p in c.problems if not p.warning])

    mode_name = c.choice(m, "mode", path, tuple(x.value for x in model.BondMode), "balance-rr", numbered=True)
    mode = model.BondMode(mode_name) if mode_name else model.BondMode.BALANCE_RR
    ends = _ends(c, m, path)
    link_ttl = c.integer(m, "ttl", path, 0, 255, model.DEFAULT_TTL, TTL_HINT)
    link_encaplimit = encaplimit_of(c, m, path)
    link_umtu = c.integer(m, "underlay-mtu", path, 576, 65535, model.DEFAULT_UNDERLAY_MTU,
                          "use the MTU of the WireGuard devices the tunnels run over (1420 by default)")
    raw_ends = m.get("ends")
    declared = list(raw_ends) if isinstance(raw_ends, LocatedMap) and len(raw_ends) == 2 else []
    tunnels = tunnels_of(c, m, path, declared, link_ttl, link_umtu, link_encaplimit)
    check_weights(c, m, path, mode, tunnels)
    mon = monitor(c, m, path, mode)
    opts = options(c, m, path, mode, mon, tunnels)
    plaintext = c.boolean(m, "allow-plaintext-underlay", path, False)
    offloads = _offloads(c, m, path)

    # MTU: the smallest tunnel limits the bond; explicit values may only go lower.
    auto_mtu = min((_tunnel_mtu(t) for t in tunnels), default=0)
    mtu_auto = True
    bond_mtu = auto_mtu
    if "mtu" in m and m["mtu"] != "auto":
        value = m["mtu"]
        if isinstance(value, bool) or not isinstance(value, int):
            c.add(c.line(m, "mtu"), f"{path}.mtu", f"must be 'auto' or a number, not {describe(value)}",
                  "write 'mtu: auto' to compute it from the tunnels")
        elif value > auto_mtu and tunnels:
            c.add(c.line(m, "mtu"), f"{path}.mtu",
                  f"{value} is more than the tunnels can carry ({auto_mtu}); larger packets would be lost",
                  f"use 'mtu: auto' or at most {auto_mtu}, or raise underlay-mtu if the underlay really is larger")
        else:
            bond_mtu, mtu_auto = value, False
    if ends and tunnels:
        has_v6 = any(a.version == 6 for e in ends for a in e.addresses)
        # point at the value to change: the explicit mtu, else the underlay-mtu it came from
        where = c.line(m, "mtu" if "mtu" in m else "underlay-mtu" if "underlay-mtu" in m else None)
        # an explicit value is fixed by raising it; an automatic one only by a larger underlay
        raise_it = "raise underlay-mtu" if mtu_auto else "set 'mtu:' to at least {} or 'auto'"
        if has_v6 and bond_mtu < mtu.MIN_MTU_IPV6:
            c.add(where, f"{path}.mtu", f"the bond MTU {bond_mtu} is below 1280, the minimum for IPv6, "
                  "and the bond has IPv6 addresses",
                  raise_it.format(mtu.MIN_MTU_IPV6) + " or remove the IPv6 addresses")
        elif bond_mtu < mtu.MIN_MTU_IPV4:
            c.add(where, f"{path}.mtu", f"the bond MTU {bond_mtu} is below 576, the minimum for IPv4",
                  raise_it.format(mtu.MIN_MTU_IPV4))

    if not ok or len([p for p in c.problems if not p.warning]) > errors_before or len(ends) != 2 or not tunnels:
        return None
    return model.Link(name=name, ends=(ends[0], ends[1]), tunnels=tuple(tunnels), mode=mode, mtu=bond_mtu,
                      mtu_auto=mtu_auto, monitor=mon, options=opts, allow_plaintext_underlay=plaintext,
                      offloads=offloads)


def _offloads(c: Checker, m: LocatedMap, path: str) -> bool | None:
    """``offloads``: on/off (YAML reads them as booleans) or auto (the default): the kernel's choice."""
    value = m.get("offloads", "auto")
    if isinstance(value, bool):
        return value
    if value != "auto":
        shown = f"'{value}'" if isinstance(value, str) else describe(value)
        c.add(c.line(m, "offloads"), f"{path}.offloads", f"{shown} is not auto, on or off",
              "use off (one flow striped per packet in balance-rr), on, or auto (the kernel's choice)")
    return None


def _tunnel_mtu(t: model.Tunnel) -> int:
    return mtu.tunnel_breakdown(t.underlay_mtu, t.family, t.key is not None, t.encaplimit).mtu


def _ends(c: Checker, m: LocatedMap, path: str) -> list[model.End]:
    where = f"{path}.ends"
    if "ends" not in m:
        c.missing(m.line, where, "add 'ends:' with the two nodes and their bond addresses")
        return []
    em = c.mapping(m["ends"], where, c.line(m, "ends"), None, "node -> {addresses: [...]}")
    if em is None:
        return []
    if len(em) != 2:
        c.add(c.line(m, "ends"), where, f"has {len(em)} node(s); a link has exactly two ends",
              "list the two routers this bond joins")
    ends: list[model.End] = []
    for node, raw in em.items():
        npath = f"{where}.{node}"
        if not NODE_NAME_RE.match(node):
            c.add(em.key_lines[node], npath, f"'{node}' is not a valid node name",
                  "use letters, digits, '-', '_' and '.', starting with a letter or digit")
            continue
        end_keys = c.mapping(raw, npath, em.value_lines[node], END_KEYS, "{addresses: [...]}")
        if end_keys is None:
            continue
        addrs = _addresses(c, end_keys, npath)
        if addrs is not None:
            ends.append(model.End(node, tuple(addrs)))
    if len(ends) == 2:
        _check_subnets(c, ends, em, where)
    return ends if len(em) == 2 else []


def _addresses(c: Checker, end_keys: LocatedMap, npath: str) -> list[model.IPInterface] | None:
    where = f"{npath}.addresses"
    raw = end_keys.get("addresses")
    if raw is None:
        c.missing(c.line(end_keys, "addresses"), where, "give the bond's address with prefix, e.g. [10.67.0.1/24]",
                  "missing or empty")
        return None
    lines: list[int | None]
    raw_items: list[Any]
    if isinstance(raw, str):
        raw_items, lines = [raw], [c.line(end_keys, "addresses")]
    elif isinstance(raw, LocatedList):
        raw_items, lines = list(raw), list(raw.item_lines)
    else:
        c.add(c.line(end_keys, "addresses"), where, f"must be a list of addresses, not {describe(raw)}",
              "write [10.67.0.1/24]")
        return None
    if not raw_items:
        c.add(c.line(end_keys, "addresses"), where, "is empty", "give at least one address with prefix, e.g. 10.67.0.1/24")
        return None
    out: list[model.IPInterface] = []
    seen: set[Any] = set()
    for i, (item, line) in enumerate(zip(raw_items, lines)):
        ipath = f"{where}[{i}]"
        if not isinstance(item, str):
            c.add(line, ipath, f"must be an address with prefix, not {describe(item)}", "write it like 10.67.0.1/24")
            continue
        if "/" not in item:
            c.add(line, ipath, f"'{item}' has no prefix length", f"write it with one, e.g. '{item}/24'")
            continue
        try:
            iface = ip_interface(item.strip())
        except ValueError:
            c.add(line, ipath, f"'{item}' is not a valid IP address with prefix", "write it like 10.67.0.1/24 or fd67::1/64")
            continue
        if iface.ip == iface.network.network_address and iface.network.num_addresses > 2:
            c.add(line, ipath, f"'{item}' is the network address of its subnet, not a host address",
                  "use a host address inside the subnet")
            continue
        if iface.ip.is_multicast or iface.ip.is_unspecified or iface.ip.is_loopback:
            c.add(line, ipath, f"'{item}' cannot be a bond address", "use a unicast host address")
            continue
        if iface.ip in seen:
            c.add(line, ipath, f"'{item}' is listed twice", "remove the duplicate")
            continue
        seen.add(iface.ip)
        out.append(iface)
    return out if len(out) == len(raw_items) else None


def _check_subnets(c: Checker, ends: list[model.End], em: LocatedMap, where: str) -> None:
    a, b = ends
    mismatched: set[int] = set()       # families already reported as in different subnets
    for mine, other in ((a, b), (b, a)):
        for addr in mine.addresses:
            line = em.value_lines.get(mine.node)
            if addr.ip in {x.ip for x in other.addresses}:
                if mine is a:
                    c.add(line, where, f"both ends have the bond address {addr.ip}",
                          f"give {b.node} a different address in {addr.network}")
                continue
            same_family = [x for x in other.addresses if x.version == addr.version]
            if not same_family:
                c.add(line, f"{where}.{mine.node}.addresses",
                      f"{mine.node} has the IPv{addr.version} address {addr} but {other.node} has none",
                      f"give {other.node} an address in {addr.network} too, or remove this one")
            elif not any(x.network == addr.network for x in same_family) and addr.version not in mismatched:
                mismatched.add(addr.version)
                c.add(line, f"{where}.{mine.node}.addresses",
                      f"{mine.node}'s {addr} is not in the same subnet as {other.node}'s "
                      f"{', '.join(str(x) for x in same_family)}",
                      "put both ends' bond addresses in one subnet with the same prefix length")
