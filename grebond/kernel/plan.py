"""What to do to the kernel to bring one bond and its tunnels to the model: a pure plan.

``plan_ops(bond, state)`` compares a snapshot with the model and returns the operations in an
order the kernel accepts; ``grebond.kernel.execute`` carries them out. Keeping the decisions
pure means each one is tested on hand-made kernel states, and a dry run shows exactly what the
real run will do.

The order, and why:
1. Tunnels first: a missing one is created; one whose kind, endpoints, key, ttl or encaplimit
   differ is recreated (the kernel cannot change them in place reliably).
2. The bond: created with its fixed MAC and MTU before any slave (or it takes the first slave's
   MAC and the peer's ARP cache goes stale); recreated when its mode differs (the mode can only
   change with no slaves and the bond down); otherwise each option is set in place.
3. Slaves: extras released, ours enslaved (down first: the kernel refuses an up device). When
   the recreates and releases leave the bond with no slave, the kernel gives it a random MAC and
   the first slave enslaved next would hand it its own, so the MAC is set again in between
   (issue 22). A bond pushes its MTU onto a slave when it enslaves it and whenever its own MTU
   changes, so a tunnel's MTU is set only when neither happens.
4. ``primary`` once its tunnel is a slave; addresses (IPv6 without DAD: the peer is the only
   other host); offloads; each tunnel's delay (its netem root qdisc, set or removed); the bond up.
Operations that creating a device implies are carried out but not reported (``shown=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grebond.kernel.desired import (
    actual_addresses,
    actual_offloads,
    delay_drift,
    expected_addresses,
    expected_bond,
    expected_qdisc,
    on_off,
    tunnel_drift,
    wanted_offloads,
)
from grebond.kernel.state import KernelState
from grebond.model import LocalBond, LocalTunnel, format_delay

BOND_ATTRS = ("arp_missed_max", "ns_ip6_targets")
"""Bond fields pyroute2 cannot encode (IFLA_BOND_MISSED_MAX, IFLA_BOND_NS_IP6_TARGET): set by
``grebond.kernel.bond_attrs`` in one request of their own, after the bond exists."""
IN_PLACE_EXCLUDED = ("mode", "primary", *BOND_ATTRS)
"""Bond fields not set with the other options: mode recreates, primary waits for its slave,
``BOND_ATTRS`` go their own way."""


@dataclass(frozen=True)
class Op:
    """One change to the kernel. ``fields`` holds (name, kernel's value, model's value)."""

    action: str
    target: str
    fields: tuple[tuple[str, Any, Any], ...] = ()
    shown: bool = True
    tunnel: LocalTunnel | None = None

    def value(self, name: str) -> Any:
        return next(new for field, _old, new in self.fields if field == name)

    @property
    def recreates(self) -> bool:
        return self.action in ("recreate-tunnel", "recreate-bond")

    def text(self, done: bool) -> str:
        """What a user reads: past tense once done, the plain verb in a dry run (``would`` is added)."""
        verb, rest = _TEXT[self.action](self)
        return f"{verb[done]} {rest}"

    def diff(self) -> list[str]:
        """``subject field: old -> new`` lines for a dry run."""
        if self.action == "create-tunnel" and self.tunnel is not None:
            t = self.tunnel
            key = f" key {t.key}" if t.key is not None else ""
            delay = f" delay {format_delay(t.delay_us)}" if t.delay_us else ""
            return [f"{t.name}: (absent) -> {t.kind} local {t.local} remote {t.remote} ttl {t.ttl}{key} mtu "
                    f"{t.mtu}{delay}"]
        if self.action == "create-bond":
            return [f"{self.target}: (absent) -> bond " + " ".join(f"{k} {_show(v)}" for k, _o, v in self.fields)]
        if self.action in ("enslave", "release"):
            sign = "+" if self.action == "enslave" else "-"
            return [f"{self.fields[0][2] if self.action == 'enslave' else self.fields[0][1]} slaves: {sign}{self.target}"]
        if self.action in ("add-address", "del-address"):
            sign = "+" if self.action == "add-address" else "-"
            return [f"{self.target} addresses: {sign}{self.fields[0][2] or self.fields[0][1]}"]
        return [f"{self.target} {name}: {_show(old)} -> {_show(new)}" for name, old, new in self.fields]


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(none)"
    return str(value)


def _options_text(op: Op) -> str:
    return ", ".join(f"{name} {_show(new)}" for name, _old, new in op.fields)


_TEXT: dict[str, Any] = {
    "create-tunnel": lambda op: (("create", "created"), f"{op.tunnel.kind if op.tunnel else 'tunnel'} {op.target}"),
    "recreate-tunnel": lambda op: (("recreate", "recreated"),
                                   f"{op.target} ({', '.join(f for f, _o, _n in op.fields)} changed)"),
    "create-bond": lambda op: (("create", "created"), f"bond {op.target}"),
    "recreate-bond": lambda op: (("recreate", "recreated"),
                                 f"{op.target} (mode changed: {op.fields[0][1]} -> {op.fields[0][2]})"),
    "set": lambda op: (("set", "set"), f"{op.target} {_options_text(op)}"),
    "release": lambda op: (("release", "released"), f"{op.target} from {op.fields[0][1]}"),
    "enslave": lambda op: (("enslave", "enslaved"), f"{op.target} to {op.fields[0][2]}"),
    "up": lambda op: (("set", "set"), f"{op.target} up"),
    "del-address": lambda op: (("remove", "removed"), f"address {op.fields[0][1]} from {op.target}"),
    "add-address": lambda op: (("add", "added"), f"address {op.fields[0][2]} to {op.target}"),
    "offloads": lambda op: (("set", "set"), f"{op.target} offloads {op.fields[0][2]} (gso, tso, tso6, gro)"),
    "qdisc": lambda op: (("set", "set"), f"{op.target} {_options_text(op)} (its netem root qdisc)")
    if op.tunnel is not None and op.tunnel.delay_us else
    (("remove", "removed"), f"{op.target}'s netem delay {op.fields[0][1]}"),
}


def plan_ops(bond: LocalBond, state: KernelState) -> list[Op]:
    """Every operation that brings ``state`` to ``bond``, in order (empty: nothing differs)."""
    ops: list[Op] = []
    created: set[str] = set()

    # 1. tunnels
    for t in bond.tunnels:
        link = state.link(t.name)
        if link is None:
            ops.append(Op("create-tunnel", t.name, tunnel=t))
            created.add(t.name)
        elif drift := tunnel_drift(t, link):
            ops.append(Op("recreate-tunnel", t.name, tuple((k, old, new) for k, (old, new) in drift.items()),
                          tunnel=t))
            created.add(t.name)

    # 2. the bond
    link = state.link(bond.name)
    expected = expected_bond(bond)
    fresh = link is None or link.kind != "bond" or link.bond is None or link.bond.mode != bond.mode.value
    if link is None:
        # a dry run shows the NS targets with the creation, though they are set right after it (BOND_ATTRS)
        creation = (("mtu", None, bond.mtu), ("mac", None, bond.mac),
                    *((k, None, v) for k, v in expected.items() if k not in ("primary", "arp_missed_max")))
        ops.append(Op("create-bond", bond.name, creation))
    elif fresh:
        old = link.bond.mode if link.bond is not None else link.kind
        ops.append(Op("recreate-bond", bond.name, (("mode", old, bond.mode.value),)))
    bond_mtu_changes = False
    # every slave the bond has goes (recreated or released): the kernel then randomises its MAC
    wanted = {t.name for t in bond.tunnels}
    staying = [s for s in state.slaves_of(bond.name) if s.name in wanted and s.name not in created]
    loses_all = not fresh and not staying and bool(state.slaves_of(bond.name))
    if fresh:
        if attrs := tuple((k, None, expected[k]) for k in BOND_ATTRS if k in expected):
            ops.append(Op("set", bond.name, attrs, shown=False))
    else:
        assert link is not None and link.bond is not None
        if (link.mac or "").lower() != bond.mac.lower() and not loses_all:
            ops.append(Op("set", bond.name, (("mac", link.mac, bond.mac),)))
        if link.mtu != bond.mtu:
            ops.append(Op("set", bond.name, (("mtu", link.mtu, bond.mtu),)))
            bond_mtu_changes = True
        in_place = tuple((k, getattr(link.bond, k), v) for k, v in expected.items()
                         if k not in IN_PLACE_EXCLUDED and getattr(link.bond, k) != v)
        if in_place:
            ops.append(Op("set", bond.name, in_place))
        if attrs := _attrs_drift(expected, link.bond.arp_missed_max, link.bond.ns_ip6_targets):
            ops.append(Op("set", bond.name, attrs))

    # 3. slaves
    if not fresh:
        for slave in state.slaves_of(bond.name):
            if slave.name not in wanted:
                ops.append(Op("release", slave.name, (("master", bond.name, None),)))
    if loses_all:
        assert link is not None
        # after the last slave went and before the first comes: NET_ADDR_SET, which no slave replaces
        before = link.mac if (link.mac or "").lower() != bond.mac.lower() else "random"
        ops.append(Op("set", bond.name, (("mac", before, bond.mac),)))
    for t in bond.tunnels:
        tl = state.link(t.name)
        if fresh or t.name in created or tl is None or tl.master != bond.name:
            ops.append(Op("enslave", t.name, (("master", tl.master if tl else None, bond.name),), shown=not fresh))
            continue
        if not tl.admin_up:
            ops.append(Op("up", t.name))
        if tl.mtu != t.mtu and not bond_mtu_changes:
            ops.append(Op("set", t.name, (("mtu", tl.mtu, t.mtu),)))
    primary = expected.get("primary")
    if primary and (fresh or link is None or link.bond is None or link.bond.primary != primary):
        old_primary = None if fresh or link is None or link.bond is None else link.bond.primary
        ops.append(Op("set", bond.name, (("primary", old_primary, primary),), shown=not fresh))

    # 4. addresses, offloads, up
    have = set() if fresh or link is None else set(actual_addresses(link))
    want = expected_addresses(bond)
    for addr in sorted(have - set(want)):
        ops.append(Op("del-address", bond.name, (("address", addr, None),)))
    for addr in want:
        if addr not in have:
            ops.append(Op("add-address", bond.name, (("address", None, addr),), shown=not fresh))
    for name, on in wanted_offloads(bond).items():
        new_device = name in created or (name == bond.name and fresh)
        device = state.link(name)
        if new_device or device is None or actual_offloads(device) != on_off(on):
            old = None if new_device or device is None else actual_offloads(device)
            ops.append(Op("offloads", name, (("offloads", old, on_off(on)),), shown=not new_device))
    for t in bond.tunnels:
        tl = state.link(t.name)
        if t.name in created or tl is None:
            if t.delay_us:      # a new device has the kernel's default qdisc
                ops.append(Op("qdisc", t.name, tuple((k, None, v) for k, v in expected_qdisc(t.delay_us).items()),
                              shown=False, tunnel=t))
        elif drift := delay_drift(t.delay_us, tl.qdisc):
            ops.append(Op("qdisc", t.name, tuple((k, old, new) for k, (old, new) in drift.items()), tunnel=t))
    if fresh or link is None or not link.admin_up:
        ops.append(Op("up", bond.name, shown=not fresh))
    return ops


def _attrs_drift(expected: dict[str, Any], missed_max: int | None,
                 ns_targets: tuple[str, ...]) -> tuple[tuple[str, Any, Any], ...]:
    """The ``BOND_ATTRS`` that differ. NS targets the model no longer has are cleared: left in the
    kernel, the NS monitor would keep probing them and fail a slave the ARP monitor finds alive."""
    out: list[tuple[str, Any, Any]] = []
    if "arp_missed_max" in expected and missed_max != expected["arp_missed_max"]:
        out.append(("arp_missed_max", missed_max, expected["arp_missed_max"]))
    want = expected.get("ns_ip6_targets", ())
    if ns_targets != want:
        out.append(("ns_ip6_targets", ns_targets, want))
    return tuple(out)


def remove_ops(bond: LocalBond, state: KernelState) -> list[str]:
    """The modelled devices that exist, bond first (deleting it releases its slaves)."""
    return [n for n in (bond.name, *(t.name for t in bond.tunnels)) if state.link(n) is not None]
