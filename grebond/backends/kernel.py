"""Backend: the running kernel, directly over netlink (pyroute2). Not persistent.

For hosts with neither systemd-networkd nor NetworkManager, and as the reference the other
backends are verified against. ``change`` converges: ``kernel.plan.plan_ops`` compares the
snapshot with the model and ``kernel.execute`` changes only what differs (recreating a device
only when the kernel cannot change the field in place). ``render`` gives the equivalent ``ip``
script (the iproute2 renderer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface
from typing import Any

from grebond.backends.base import Availability, Backend, Context, Snapshot
from grebond.changes import Changes
from grebond.errors import GrebondError
from grebond.kernel import modules
from grebond.kernel.desired import wanted_offloads
from grebond.kernel.plan import plan_ops, remove_ops
from grebond.kernel.reader import read_state
from grebond.kernel.state import KernelState, state_from_json, state_to_json
from grebond.model import OFFLOADS, BondMode, BondOptions, LocalBond, LocalTunnel, Monitor, MonitorType
from grebond.renderer import Rendering
from grebond.renderer import iproute2 as ip_renderer


@dataclass
class KernelSnapshot(Snapshot):
    state: KernelState

    def to_json(self) -> dict[str, Any]:
        return {"state": state_to_json(self.state)}


class KernelBackend(Backend):
    name = "kernel"
    summary = "the running kernel over netlink (pyroute2); not persistent across reboots"

    def render(self, ctx: Context) -> Rendering:
        # the same state, as the ip commands that would build it
        return ip_renderer.render(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node)

    def available(self) -> Availability:
        lacking = modules.refusal(["bond", "gretap"])
        if lacking:
            return Availability(False, lacking)
        try:
            from grebond.kernel.netlink import ipr

            with ipr() as ip:
                ip.link("get", index=1)
        except GrebondError as exc:
            return Availability(False, str(exc))
        except Exception as exc:  # available() never raises
            return Availability(False, f"cannot talk netlink: {exc}")
        return Availability(True, "netlink is available and the kernel has bonding and gretap")

    def ready(self, ctx: Context) -> None:
        """Netlink is all this backend needs; the transaction checks the kernel's modules for every backend."""

    def snapshot(self, ctx: Context) -> KernelSnapshot:
        bonds = ctx.config.bonds_of(ctx.node)
        return KernelSnapshot(read_state(features=[n for b in bonds for n in wanted_offloads(b)]))

    def snapshot_from_json(self, data: dict[str, Any]) -> KernelSnapshot:
        return KernelSnapshot(state_from_json(data["state"]))

    def change(self, ctx: Context, snapshot: Snapshot) -> Changes:
        from grebond.kernel.execute import execute

        assert isinstance(snapshot, KernelSnapshot)
        total = Changes()
        for bond in ctx.config.bonds_of(ctx.node):
            ops = plan_ops(bond, snapshot.state)
            if ctx.dry_run:
                total.recreated += [op.text(done=False).removeprefix("recreate ") for op in ops if op.recreates]
                total.actions += [op.text(done=False) for op in ops if op.shown and not op.recreates]
                total.diff += [line for op in ops if op.shown or op.action.startswith("create")
                               for line in op.diff()]
            else:
                total.extend(execute(ops, bond))
        return total

    def restore(self, ctx: Context, snapshot: Snapshot) -> str:
        assert isinstance(snapshot, KernelSnapshot)
        return roll_back(ctx.config.bonds_of(ctx.node), snapshot.state)

    def remove(self, ctx: Context) -> Changes:
        from grebond.kernel.netlink import delete_links

        state = read_state()
        changes = Changes()
        for bond in ctx.config.bonds_of(ctx.node):
            present = remove_ops(bond, state)
            changes.removed += present if ctx.dry_run else delete_links(present)
        return changes


def roll_back(bonds: tuple[LocalBond, ...], before: KernelState) -> str:
    """Put the kernel back as ``before`` had it: delete what was created since, converge the rest
    back to what it was (a bond's mode and options, a tunnel's endpoints, slaves, addresses)."""
    from grebond.kernel.execute import execute
    from grebond.kernel.netlink import delete_links

    created = [n for b in bonds for n in (b.name, *(t.name for t in b.tunnels)) if before.link(n) is None]
    said = []
    try:
        if created:
            deleted = delete_links(created)
            if deleted:
                said.append(f"deleted {', '.join(deleted)} (created by this apply)")
        for bond in bonds:
            previous = as_it_was(bond, before)
            if previous is not None:
                execute(plan_ops(previous, read_state(features=list(wanted_offloads(previous)))), previous)
                said.append(f"restored {bond.name} and its tunnels as they were")
    except GrebondError as exc:
        said.append(f"rolling back failed: {exc}")
    return "rolled back: " + "; ".join(said) if said else "rolled back: nothing had changed"


def as_it_was(bond: LocalBond, state: KernelState) -> LocalBond | None:
    """``bond`` as the kernel held it in ``state`` (None when it did not exist): the bond's mode,
    monitor, options, MTU, offloads and addresses, and the tunnels that were its slaves, with their
    endpoints and netem delays. Pure; what a failed apply converges back to."""
    link = state.link(bond.name)
    if link is None or link.bond is None:
        return None
    b = link.bond
    kind = MonitorType.ARP if b.arp_interval else MonitorType.MII if b.miimon else MonitorType.NONE
    monitor = Monitor(type=kind, interval_ms=b.arp_interval or b.miimon or bond.monitor.interval_ms,
                      missed_max=b.arp_missed_max if b.arp_missed_max is not None else bond.monitor.missed_max,
                      validate=b.arp_validate)
    mode = BondMode(b.mode)
    # only what the mode accepts: the kernel refuses e.g. lacp_rate outside 802.3ad ("mode dependency")
    options = BondOptions(
        xmit_hash_policy=b.xmit_hash_policy if mode.hashes else None,
        min_links=b.min_links or None,
        packets_per_slave=b.packets_per_slave if mode.takes_packets_per_slave else None,
        lacp_rate=b.lacp_rate if mode.is_lacp else None,
        primary=b.primary, updelay_ms=b.updelay, downdelay_ms=b.downdelay)
    tunnels = tuple(
        LocalTunnel(name=s.name, kind=s.kind or "gretap", local=ip_address(s.tunnel.local),
                    remote=ip_address(s.tunnel.remote), ttl=s.tunnel.ttl, key=s.tunnel.okey, mtu=s.mtu,
                    encaplimit=s.tunnel.encaplimit,
                    # a netem delay it had comes back; one it had not is removed (other root qdiscs: the kernel's)
                    delay_us=s.qdisc.delay_us if s.qdisc is not None and s.qdisc.kind == "netem" else None)
        for s in state.slaves_of(bond.name) if s.tunnel is not None and s.tunnel.local and s.tunnel.remote)
    addresses = tuple(ip_interface(a) for a in link.addresses if not a.lower().startswith("fe80:"))
    states = {link.features.get(name) for name in OFFLOADS.values()}
    offloads = states.pop() if len(states) == 1 and None not in states else None   # mixed: leave them
    return replace(bond, link=replace(bond.link, mode=mode, mtu=link.mtu, monitor=monitor, options=options,
                                      offloads=offloads),
                   tunnels=tunnels, addresses=addresses, arp_targets=tuple(IPv4Address(t) for t in b.arp_ip_targets),
                   ns_targets=tuple(IPv6Address(t) for t in b.ns_ip6_targets))
