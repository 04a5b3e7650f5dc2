"""A bond's monitor and options: what the kernel allows in each mode, and the risky choices to warn about."""

from __future__ import annotations

from ipaddress import ip_address

from grebond import model
from grebond.source import LocatedMap
from grebond.validation.names import MAX_ARP_TARGETS, MONITOR_KEYS
from grebond.validation.reader import MISSING, Checker, close_matches, describe


def monitor(c: Checker, m: LocatedMap, path: str, mode: model.BondMode) -> model.Monitor:
    where = f"{path}.monitor"
    raw = m.get("monitor", MISSING)
    mline: int | None
    if raw is MISSING:
        mon = model.Monitor()
        mline = m.line
        if not mode.allows_arp_monitor:
            # ARP monitoring is not allowed in this mode: fall back to what the kernel forces
            mon = model.Monitor(type=model.MonitorType.MII)
    else:
        mline = c.line(m, "monitor")
        mm = c.mapping(raw, where, mline, MONITOR_KEYS, "type, interval, missed-max, validate")
        if mm is None:
            return model.Monitor()
        mtype = model.MonitorType(c.choice(mm, "type", where, tuple(t.value for t in model.MonitorType), "arp") or "arp")
        interval = c.duration_ms(mm, "interval", where, 10, 60_000, model.DEFAULT_MONITOR_INTERVAL_MS)
        missed = c.integer(mm, "missed-max", where, 1, 255, model.DEFAULT_MISSED_MAX)
        validate = c.choice(mm, "validate", where, model.ARP_VALIDATE, "none", lambda s: s.replace("-", "_"))
        targets = _targets(c, mm, where)
        for key in ("missed-max", "validate", "targets"):
            if key in mm and mtype is not model.MonitorType.ARP:
                c.add(mm.key_lines[key], f"{where}.{key}", f"only applies to ARP monitoring, not '{mtype.value}'",
                      "remove it, or set 'type: arp'")
        if mtype is model.MonitorType.NONE and "interval" in mm:
            c.add(mm.key_lines["interval"], f"{where}.interval", "has no meaning with 'type: none'", "remove it")
        if mtype is model.MonitorType.ARP and not mode.allows_arp_monitor:
            c.add(c.line(mm, "type") if "type" in mm else mline, f"{where}.type",
                  f"the kernel does not allow ARP monitoring in {mode.value} mode",
                  "use 'type: mii' with this mode, or use balance-rr or active-backup with ARP")
        if mtype is model.MonitorType.ARP and validate in ("all", "active") and mode is model.BondMode.BALANCE_RR:
            c.add(c.line(mm, "validate"), f"{where}.validate",
                  f"'validate: {validate}' in balance-rr drops every slave: ARP replies come back on another "
                  "tunnel than the request left on", "use 'validate: filter' or 'none'")
        mon = model.Monitor(type=mtype, interval_ms=interval or model.DEFAULT_MONITOR_INTERVAL_MS,
                            missed_max=missed or model.DEFAULT_MISSED_MAX, validate=validate or "none",
                            targets=targets)
    if mon.type is model.MonitorType.NONE:
        c.add(mline, where, "no link monitoring: a dead tunnel stays in the bond and takes its share of packets "
              "(about 2/3 lost with 2 tunnels) until the underlay routing heals", "use 'type: arp' (the default)",
              warning=True)
    elif mon.type is model.MonitorType.MII and mode.allows_arp_monitor:
        c.add(mline, where, "MII monitoring watches carrier, and a GRETAP tunnel never drops carrier, so a dead "
              "path is never detected", "use 'type: arp' (the default)", warning=True)
    return mon


