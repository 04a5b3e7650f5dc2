"""Reading the running kernel into small frozen dataclasses (pyroute2, sync API).

Why a snapshot: the verifier and ``status`` compare plain values, so they can be tested on
hand-made states without a kernel. One link dump, one address dump and one qdisc dump (a
tunnel's delay is its root qdisc) serve every check; only the per-tunnel route lookups cost a
round trip each.

Portable between Debian's pyroute2 0.7.2 and PyPI's 0.9.x: attributes are read with
``get_attr('IFLA_*')`` only (0.7.2's ``msg.get('ifname')`` returns None), and pyroute2 is
imported inside functions so nothing loads it at import time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from ipaddress import ip_address
from typing import Any

from grebond.errors import SystemAccessError
from grebond.kernel.netlink import GRE_KEY, IP6_TNL_F_IGN_ENCAP_LIMIT, IP6GRE_KEY, ipr
from grebond.kernel.qdisc import root_qdiscs
from grebond.kernel.state import (
    IFF_LOWER_UP,
    BondInfo,
    KernelState,
    LinkState,
    QdiscInfo,
    Route,
    SlaveInfo,
    TunnelInfo,
)
from grebond.model import ARP_VALIDATE, LACP_RATES, XMIT_HASH_POLICIES, BondMode

MII_STATUS = ("up", "fail", "down", "back")
SLAVE_STATE = ("active", "backup")
BOND_MODES = tuple(m.value for m in BondMode)


# ------------------------------------------------------------------------------------ reading

def _nested(msg: Any, *names: str) -> Any:
    for name in names:
        if msg is None or isinstance(msg, (str, int)):
            return None
        msg = msg.get_attr(name)
    return msg


def _key(value: Any, flags: Any, flag: int) -> int | None:
    # a key is in force only with the KEY flag; the kernel reports key 0 otherwise
    return int(value or 0) if flags and int(flags) & flag else None


def _tunnel(kind: str, data: Any) -> TunnelInfo | None:
    if data is None:
        return None
    if kind == "gretap":
        p, flag = "IFLA_GRE_", GRE_KEY
    else:  # pyroute2 names ip6gretap attributes IFLA_IP6GRE_* to avoid clashing with gretap's
        p, flag = "IFLA_IP6GRE_", IP6GRE_KEY
    encaplimit: int | None = None
    if kind == "ip6gretap":
        tnl_flags = int(data.get_attr(p + "FLAGS") or 0)
        encaplimit = None if tnl_flags & IP6_TNL_F_IGN_ENCAP_LIMIT else int(data.get_attr(p + "ENCAP_LIMIT") or 0)
    return TunnelInfo(
        local=_addr(data.get_attr(p + "LOCAL")), remote=_addr(data.get_attr(p + "REMOTE")),
        ttl=int(data.get_attr(p + "TTL") or 0),
        ikey=_key(data.get_attr(p + "IKEY"), data.get_attr(p + "IFLAGS"), flag),
        okey=_key(data.get_attr(p + "OKEY"), data.get_attr(p + "OFLAGS"), flag),
        link=int(data.get_attr(p + "LINK") or 0), encaplimit=encaplimit)


def _addr(value: Any) -> str:
    if not value:
        return ""
    try:
        return str(ip_address(value))      # compressed IPv6
    except ValueError:
        return str(value)


def _name_of(table: tuple[str, ...], value: Any, default: str) -> str:
    if value is None:
        return default
    v = int(value)
    return table[v] if 0 <= v < len(table) else str(v)


def _bond(data: Any, names: dict[int, str]) -> BondInfo:
    """What pyroute2 decodes; arp_missed_max and the NS targets come from ``_add_bond_attrs``."""
    g = data.get_attr if data is not None else (lambda _n: None)
    targets = g("IFLA_BOND_ARP_IP_TARGET") or []
    if isinstance(targets, str):
        targets = [targets]
    primary, active = g("IFLA_BOND_PRIMARY"), g("IFLA_BOND_ACTIVE_SLAVE")
    return BondInfo(
        mode=_name_of(BOND_MODES, g("IFLA_BOND_MODE"), "balance-rr"),
        miimon=int(g("IFLA_BOND_MIIMON") or 0),
        arp_interval=int(g("IFLA_BOND_ARP_INTERVAL") or 0),
        arp_ip_targets=tuple(_addr(t) for t in targets),
        arp_validate=_name_of(ARP_VALIDATE, g("IFLA_BOND_ARP_VALIDATE"), "none"),
        updelay=int(g("IFLA_BOND_UPDELAY") or 0),
        downdelay=int(g("IFLA_BOND_DOWNDELAY") or 0),
        xmit_hash_policy=_name_of(XMIT_HASH_POLICIES, g("IFLA_BOND_XMIT_HASH_POLICY"), "layer2"),
        min_links=int(g("IFLA_BOND_MIN_LINKS") or 0),
        packets_per_slave=_int_or(g("IFLA_BOND_PACKETS_PER_SLAVE"), 1),
        lacp_rate=_name_of(LACP_RATES, g("IFLA_BOND_AD_LACP_RATE"), "slow"),
        primary=names.get(int(primary)) if primary else None,
        active_slave=names.get(int(active)) if active else None,
    )


def _int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _link(msg: Any, names: dict[int, str], addrs: dict[int, list[str]], qdiscs: dict[int, QdiscInfo]) -> LinkState:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = _nested(info, "IFLA_INFO_KIND")
    data = _nested(info, "IFLA_INFO_DATA")
    slave_kind = _nested(info, "IFLA_INFO_SLAVE_KIND")
    index = int(msg["index"])
    name = msg.get_attr("IFLA_IFNAME")
    slave = None
    if slave_kind == "bond":
        sd = _nested(info, "IFLA_INFO_SLAVE_DATA")
        if sd is not None:
            slave = SlaveInfo(state=_name_of(SLAVE_STATE, sd.get_attr("IFLA_BOND_SLAVE_STATE"), "active"),
                              mii_status=_name_of(MII_STATUS, sd.get_attr("IFLA_BOND_SLAVE_MII_STATUS"), "up"),
                              link_failure_count=int(sd.get_attr("IFLA_BOND_SLAVE_LINK_FAILURE_COUNT") or 0))
    stats = msg.get_attr("IFLA_STATS64") or msg.get_attr("IFLA_STATS")
    master = msg.get_attr("IFLA_MASTER")
    mac = msg.get_attr("IFLA_ADDRESS")
    return LinkState(
        index=index, name=name, kind=kind, mtu=int(msg.get_attr("IFLA_MTU") or 0),
        mac=mac.lower() if isinstance(mac, str) else None, flags=int(msg["flags"]),
        operstate=str(msg.get_attr("IFLA_OPERSTATE") or "UNKNOWN"),
        carrier=bool(msg.get_attr("IFLA_CARRIER")) if msg.get_attr("IFLA_CARRIER") is not None
        else bool(msg["flags"] & IFF_LOWER_UP),
        master=names.get(int(master)) if master else None,
        addresses=tuple(addrs.get(index, [])),
        tunnel=_tunnel(kind, data) if kind in ("gretap", "ip6gretap") else None,
        bond=_bond(data, names) if kind == "bond" else None,
        slave=slave,
        qdisc=qdiscs.get(index),
        rx_bytes=int(stats["rx_bytes"]) if stats is not None else 0,
        tx_bytes=int(stats["tx_bytes"]) if stats is not None else 0,
        rx_packets=int(stats["rx_packets"]) if stats is not None else 0,
        tx_packets=int(stats["tx_packets"]) if stats is not None else 0,
    )


def _addresses(ip: Any) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for msg in ip.get_addr():
        # On a point-to-point address ('ip addr add LOCAL peer REMOTE', as WireGuard /30s often
        # are) IFA_ADDRESS is the PEER and IFA_LOCAL ours, in IPv4 and IPv6 alike; IFA_LOCAL is
        # absent only on IPv6 addresses without a peer, where IFA_ADDRESS is ours.
        value = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if value:
            out.setdefault(int(msg["index"]), []).append(f"{_addr(value)}/{msg['prefixlen']}")
    return out


def read_state(remotes: Iterable[str] = (), features: Iterable[str] = (), wireguard: bool = False) -> KernelState:
    """Every link with its addresses, plus the route to each of ``remotes``, plus the offload
    features of the links named in ``features`` (one ioctl each: only where the model sets them),
    plus, with ``wireguard``, the peers of every WireGuard device those routes leave through
    (one generic-netlink dump each: for status and metrics, not verify).

    Raises SystemAccessError when netlink cannot be read.
    """
    from pyroute2 import NetlinkError

    try:
        with ipr() as ip:
            state = _read(ip, remotes, features)
    except NetlinkError as exc:
        raise SystemAccessError(f"cannot read the kernel: {exc}") from exc
    if wireguard:
        from grebond.kernel.wireguard import read_peers

        state = replace(state, peers=read_peers(sorted({r.oif for r in state.routes.values()
                                                       if r is not None and r.wireguard and r.oif})))
    return state


def _read(ip: Any, remotes: Iterable[str], features: Iterable[str]) -> KernelState:
    msgs = list(ip.get_links())
    names = {int(m["index"]): m.get_attr("IFLA_IFNAME") for m in msgs}
    addrs = _addresses(ip)
    qdiscs = root_qdiscs(ip)
    links = {}
    for m in msgs:
        link = _link(m, names, addrs, qdiscs)
        links[link.name] = link
    _add_bond_attrs(links)
    _add_features(links, features)
    routes = {r: _route(ip, r, names, links) for r in dict.fromkeys(_addr(str(x)) for x in remotes)}
    return KernelState(links=links, routes=routes)


def _add_bond_attrs(links: dict[str, LinkState]) -> None:
    """arp_missed_max and the NS targets of every bond: pyroute2 decodes neither attribute (30, 31),
    so one more dump, which the kernel filters to bonds, reads them (skipped when there is no bond)."""
    if not any(link.bond is not None for link in links.values()):
        return
    from grebond.kernel.bond_attrs import read_bond_attrs

    for name, attrs in read_bond_attrs().items():
        link = links.get(name)
        if link is not None and link.bond is not None:
            links[name] = replace(link, bond=replace(link.bond, arp_missed_max=attrs.missed_max,
                                                       ns_ip6_targets=attrs.ns_ip6_targets))


def _add_features(links: dict[str, LinkState], names: Iterable[str]) -> None:
    """The offload features of the links in ``names`` (not in the link dump: an ethtool ioctl each)."""
    from grebond.kernel.ethtool import features

    for name in names:
        if name in links:
            try:
                links[name] = replace(links[name], features=features(name))
            except SystemAccessError:
                pass   # gone since the dump; its other checks say so


def _route(ip: Any, dst: str, names: dict[int, str], links: dict[str, LinkState]) -> Route | None:
    from pyroute2 import NetlinkError

    try:
        found = ip.route("get", dst=dst)
    except NetlinkError:   # ENETUNREACH / EHOSTUNREACH: no route
        return None
    if not found:
        return None
    r = found[0]
    oif = r.get_attr("RTA_OIF")
    oif_name = names.get(int(oif)) if oif else None
    link = links.get(oif_name) if oif_name else None
    gw = r.get_attr("RTA_GATEWAY")
    src = r.get_attr("RTA_PREFSRC")
    return Route(dst=_addr(dst), oif=oif_name, oif_kind=link.kind if link else None,
                 gateway=_addr(gw) if gw else None, prefsrc=_addr(src) if src else None)


def route_to(remote: str) -> Route | None:
    """The route the kernel would use towards ``remote`` (a tunnel's far end), or None."""
    return read_state([remote]).routes.get(_addr(remote))


def local_addresses() -> list[str]:
    """Every address on this host (all interfaces), for node auto-detection."""
    with ipr() as ip:
        return [a.split("/")[0] for lst in _addresses(ip).values() for a in lst]
