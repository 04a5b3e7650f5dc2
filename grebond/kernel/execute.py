"""Carrying out a kernel plan (``grebond.kernel.plan``) over netlink.

Why the encodings are as they are (reference, section C):
- ``bond_mode`` and the other enumerations must be numbers; pyroute2 rejects names.
- pyroute2 silently drops keyword arguments it does not know, including arp_missed_max and the
  NS targets (no IFLA_BOND_MISSED_MAX / IFLA_BOND_NS_IP6_TARGET in any version): both are set by
  ``grebond.kernel.bond_attrs`` in a request of its own, which reads them back.
- A gretap key needs both the key and the KEY flag, or the kernel ignores it; pyroute2 encodes
  the ip6gretap flags host-order, unlike gretap's.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_interface
from typing import Any

from grebond.changes import Changes
from grebond.errors import SystemAccessError
from grebond.kernel.desired import offload_features
from grebond.kernel.netlink import (
    GRE_KEY,
    IFA_F_NODAD,
    IP6_TNL_F_IGN_ENCAP_LIMIT,
    IP6GRE_KEY,
    enslave_index,
    index_of,
    ipr,
    netlink_error,
)
from grebond.kernel.plan import BOND_ATTRS, Op
from grebond.kernel.qdisc import delete_root_qdisc, set_netem
from grebond.model import ARP_VALIDATE, LACP_RATES, XMIT_HASH_POLICIES, BondMode, LocalBond, LocalTunnel


def tunnel_kwargs(t: LocalTunnel) -> dict[str, Any]:
    """pyroute2 ``link('add')`` arguments for one tunnel (gretap or ip6gretap)."""
    kw: dict[str, Any] = {"ifname": t.name, "kind": t.kind, "mtu": t.mtu}
    if t.kind == "gretap":
        kw.update(gre_local=str(t.local), gre_remote=str(t.remote), gre_ttl=t.ttl)
        if t.key is not None:
            kw.update(gre_ikey=t.key, gre_okey=t.key, gre_iflags=GRE_KEY, gre_oflags=GRE_KEY)
    else:
        kw.update(ip6gre_local=str(t.local), ip6gre_remote=str(t.remote), ip6gre_ttl=t.ttl)
        if t.encaplimit is None:
            kw["ip6gre_flags"] = IP6_TNL_F_IGN_ENCAP_LIMIT
        else:
            kw["ip6gre_encap_limit"] = t.encaplimit
        if t.key is not None:
            kw.update(ip6gre_ikey=t.key, ip6gre_okey=t.key, ip6gre_iflags=IP6GRE_KEY, ip6gre_oflags=IP6GRE_KEY)
    return kw


def bond_kwargs(ip: Any, options: dict[str, Any]) -> dict[str, Any]:
    """pyroute2 ``bond_*`` arguments for option values by ``BondInfo`` field.

    Only options valid in the bond's mode are ever asked for (``model.bond_options``): the kernel
    answers EACCES to arp_* in 802.3ad/tlb/alb. ``plan.BOND_ATTRS`` never reach here.
    """
    kw: dict[str, Any] = {}
    for name, value in options.items():
        if name == "mode":
            kw["bond_mode"] = BondMode(value).number
        elif name == "arp_validate":
            kw["bond_arp_validate"] = ARP_VALIDATE.index(value)
        elif name == "xmit_hash_policy":
            kw["bond_xmit_hash_policy"] = XMIT_HASH_POLICIES.index(value)
        elif name == "lacp_rate":
            kw["bond_ad_lacp_rate"] = LACP_RATES.index(value)
        elif name == "arp_ip_targets":
            kw["bond_arp_ip_target"] = list(value)
        elif name == "primary":
            index = index_of(ip, value)
            if index is not None:
                kw["bond_primary"] = index
        else:
            kw[f"bond_{name}"] = value
    return kw


def execute(ops: Sequence[Op], bond: LocalBond) -> Changes:
    """Run ``ops`` (from ``plan_ops(bond, ...)``) in order; what was done, as a user reads it."""
    from pyroute2 import NetlinkError

    from grebond.kernel.desired import expected_bond

    changes = Changes()
    creation = {k: v for k, v in expected_bond(bond).items() if k != "primary" and k not in BOND_ATTRS}
    with ipr() as ip:
        for op in ops:
            try:
                _run(ip, op, bond, creation)
            except NetlinkError as exc:
                raise netlink_error(f"{bond.name}: cannot {op.text(done=False)}", exc) from exc
            if op.shown:
                (changes.recreated if op.recreates else changes.actions).append(
                    op.text(done=True).removeprefix("recreated "))
    return changes


def _run(ip: Any, op: Op, bond: LocalBond, creation: dict[str, Any]) -> None:
    from grebond.kernel.ethtool import set_features

    if op.action in ("create-tunnel", "recreate-tunnel"):
        assert op.tunnel is not None
        if op.action == "recreate-tunnel" and (index := index_of(ip, op.target)) is not None:
            ip.link("del", index=index)
        ip.link("add", **tunnel_kwargs(op.tunnel))
    elif op.action in ("create-bond", "recreate-bond"):
        if op.action == "recreate-bond" and (index := index_of(ip, op.target)) is not None:
            ip.link("del", index=index)         # releases its slaves
        # the fixed MAC and the MTU at creation, before any slave (or it takes the first slave's MAC)
        ip.link("add", ifname=bond.name, kind="bond", address=bond.mac, mtu=bond.mtu, **bond_kwargs(ip, creation))
    elif op.action == "set":
        _set(ip, op)
    elif op.action == "release":
        ip.link("set", index=_need(ip, op.target), master=0)
    elif op.action == "enslave":
        enslave_index(ip, _need(ip, bond.name), _need(ip, op.target))
    elif op.action == "up":
        ip.link("set", index=_need(ip, op.target), state="up")
    elif op.action in ("add-address", "del-address"):
        iface = ip_interface(op.fields[0][2] if op.action == "add-address" else op.fields[0][1])
        kw: dict[str, Any] = {"flags": IFA_F_NODAD} if op.action == "add-address" and iface.version == 6 else {}
        ip.addr("add" if op.action == "add-address" else "del", index=_need(ip, op.target), address=str(iface.ip),
                prefixlen=iface.network.prefixlen, **kw)
    elif op.action == "offloads":
        set_features(op.target, offload_features(op.fields[0][2] == "on"))
    elif op.action == "qdisc":
        assert op.tunnel is not None
        if op.tunnel.delay_us:
            set_netem(ip, _need(ip, op.target), op.tunnel.delay_us)
        else:
            delete_root_qdisc(ip, _need(ip, op.target))
    else:  # pragma: no cover - plan_ops makes no other action
        raise AssertionError(op.action)


def _set(ip: Any, op: Op) -> None:
    index = _need(ip, op.target)
    values = {name: new for name, _old, new in op.fields}
    if "mac" in values:
        ip.link("set", index=index, address=values.pop("mac"))
    if "mtu" in values:
        ip.link("set", index=index, mtu=values.pop("mtu"))   # a bond pushes it onto its slaves
    if any(name in values for name in BOND_ATTRS):
        from grebond.kernel.bond_attrs import set_bond_attrs

        missed = values.pop("arp_missed_max", None)
        targets = values.pop("ns_ip6_targets", None)
        set_bond_attrs(op.target, missed_max=None if missed is None else int(missed), ns_ip6_targets=targets)
    if values:
        # kind is needed for pyroute2 to encode IFLA_LINKINFO
        ip.link("set", index=index, kind="bond", **bond_kwargs(ip, values))


def _need(ip: Any, name: str) -> int:
    index = index_of(ip, name)
    if index is None:
        raise SystemAccessError(f"{name}: no such interface (deleted while grebond was changing it?)")
    return index
