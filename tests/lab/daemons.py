"""The network daemons run by hand in the lab guest (which has no systemd as PID 1), with the
system bus they need; stopped by pid, their output kept in a log for failure messages.
The pytest fixtures ``networkd`` and ``nm`` (tests/live/conftest.py) start nothing: a test
calls ``start()`` when its scenario says the daemon comes up.

``prefix`` runs the daemon under a wrapper (``nsenter`` into the mount namespace where the
.deb is installed, tests/lab/package.py); ``root`` is where that daemon's files are seen from
here (``/proc/PID/root``), so a fixture writes its configuration where the daemon reads it."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .topology import wait_for

NETWORKD_DIR = Path("/etc/systemd/network")
NM_KEYDIR = Path("/etc/NetworkManager/system-connections")
NM_CONF = Path("/etc/NetworkManager/conf.d/99-grebond-lab.conf")
NM_CONF_TEXT = """\
[main]
plugins=keyfile
no-auto-default=*
dns=none
rc-manager=unmanaged

[keyfile]
unmanaged-devices=*,except:interface-name:bond0,except:interface-name:gre1,except:interface-name:gre2,except:interface-name:gre3,except:interface-name:gbl*

[logging]
level=INFO
"""
"""NM leaves every device alone except grebond's (bond0, gre1-3; not the kernel's gre0) and the lab's gbl*."""


class Daemon:
    """Subclasses say how to start; this class owns the process, the bus and the log."""

    stop_timeout_s = 10.0

    def __init__(self, log: Path, prefix: Sequence[str] = (), root: Path = Path("/")) -> None:
        self.log = log
        self.prefix = list(prefix)
        self.root = root
        self.dbus_pid: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def ensure_bus(self) -> None:
        """A system dbus-daemon for the daemon to own its name on (started once per fixture)."""
        if self.dbus_pid is None:
            Path("/run/dbus").mkdir(parents=True, exist_ok=True)
            out = subprocess.run(["dbus-daemon", "--system", "--fork", "--print-pid"], capture_output=True,
                                 text=True, check=True).stdout
            self.dbus_pid = int(out.split()[0])

    def spawn(self, argv: list[str]) -> None:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([*self.prefix, *argv], stdout=fh, stderr=fh)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.dbus_pid is not None:
            try:
                os.kill(self.dbus_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            Path("/run/dbus/pid").unlink(missing_ok=True)
            self.dbus_pid = None

    def path(self, path: Path | str) -> Path:
        """``path`` as the daemon sees it, from here."""
        return self.root / Path(path).relative_to("/")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Networkd(Daemon):
    """systemd-networkd (and a system bus) started the way the lab guest allows, stopped by pid."""

    def start(self) -> None:
        netif = Path("/run/systemd/netif")
        netif.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", "systemd-network", str(netif)], check=True)
        self.ensure_bus()
        self.spawn(["/lib/systemd/systemd-networkd"])
        assert wait_for(lambda: subprocess.run(["busctl", "--system", "status", "org.freedesktop.network1"],
                                               capture_output=True).returncode == 0, timeout=20), self.text()


class NetworkManager(Daemon):
    """dbus-daemon and NetworkManager --no-daemon, started as the lab guest allows, stopped by pid."""

    stop_timeout_s = 20.0

    def __init__(self, log: Path, prefix: Sequence[str] = (), root: Path = Path("/")) -> None:
        super().__init__(log, prefix, root)
        self.mounted = False

    def start(self) -> None:
        for d in ("/run/dbus", "/run/NetworkManager"):
            Path(d).mkdir(parents=True, exist_ok=True)
        state = self.path("/var/lib/NetworkManager")
        state.mkdir(parents=True, exist_ok=True)
        if not self.mounted and self.root == Path("/"):   # the host's /var is read-only in the guest
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(state)], check=True)
            self.mounted = True
        conf = self.path(NM_CONF)
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(NM_CONF_TEXT)
        self.path(NM_KEYDIR).mkdir(parents=True, exist_ok=True)
        self.ensure_bus()
        self.spawn(["/usr/sbin/NetworkManager", "--no-daemon"])
        assert wait_for(lambda: subprocess.run(["nm-online", "-s", "-q", "-t", "5"]).returncode == 0,
                        timeout=60), self.text()

    def close(self) -> None:
        super().close()
        if self.mounted:
            subprocess.run(["umount", "/var/lib/NetworkManager"], check=False)
            self.mounted = False
        self.path(NM_CONF).unlink(missing_ok=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""
