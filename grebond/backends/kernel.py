"""Backend: the running kernel, directly over netlink (pyroute2). Not persistent.

For hosts with neither systemd-networkd nor NetworkManager, and as the reference the other
backends are verified against. ``apply`` converges: it reads the kernel, changes only what
differs (recreating a device only when the kernel cannot change the field in place), then runs
the verifier. ``render`` gives the equivalent ``ip`` script (the iproute2 renderer).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_interface
from typing import TYPE_CHECKING

from grebond.backends.base import Availability, Backend, Changes, Context
from grebond.errors import ApplyFailed, GrebondError
from grebond.model import OFFLOADS, LocalBond, BondMode, BondOptions, Monitor, MonitorType, LocalTunnel
from grebond.renderer import Rendering
from grebond.renderer import iproute2 as ip_renderer

if TYPE_CHECKING:
    from grebond.kernel.reader import KernelState


class KernelBackend(Backend):
    name = "kernel"
    summary = "the running kernel over netlink (pyroute2); not persistent across reboots"
    persistent = False

    def render(self, ctx: Context) -> Rendering:
        # the same state, as the ip commands that would build it
        return ip_renderer.render(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node)

    def available(self) -> Availability:
        try:
            from grebond.kernel.netlink import ipr
            with ipr() as ip:
                ip.link("get", index=1)
        except GrebondError as exc:
            return Availability(False, str(exc))
        except Exception as exc:  # available() never raises
            return Availability(False, f"cannot talk netlink: {exc}")
        return Availability(True, "netlink is available")

    def apply(self, ctx: Context) -> Changes:
        from grebond.kernel import netlink
        from grebond.kernel.ethtool import wanted_offloads
        from grebond.kernel.reader import read_state
        from grebond.verifier import verify

        ends = ctx.config.bonds_of(ctx.node)
        before = read_state(features=[name for end in ends for name in wanted_offloads(end)])   # for rollback
        total = Changes()
        for end in ends:
            done = netlink.converge(end, before, dry_run=ctx.dry_run)
            total.actions += done.actions
            total.recreated += done.recreated
        if ctx.dry_run:
            return total
        report = verify(ctx.config, ctx.node, settle_s=ctx.timeout_s)
        if report.ok:
            return total
        lines = [c.line() for c in report.failures]
        if ctx.rollback:
            lines.append(_roll_back(ends, before))
        raise ApplyFailed(f"{ctx.node}: the kernel does not match the model after apply "
                          f"(waited {ctx.timeout_s:g}s):\n" + "\n".join(lines))

    def remove(self, ctx: Context) -> Changes:
        from grebond.kernel import netlink
        from grebond.kernel.reader import read_state

        state = read_state()
        changes = Changes()
        for end in ctx.config.bonds_of(ctx.node):
            changes.removed += netlink.remove(end, state, dry_run=ctx.dry_run)
        return changes


_HASHING_MODES = (BondMode.BALANCE_XOR, BondMode.LACP, BondMode.BALANCE_TLB, BondMode.BALANCE_ALB)


def _roll_back(ends: tuple[LocalBond, ...], before: KernelState) -> str:
    """Put the kernel back as ``before`` had it: delete what this apply created, converge the rest
    back to what it was (a bond's mode and options, a tunnel's endpoints, slaves, addresses)."""
    from grebond.kernel import netlink
    from grebond.kernel.reader import read_state

    created = [n for end in ends for n in (end.name, *(t.name for t in end.tunnels)) if before.link(n) is None]
    said = []
    try:
        if created:
            netlink.delete_links(created)
            said.append(f"deleted {', '.join(created)} (created by this apply)")
        for end in ends:
            previous = as_it_was(end, before)
            if previous is not None:
                netlink.converge(previous, read_state())
                said.append(f"restored {end.name} and its tunnels as they were")
    except GrebondError as exc:
        said.append(f"rolling back failed: {exc}")
    return "rolled back: " + "; ".join(said) if said else "rolled back: nothing had changed"


def as_it_was(end: LocalBond, state: KernelState) -> LocalBond | None:
    """``end`` as the kernel held it in ``state`` (None when its bond did not exist): the bond's
    mode, monitor, options, MTU, offloads and addresses, and the tunnels that were its slaves, with their
    endpoints. Pure; what a failed apply converges back to."""
    link = state.link(end.name)
    if link is None or link.bond is None:
        return None
    b = link.bond
    kind = MonitorType.ARP if b.arp_interval else MonitorType.MII if b.miimon else MonitorType.NONE
    monitor = Monitor(type=kind, interval_ms=b.arp_interval or b.miimon or end.monitor.interval_ms,
                      missed_max=b.arp_missed_max if b.arp_missed_max is not None else end.monitor.missed_max,
                      validate=b.arp_validate)
    mode = BondMode(b.mode)
    # only what the mode accepts: the kernel refuses e.g. lacp_rate outside 802.3ad ("mode dependency")
    options = BondOptions(
        xmit_hash_policy=b.xmit_hash_policy if mode in _HASHING_MODES else None,
        min_links=b.min_links or None,
        packets_per_slave=b.packets_per_slave if mode is BondMode.BALANCE_RR else None,
        lacp_rate=b.lacp_rate if mode is BondMode.LACP else None,
        primary=b.primary, updelay_ms=b.updelay, downdelay_ms=b.downdelay)
    tunnels = tuple(
        LocalTunnel(name=s.name, kind=s.kind or "gretap", local=ip_address(s.tunnel.local),
                  remote=ip_address(s.tunnel.remote), ttl=s.tunnel.ttl, key=s.tunnel.okey, mtu=s.mtu,
                  encaplimit=s.tunnel.encaplimit)
        for s in state.slaves_of(end.name) if s.tunnel is not None and s.tunnel.local and s.tunnel.remote)
    addresses = tuple(ip_interface(a) for a in link.addresses if not a.lower().startswith("fe80:"))
    states = set(link.features.get(name) for name in OFFLOADS.values())
    offloads = states.pop() if len(states) == 1 and None not in states else None   # mixed: leave them
    return replace(end, link=replace(end.link, mode=mode, mtu=link.mtu, monitor=monitor, options=options,
                                     offloads=offloads),
                   tunnels=tunnels, addresses=addresses, arp_targets=tuple(ip_address(t) for t in b.arp_ip_targets))
