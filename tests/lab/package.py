"""The built .deb, installed for real with dpkg, in a throwaway mount namespace of the lab guest.

Why a mount namespace: the guest sees this machine's root file system read-only, and the
package must be installed for real (dpkg, its maintainer scripts, its unit file) without
touching the host or the other tests. A holder process keeps a private mount namespace in
which /usr, /var and /etc are overlays on a tmpfs; dpkg, the daemons and grebond itself run
in it through ``nsenter``; the test reads and writes its files through ``/proc/PID/root``.
The network namespace stays the guest's root one, where networkd and NetworkManager work.
Closing kills the holder: the overlays and everything installed vanish with the namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OVERLAID = ("usr", "var", "etc")
SYSENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
          "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}

_HOLDER = """
set -e
mount -t tmpfs -o size=1G grebond-pkg /mnt
for d in {dirs}; do
    mkdir -p /mnt/$d/upper /mnt/$d/work
    mount -t overlay overlay -o lowerdir=/$d,upperdir=/mnt/$d/upper,workdir=/mnt/$d/work /$d
done
echo ready
exec sleep infinity
"""


def deb_dir() -> Path:
    """Where .ci/build-deb leaves the package ($GREBOND_DEB_DIR, default build/deb)."""
    return Path(os.environ.get("GREBOND_DEB_DIR") or REPO / "build" / "deb")


def find_deb() -> tuple[Path | None, str]:
    """(the one grebond_*_all.deb, "") or (None, why not)."""
    found = sorted(deb_dir().glob("grebond_*_all.deb"))
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no grebond_*_all.deb in {deb_dir()} (run .ci/build-deb, or set GREBOND_DEB_DIR)"
    return None, f"several .debs in {deb_dir()}: {', '.join(p.name for p in found)}"


class InstalledPackage:
    """A private mount namespace with writable /usr, /var, /etc where the .deb gets installed."""

    def __init__(self, deb: Path) -> None:
        self.deb = deb
        self.holder: subprocess.Popen[str] | None = None

    def start(self) -> InstalledPackage:
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _HOLDER.format(dirs=" ".join(OVERLAID))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.holder.stdout is not None
        first = self.holder.stdout.readline().strip()
        if first != "ready":
            rest = self.holder.stdout.read() if self.holder.poll() is not None else ""
            self.close()
            raise RuntimeError(f"cannot set up the package namespace: {first} {rest}")
        return self

    @property
    def pid(self) -> int:
        assert self.holder is not None, "start() first"
        return self.holder.pid

    @property
    def prefix(self) -> list[str]:
        """Wrapper that runs a command inside the namespace."""
        return ["nsenter", f"--target={self.pid}", "--mount", "--"]

    @property
    def root(self) -> Path:
        """The namespace's / as seen from here."""
        return Path(f"/proc/{self.pid}/root")

    def path(self, path: Path | str) -> Path:
        return self.root / Path(path).relative_to("/")

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        target = self.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=timeout,
                              env={**SYSENV, **(env or {})}, cwd="/")

    def install(self) -> subprocess.CompletedProcess[str]:
        """``dpkg -i`` as an administrator would (keeping a pre-seeded /etc/default/grebond).

        Triggers (man-db's index) are deferred: under TCG they cost a minute and test nothing of ours.
        """
        return self.run(["dpkg", "-i", "--force-confold", "--no-triggers", str(self.deb)])

    def status(self) -> str:
        return self.run(["dpkg-query", "-W", "-f", "${Status}", "grebond"]).stdout

    def unit_command(self, unit: str) -> list[str]:
        """The installed unit's ExecStart, split (for a oneshot unit run by hand: no systemd as PID 1)."""
        for d in ("/lib/systemd/system", "/usr/lib/systemd/system"):
            f = self.path(f"{d}/{unit}")
            if f.exists():
                for line in f.read_text().splitlines():
                    if line.startswith("ExecStart="):
                        return line.removeprefix("ExecStart=").lstrip("-@+!:").split()
                raise AssertionError(f"{unit} has no ExecStart=")
        raise AssertionError(f"{unit} is not installed")

    def close(self) -> None:
        if self.holder is not None:
            if self.holder.poll() is None:
                os.kill(self.holder.pid, signal.SIGKILL)
                self.holder.wait()
            if self.holder.stdout is not None:
                self.holder.stdout.close()
        self.holder = None