def _targets(c: Checker, mm: LocatedMap, where: str) -> tuple[model.IPAddress, ...] | None:
    """IPv4 targets (probed by ARP) and IPv6 targets (by neighbour solicitation, the kernel's NS
    monitor), at most 16 of each family (BOND_MAX_ARP_TARGETS, BOND_MAX_NS_TARGETS)."""
    if "targets" not in mm:
        return None
    raw = mm["targets"]
    tpath = f"{where}.targets"
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        c.add(c.line(mm, "targets"), tpath, f"must be a list of IP addresses, not {describe(raw)}",
              "leave it out to probe the other end's bond addresses")
        return None
    out: list[model.IPAddress] = []
    for item in items:
        try:
            address = ip_address(str(item).strip())
        except ValueError:
            c.add(c.line(mm, "targets"), tpath, f"'{item}' is not an IP address",
                  "targets are IPv4 (ARP) or IPv6 (neighbour solicitation) addresses without a prefix")
            continue
        if address.is_multicast or address.is_unspecified or address.is_loopback:
            c.add(c.line(mm, "targets"), tpath, f"'{item}' cannot answer a probe", "use a unicast address of the peer")
            continue
        if address.version == 6 and address.is_link_local:
            # the kernel accepts it (since 5.19), but in grebond's lab (Linux 6.1, benchmarks/ns_monitor.py)
            # the NS monitor never marked a slave up with a link-local target, with or without DAD
            c.add(c.line(mm, "targets"), tpath, f"'{item}' is link-local: with such a target the kernel's NS "
                  "monitor never brought a slave up in grebond's tests (Linux 6.1)",
                  "probe the peer's global or unique-local bond address (leave targets out to do so)", warning=True)
        out.append(address)
    for family, word in ((4, "ARP"), (6, "NS")):
        count = sum(1 for a in out if a.version == family)
        if count > MAX_ARP_TARGETS:
            c.add(c.line(mm, "targets"), tpath, f"has {count} IPv{family} targets; the kernel's {word} monitor "
                  f"allows {MAX_ARP_TARGETS}", "remove some")
    return tuple(out) if len(out) == len(items) else None


def options(c: Checker, m: LocatedMap, path: str, mode: model.BondMode, mon: model.Monitor,
             tunnels: list[model.Tunnel]) -> model.BondOptions:
    xmit = c.choice(m, "xmit-hash-policy", path, model.XMIT_HASH_POLICIES, None)
    min_links = c.integer(m, "min-links", path, 0, 255, None)
    pps = c.integer(m, "packets-per-slave", path, 0, 65535, None)
    lacp = c.choice(m, "lacp-rate", path, model.LACP_RATES, None)
    updelay = c.duration_ms(m, "updelay", path, 0, 600_000, None)
    downdelay = c.duration_ms(m, "downdelay", path, 0, 600_000, None)
    primary = m.get("primary")
    # which modes take each option: asked of the mode, the one place that knows
    rules = (
        ("xmit-hash-policy", xmit, [m_ for m_ in model.BondMode if m_.hashes]),
        ("min-links", min_links, [m_ for m_ in model.BondMode if m_.is_lacp]),
        ("packets-per-slave", pps, [m_ for m_ in model.BondMode if m_.takes_packets_per_slave]),
        ("lacp-rate", lacp, [m_ for m_ in model.BondMode if m_.is_lacp]),
        ("primary", primary, [m_ for m_ in model.BondMode if m_.takes_primary]),
    )
    for key, value, modes in rules:
        if value is not None and mode not in modes:
            c.add(c.line(m, key), f"{path}.{key}", f"has no effect in {mode.value} mode",
                  f"remove it, or use mode {' or '.join(x.value for x in modes)}")
    for key, value in (("updelay", updelay), ("downdelay", downdelay)):
        if value and mon.type is not model.MonitorType.MII:
            c.add(c.line(m, key), f"{path}.{key}", "only applies to MII monitoring", "remove it")
        elif value and mon.interval_ms and value % mon.interval_ms:
            c.add(c.line(m, key), f"{path}.{key}", f"must be a multiple of the monitor interval ({mon.interval_ms}ms)",
                  f"use {value // mon.interval_ms * mon.interval_ms}ms")
    if primary is not None:
        names = [t.name for t in tunnels]
        if not isinstance(primary, str) or (names and primary not in names):
            close = close_matches(primary, names, 0.5) if isinstance(primary, str) else []
            shown = f"'{primary}'" if isinstance(primary, str) else describe(primary)
            c.add(c.line(m, "primary"), f"{path}.primary", f"{shown} is not a tunnel of this link",
                  f"did you mean '{close[0]}'?" if close else f"use one of: {', '.join(names)}")
            primary = None
    if mode.kernel_forces_miimon:
        c.add(c.line(m, "mode"), f"{path}.mode",
              f"{mode.value} needs the slaves' link speed, which a GRETAP tunnel does not report, so it may not "
              "spread traffic at all", "use balance-rr (equal paths) or balance-xor (unequal paths)", warning=True)
    elif mode is model.BondMode.ACTIVE_BACKUP and primary is None:
        c.add(c.line(m, "mode"), f"{path}.mode", "each end elects its active tunnel on its own; if they differ, "
              "frames arriving on the inactive tunnel are dropped", "set 'primary:' to the same tunnel on both ends",
              warning=True)
    return model.BondOptions(xmit_hash_policy=xmit, min_links=min_links, packets_per_slave=pps, lacp_rate=lacp,
                             primary=primary, updelay_ms=updelay, downdelay_ms=downdelay)
