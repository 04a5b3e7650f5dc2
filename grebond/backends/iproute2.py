"""Backend: the ``ip`` command script (see ``grebond.renderer.iproute2``).

For testing and for hosts with neither daemon. ``change`` runs the commands (argv lists, never a
shell) on a host that does not have the interfaces yet; it is not persistent. Snapshot, restore
and remove are the kernel backend's: the result is plain kernel state either way.
"""

from __future__ import annotations

from grebond.backends.base import Availability, Context, Snapshot
from grebond.backends.kernel import KernelBackend
from grebond.changes import Changes
from grebond.errors import SystemAccessError
from grebond.files import under_root
from grebond.managed import ManagedDirectory
from grebond.renderer import Rendering
from grebond.renderer import iproute2 as renderer

SCRIPT_DIR = "/etc/grebond"


class Iproute2Backend(KernelBackend):
    name = "iproute2"
    summary = "ip(8) command script; apply runs it once (not persistent)"

    def available(self) -> Availability:
        import shutil  # shutil only where the ip binary is looked for, not on every start-up

        path = shutil.which("ip")
        return Availability(bool(path), f"ip found at {path}" if path else "ip(8) not found: install iproute2")

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        directory = ManagedDirectory(under_root(ctx.root, SCRIPT_DIR), prefix=renderer.SCRIPT_PREFIX, mode=0o755)
        return directory.sync({f.name: f.content for f in rendering.files}, ctx.dry_run)

    def change(self, ctx: Context, snapshot: Snapshot) -> Changes:
        import subprocess

        changes = Changes()
        for argv in renderer.commands_of(ctx.config.bonds_of(ctx.node)):
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
