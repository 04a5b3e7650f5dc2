"""Changing the running kernel over netlink (pyroute2): create, converge and delete grebond's devices.

Only this module and ``grebond.kernel.reader`` import pyroute2, and only inside functions, so
renderers and ``grebond --help`` never load it. The code uses the sync ``IPRoute`` API that
behaves the same in Debian's pyroute2 0.7.2 and PyPI's 0.9.x.

Kernel quirks this module works around (see the reference, sections C and D):
- pyroute2 silently drops keyword arguments it does not know, including every bond attribute
  newer than tlb_dynamic_lb: ``arp_missed_max`` is written through sysfs instead.
- ``bond_mode`` must be numeric; strings raise.
- A slave must be DOWN to be enslaved (EPERM otherwise).
- The bond must get its fixed MAC before the first slave, or it takes the slave's MAC and the
  peer's ARP cache goes stale.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from ipaddress import ip_interface
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from grebond.backends.base import Changes
from grebond.errors import SystemAccessError
from grebond.kernel.ethtool import converge_offloads, wanted_offloads
from grebond.kernel.reader import KernelState, LinkState
from grebond.model import ARP_VALIDATE, LACP_RATES, XMIT_HASH_POLICIES, LocalBond, BondMode, LocalTunnel
from grebond.verifier import actual_addresses, actual_tunnel, expected_addresses, expected_bond_options, expected_tunnel

GRE_KEY = 0x2000          # IFLA_GRE_[IO]FLAGS: wire (big-endian) order
IP6GRE_KEY = 0x0020       # IFLA_IP6GRE_[IO]FLAGS are decoded/encoded host-order by pyroute2 (x86: 0x2000 -> 0x0020)
IP6_TNL_F_IGN_ENCAP_LIMIT = 0x1   # ip6gretap "encaplimit none"
IFF_UP = 0x1
IFA_F_NODAD = 0x02


@contextmanager
def ipr() -> Iterator[Any]:
    """An open ``IPRoute``; SystemAccessError when netlink cannot be opened (no pyroute2, no permission)."""
    try:
        from pyroute2 import IPRoute
    except ImportError as exc:  # pragma: no cover - pyroute2 is a dependency
        raise SystemAccessError(f"pyroute2 is not installed: {exc}") from exc
    try:
        handle = IPRoute()
    except RuntimeError as exc:
        # pyroute2 0.9.x: the sync IPRoute refuses to run inside a running asyncio loop
        raise SystemAccessError(f"cannot open netlink here ({exc}); call grebond's kernel code from a "
                                "thread (asyncio.to_thread)") from exc
    except OSError as exc:
        raise SystemAccessError(f"cannot open netlink: {exc}") from exc
    try:
        yield handle
    finally:
        handle.close()


def _index(ip: Any, name: str) -> int | None:
    found = ip.link_lookup(ifname=name)
    return found[0] if found else None


def _netlink_error(action: str, exc: Exception) -> SystemAccessError:
    code = getattr(exc, "code", None)
    text = errno.errorcode.get(code, str(code)) if isinstance(code, int) else ""
    detail = exc.args[1] if len(getattr(exc, "args", ())) > 1 else str(exc)
    hint = "; run as root" if code in (errno.EPERM, errno.EACCES) else ""
    return SystemAccessError(f"{action}: {detail}{f' ({text})' if text else ''}{hint}")


# --- small public helpers (also used by the networkd backend) -------------------------------

def link_exists(name: str) -> bool:
    """True when a network interface called ``name`` exists in this namespace."""
    # sysfs is cheaper than a netlink socket and needs no privileges
    if Path("/sys/class/net", name).exists():
        return True
    with ipr() as ip:
        return _index(ip, name) is not None


def delete_links(names: Iterable[str]) -> list[str]:
    """Delete each named interface that exists; return the names actually deleted, in order.

    Missing names are skipped (deleting a bond can take nothing else with it, but a caller may
    list a name twice or race with a daemon).
    """
    from pyroute2 import NetlinkError

    deleted: list[str] = []
    with ipr() as ip:
        for name in names:
            index = _index(ip, name)
            if index is None:
                continue
            try:
                ip.link("del", index=index)
            except NetlinkError as exc:
                if exc.code == errno.ENODEV:
                    continue
                raise _netlink_error(f"cannot delete {name}", exc) from exc
            deleted.append(name)
    return deleted


def enslave(bond: str, slaves: Sequence[str]) -> None:
    """Make each of ``slaves`` a slave of ``bond`` and bring it up; already-enslaved ones are left alone.

    A device enslaved to another master is moved. The slave is set DOWN first because the
    kernel refuses to enslave an up device ("Device can not be enslaved while up", EPERM).
    """
    from pyroute2 import NetlinkError

    with ipr() as ip:
        bond_index = _index(ip, bond)
        if bond_index is None:
            raise SystemAccessError(f"cannot enslave to {bond}: no such interface")
        for name in slaves:
            index = _index(ip, name)
            if index is None:
                raise SystemAccessError(f"cannot enslave {name} to {bond}: no such interface")
            try:
                _enslave_index(ip, bond_index, index)
            except NetlinkError as exc:
                raise _netlink_error(f"cannot enslave {name} to {bond}", exc) from exc


def _enslave_index(ip: Any, bond_index: int, index: int) -> str | None:
    """Enslave one device by index (and bring it up); what was done, None when nothing."""
    msg = ip.link("get", index=index)[0]
    if msg.get_attr("IFLA_MASTER") == bond_index:
        if not msg["flags"] & 1:
            ip.link("set", index=index, state="up")
            return "set up"
        return None
    if msg.get_attr("IFLA_MASTER"):
        ip.link("set", index=index, master=0)
    ip.link("set", index=index, state="down")
    ip.link("set", index=index, master=bond_index)
    ip.link("set", index=index, state="up")   # bonding opens the slave itself; make it explicit anyway
    return "enslaved"


# --- convergence ----------------------------------------------------------------------------

def _tunnel_kwargs(t: LocalTunnel) -> dict[str, Any]:
    """pyroute2 ``link('add')`` arguments for one tunnel (gretap or ip6gretap)."""
    kw: dict[str, Any] = {"ifname": t.name, "kind": t.kind, "mtu": t.mtu}
    if t.kind == "gretap":
        kw.update(gre_local=str(t.local), gre_remote=str(t.remote), gre_ttl=t.ttl)
        if t.key is not None:   # a key needs both the value and the KEY flag, or the kernel ignores it
            kw.update(gre_ikey=t.key, gre_okey=t.key, gre_iflags=GRE_KEY, gre_oflags=GRE_KEY)
    else:
        # pyroute2 encodes IFLA_IP6GRE_[IO]FLAGS host-order, unlike IFLA_GRE_*
        kw.update(ip6gre_local=str(t.local), ip6gre_remote=str(t.remote), ip6gre_ttl=t.ttl)
        if t.encaplimit is None:
            kw["ip6gre_flags"] = IP6_TNL_F_IGN_ENCAP_LIMIT
        else:
            kw["ip6gre_encap_limit"] = t.encaplimit
        if t.key is not None:
            kw.update(ip6gre_ikey=t.key, ip6gre_okey=t.key, ip6gre_iflags=IP6GRE_KEY, ip6gre_oflags=IP6GRE_KEY)
    return kw


def _bond_kwargs(ip: Any, options: dict[str, Any]) -> dict[str, Any]:
    """pyroute2 ``bond_*`` arguments for the given option values (names as in BondInfo).

    Only options valid in the bond's mode are ever in ``options`` (see
    ``verifier.expected_bond_options``): the kernel answers EACCES to arp_* in 802.3ad/tlb/alb.
    arp_missed_max is not here: pyroute2 would drop it silently; it goes through sysfs.
    """
    kw: dict[str, Any] = {}
    for name, value in options.items():
        if name == "mode":
            kw["bond_mode"] = BondMode(value).number    # numeric: pyroute2 rejects mode names
        elif name == "arp_validate":
            kw["bond_arp_validate"] = ARP_VALIDATE.index(value)
        elif name == "xmit_hash_policy":
            kw["bond_xmit_hash_policy"] = XMIT_HASH_POLICIES.index(value)
        elif name == "lacp_rate":
            kw["bond_ad_lacp_rate"] = LACP_RATES.index(value)
        elif name == "arp_ip_targets":
            kw["bond_arp_ip_target"] = list(value)
        elif name == "primary":
            index = _index(ip, value)
            if index is not None:
                kw["bond_primary"] = index
        elif name != "arp_missed_max":
            kw[f"bond_{name}"] = value
    return kw


def _write_missed_max(bond: str, value: int) -> None:
    path = Path("/sys/class/net", bond, "bonding", "arp_missed_max")
    try:
        path.write_text(f"{value}\n")
    except FileNotFoundError as exc:
        raise SystemAccessError(f"{bond}: this kernel has no arp_missed_max (needs Linux >= 5.17); "
                                "remove missed-max from the model") from exc
    except OSError as exc:
        raise SystemAccessError(f"cannot set {path}: {exc}") from exc


def converge(end: LocalBond, state: KernelState, dry_run: bool = False) -> Changes:
    """Bring one bond and its tunnels to the model, touching only what differs.

    Tunnel endpoints, kind, key and ttl and the bond mode cannot be changed in place reliably,
    so those devices are deleted and created again; every other option is set in place.
    ``state`` is the snapshot read before (``reader.read_state``).
    """
    from pyroute2 import NetlinkError

    changes = Changes()
    try:
        if dry_run:
            _plan(end, state, changes)
            return changes
        with ipr() as ip:
            _converge(ip, end, state, changes)
    except NetlinkError as exc:
        raise _netlink_error(f"{end.name}: {changes.actions[-1] if changes.actions else 'netlink'}", exc) from exc
    return changes


def _tunnel_drift(t: LocalTunnel, link: LinkState | None) -> list[str]:
    if link is None:
        return []
    actual = actual_tunnel(link)
    return [k for k, v in expected_tunnel(t).items() if actual.get(k) != v]


def _bond_drift(end: LocalBond, link: LinkState | None) -> tuple[bool, dict[str, Any]]:
    """(needs recreate, options to set in place) for an existing bond."""
    if link is None:
        return False, {}
    if link.kind != "bond" or link.bond is None or link.bond.mode != end.mode.value:
        return True, {}
    exp = expected_bond_options(end)
    return False, {k: v for k, v in exp.items() if k != "mode" and getattr(link.bond, k) != v}


def _plan(end: LocalBond, state: KernelState, changes: Changes) -> None:
    """What ``_converge`` would do (for --dry-run)."""
    for t in end.tunnels:
        link = state.link(t.name)
        drift = _tunnel_drift(t, link)
        if link is None:
            changes.actions.append(f"create {t.kind} {t.name}")
        elif drift:
            changes.recreated.append(f"{t.name} ({', '.join(drift)} changed)")
    link = state.link(end.name)
    recreate, options = _bond_drift(end, link)
    if link is None:
        changes.actions.append(f"create bond {end.name}")
    elif recreate:
        changes.recreated.append(f"{end.name} (mode changed)")
    elif options:
        changes.actions.append(f"set {end.name} {', '.join(options)}")
    changes.actions += converge_offloads(wanted_offloads(end), dry_run=True).values()


def _converge(ip: Any, end: LocalBond, state: KernelState, changes: Changes) -> None:
    act = changes.actions.append
    # 1. tunnels: create missing, recreate those whose fixed parameters differ
    for t in end.tunnels:
        link = state.link(t.name)
        drift = _tunnel_drift(t, link)
        if link is not None and drift:
            ip.link("del", index=link.index)
            changes.recreated.append(f"{t.name} ({', '.join(drift)} changed)")
        if link is None or drift:
            if link is None:
                act(f"created {t.kind} {t.name}")
            ip.link("add", **_tunnel_kwargs(t))

    # 2. the bond: fixed MAC and MTU at creation, before any slave (or it takes the slave's MAC)
    link = state.link(end.name)
    recreate, options = _bond_drift(end, link)
    if link is not None and recreate:
        ip.link("del", index=link.index)        # releases its slaves
        changes.recreated.append(f"{end.name} (mode changed: {link.bond.mode if link.bond else link.kind} "
                                 f"-> {end.mode.value})")
    expected = expected_bond_options(end)
    fresh = link is None or recreate
    if fresh:
        if link is None:
            act(f"created bond {end.name}")
        no_primary = {k: v for k, v in expected.items() if k != "primary"}   # primary needs its slave first
        ip.link("add", ifname=end.name, kind="bond", address=end.mac, mtu=end.mtu,
                **_bond_kwargs(ip, no_primary))
        options = {k: v for k, v in expected.items() if k in ("primary", "arp_missed_max")}
    bond_index = _index(ip, end.name)
    assert bond_index is not None
    if not fresh and link is not None:
        if (link.mac or "").lower() != end.mac.lower():
            ip.link("set", index=bond_index, address=end.mac)
            act(f"set {end.name} mac {end.mac}")
        if link.mtu != end.mtu:
            ip.link("set", index=bond_index, mtu=end.mtu)     # the bond pushes it onto its slaves
            act(f"set {end.name} mtu {end.mtu}")
    in_place = {k: v for k, v in options.items() if k not in ("primary", "arp_missed_max")}
    if in_place:
        # kind is needed for pyroute2 to encode IFLA_LINKINFO
        ip.link("set", index=bond_index, kind="bond", **_bond_kwargs(ip, in_place))
        if not fresh:
            act(f"set {end.name} " + ", ".join(f"{k} {_fmt(v)}" for k, v in in_place.items()))
    if "arp_missed_max" in options:
        _write_missed_max(end.name, options["arp_missed_max"])
        if not fresh:
            act(f"set {end.name} arp_missed_max {options['arp_missed_max']}")

    # 3. slaves: release extras, enslave ours (down first), fix their MTU
    wanted = {t.name for t in end.tunnels}
    if not fresh:
        for slave in state.slaves_of(end.name):
            if slave.name not in wanted:
                ip.link("set", index=slave.index, master=0)
                act(f"released {slave.name} from {end.name}")
    for t in end.tunnels:
        index = _index(ip, t.name)
        assert index is not None
        done = _enslave_index(ip, bond_index, index)
        if done == "enslaved" and not fresh:
            act(f"enslaved {t.name} to {end.name}")
        elif done == "set up":
            act(f"set {t.name} up")
        msg = ip.link("get", index=index)[0]
        if msg.get_attr("IFLA_MTU") != t.mtu:
            ip.link("set", index=index, mtu=t.mtu)
            act(f"set {t.name} mtu {t.mtu}")
    if "primary" in options:
        ip.link("set", index=bond_index, kind="bond", **_bond_kwargs(ip, {"primary": options["primary"]}))
        if not fresh:
            act(f"set {end.name} primary {options['primary']}")

    # 4. addresses (IPv6 without DAD: the peer is the only other host), extras removed
    have = set(actual_addresses(link)) if link is not None and not recreate else set()
    want = expected_addresses(end)
    for addr in sorted(have - set(want)):
        iface = ip_interface(addr)
        ip.addr("del", index=bond_index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        act(f"removed address {addr} from {end.name}")
    for addr in want:
        if addr in have:
            continue
        iface = ip_interface(addr)
        kw: dict[str, Any] = {"flags": IFA_F_NODAD} if iface.version == 6 else {}
        ip.addr("add", index=bond_index, address=str(iface.ip), prefixlen=iface.network.prefixlen, **kw)
        if not fresh:
            act(f"added address {addr} to {end.name}")

    # 5. offloads (ethtool ioctl), reported for devices that existed before
    created = {t.name for t in end.tunnels if state.link(t.name) is None} | ({end.name} if fresh else set())
    changes.actions += [a for name, a in converge_offloads(wanted_offloads(end)).items() if name not in created]

    # 6. up
    msg = ip.link("get", index=bond_index)[0]
    if not msg["flags"] & IFF_UP:
        ip.link("set", index=bond_index, state="up")
        if not fresh:
            act(f"set {end.name} up")


def _fmt(value: Any) -> str:
    return ",".join(value) if isinstance(value, (list, tuple)) else str(value)


def remove(end: LocalBond, state: KernelState, dry_run: bool = False) -> list[str]:
    """Delete the bond and tunnels of ``end`` that exist (names from the model only)."""
    names = [end.name, *(t.name for t in end.tunnels)]
    present = [n for n in names if state.link(n) is not None]
    return present if dry_run else delete_links(present)
