"""Backend: the ``ip`` command script (see ``grebond.renderer.iproute2``).

For testing and for hosts with neither daemon. ``apply`` runs the commands (argv lists, never
a shell) on a host that does not have the interfaces yet; it is not persistent.
"""

from __future__ import annotations

from grebond.backends.base import Availability, Backend, Changes, Context
from grebond.errors import SystemAccessError
from grebond.files import under_root, write_atomic
from grebond.renderer import Rendering
from grebond.renderer import iproute2 as renderer

SCRIPT_DIR = "/etc/grebond"


class Iproute2Backend(Backend):
    name = "iproute2"
    summary = "ip(8) command script; apply runs it once (not persistent)"
    persistent = False

    def render(self, ctx: Context) -> Rendering:
        return renderer.render(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node)

    def available(self) -> Availability:
        import shutil

        path = shutil.which("ip")
        return Availability(bool(path), f"ip found at {path}" if path else "ip(8) not found: install iproute2")

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        changes = Changes()
        for f in rendering.files:
            path = under_root(ctx.root, SCRIPT_DIR) / f.name
            if ctx.dry_run or write_atomic(path, f.content, f.mode):
                changes.written.append(str(path))
            else:
                changes.unchanged.append(str(path))
        return changes

    def apply(self, ctx: Context) -> Changes:
        import subprocess

        rendering = self.render(ctx)
        changes = Changes()
        for argv in rendering.data:
            if ctx.dry_run:
                changes.actions.append("run " + " ".join(argv))
                continue
            try:
                done = subprocess.run(argv, capture_output=True, text=True)
            except OSError as exc:   # ethtool (for offloads) is a separate package from ip
                raise SystemAccessError(f"'{argv[0]}' cannot run: {exc.strerror}; install {argv[0]} "
                                        "(Debian: apt-get install iproute2 ethtool)") from exc
            if done.returncode != 0:
                raise SystemAccessError(f"'{' '.join(argv)}' failed: {done.stderr.strip()}; the iproute2 backend "
                                        "only builds from scratch: use --backend kernel to converge existing devices")
            changes.actions.append("ran " + " ".join(argv))
        return changes
