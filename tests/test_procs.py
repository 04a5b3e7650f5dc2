"""grebond.procs: a daemon killed but not yet reaped (a zombie) is not running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from grebond.procs import running_pid


def test_live_process_found_zombie_skipped() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        comm = "sleep"
        deadline = time.monotonic() + 5
        while running_pid(comm, b"60") is None and time.monotonic() < deadline:
            time.sleep(0.01)                    # until the child has exec'd sleep
        assert running_pid(comm, b"60") is not None
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:      # not reaped: a zombie until we wait()
            with open(f"/proc/{child.pid}/stat") as f:
                if ") Z" in f.read():
                    break
            time.sleep(0.01)
        found = running_pid(comm, b"60")
        assert found != child.pid
    finally:
        child.kill()
        child.wait()


def test_cmdline_filter_and_missing_name() -> None:
    assert running_pid("no-such-daemon-grebond") is None
    me = running_pid(os.path.basename(sys.executable)[:15], b"no-such-argument-grebond")
    assert me is None
