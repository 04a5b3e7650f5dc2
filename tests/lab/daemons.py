"""A network daemon run by hand in the lab guest (which has no systemd as PID 1), with the system
bus it needs; stopped by pid, its output kept in a log for failure messages.

``prefix`` runs the daemon under a wrapper (``nsenter`` into the mount namespace where the
.deb is installed, tests/lab/package.py); ``root`` is where that daemon's files are seen from
here (``/proc/PID/root``), so a fixture writes its configuration where the daemon reads it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Sequence


class Daemon:
    """Subclasses say how to start; this class owns the process, the bus and the log."""

    stop_timeout_s = 10.0

    def __init__(self, log: Path, prefix: Sequence[str] = (), root: Path = Path("/")) -> None:
        self.log = log
        self.prefix = list(prefix)
        self.root = root
        self.dbus_pid: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

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
