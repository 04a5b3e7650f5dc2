"""Talking to systemd-networkd and udev: is it running, reload, and how far it got with a link."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from grebond.errors import ApplyFailed, SystemAccessError
from grebond.kernel.netlink import link_exists
from grebond.procs import running_pid

NETIF_DIR = Path("/run/systemd/netif")
BUS_NAME = "org.freedesktop.network1"
SYSFS_NET = Path("/sys/class/net")


def networkd_pid() -> int | None:
    """The pid of a running systemd-networkd (its comm is truncated to 'systemd-network')."""
    return running_pid("systemd-network", b"systemd-networkd")


def bus_name_owned() -> bool:
    try:
        done = subprocess.run(["busctl", "--system", "status", BUS_NAME], capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def networkctl(*args: str) -> None:
    argv = ["networkctl", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SystemAccessError(f"'{' '.join(argv)}' failed: {exc}") from exc
    if done.returncode != 0:
        raise SystemAccessError(f"'{' '.join(argv)}' failed: {done.stderr.strip() or done.stdout.strip()}; "
                                "is systemd-networkd running with a system bus?")


def reload_udev() -> None:
    """Have udevd read changed .link files before networkd creates devices (it would otherwise
    notice within ~3 s, maybe after). Without a running udevd there is nothing to tell."""
    try:
        subprocess.run(["udevadm", "control", "--reload"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass


def admin_state(name: str) -> str | None:
    """networkd's setup state for ``name`` from /run/systemd/netif/links/IFINDEX (None: not yet known)."""
    try:
        index = (SYSFS_NET / name / "ifindex").read_text().strip()
        text = (NETIF_DIR / "links" / index).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ADMIN_STATE="):
            return line.partition("=")[2].strip()
    return None


def wait_links(names: list[str], timeout_s: float) -> None:
    """Wait until networkd created every link and finished (or gave up) configuring it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        missing = [n for n in names if not link_exists(n)]
        busy = [n for n in names if n not in missing and admin_state(n) in ("pending", "initialized", None)]
        if not missing and not busy:
            return
        time.sleep(0.1)
    missing = [n for n in names if not link_exists(n)]
    if missing:
        raise ApplyFailed(f"systemd-networkd did not create {', '.join(missing)} within {timeout_s:.0f} s; "
                          "see its log (journalctl -u systemd-networkd)")
