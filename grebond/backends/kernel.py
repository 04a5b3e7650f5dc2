"""Backend: the running kernel, directly over netlink (pyroute2). Not persistent.

For hosts with neither systemd-networkd nor NetworkManager, and as the reference the other
backends are verified against. ``apply`` converges: it reads the kernel, changes only what
differs (recreating a device only when the kernel cannot change the field in place), then runs
the verifier. ``render`` gives the equivalent ``ip`` script (the iproute2 renderer).
"""

from __future__ import annotations

from grebond.backends.base import Availability, Backend, Changes, Context
from grebond.errors import ApplyFailed, GrebondError
from grebond.renderer import Rendering
from grebond.renderer import iproute2 as ip_renderer


class KernelBackend(Backend):
    name = "kernel"
    summary = "the running kernel over netlink (pyroute2); not persistent across reboots"
    persistent = False

    def render(self, ctx: Context) -> Rendering:
        # the same state, as the ip commands that would build it
        return ip_renderer.render(ctx.config.ends_of(ctx.node), ctx.config.source, ctx.node)

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
        from grebond.kernel.reader import read_state
        from grebond.verifier import verify

        ends = ctx.config.ends_of(ctx.node)
        before = read_state()
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
        created = [n for end in ends for n in (end.name, *(t.name for t in end.tunnels))
                   if before.link(n) is None]
        if ctx.rollback and created:
            # previous state of devices that did not exist: absent. Changed ones cannot be restored
            # field by field; they stay as applied (the report says what is wrong).
            netlink.delete_links(created)
            lines.append(f"rolled back: deleted {', '.join(created)} (created by this apply)")
        raise ApplyFailed(f"{ctx.node}: the kernel does not match the model after apply "
                          f"(waited {ctx.timeout_s:g}s):\n" + "\n".join(lines))

    def remove(self, ctx: Context) -> Changes:
        from grebond.kernel import netlink
        from grebond.kernel.reader import read_state

        state = read_state()
        changes = Changes()
        for end in ctx.config.ends_of(ctx.node):
            changes.removed += netlink.remove(end, state, dry_run=ctx.dry_run)
        return changes
