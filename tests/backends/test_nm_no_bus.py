"""NetworkManager running but the system D-Bus unreachable: apply says so (exit 3) and changes nothing.

A copy of ``sleep`` named NetworkManager stands in for the daemon's process (grebond looks for it
by name before it talks D-Bus); the bus is really unreachable (DBUS_SYSTEM_BUS_ADDRESS points at a
socket that does not exist). The lab tests cover NM itself (tests/live/).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from grebond.procs import running_pid

from needs import need

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed.yaml"
KEYDIR = Path("/etc/NetworkManager/system-connections")


def snapshot(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.glob("*")) if p.is_file()} \
        if d.is_dir() else {}


def test_apply_with_networkmanager_running_but_no_system_bus(tmp_path: Path) -> None:
    need(os.geteuid() == 0, "a live apply needs root")
    fake = tmp_path / "NetworkManager"
    shutil.copy("/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "120"])
    try:
        deadline = time.monotonic() + 5
        while running_pid("NetworkManager") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # a remote routed over this machine's default route is plaintext: allowed here, not the point
        cfg = tmp_path / "grebond.yaml"
        cfg.write_text(SEED.read_text().replace("    underlay-mtu:", "    allow-plaintext-underlay: true\n"
                                                                    "    underlay-mtu:", 1))
        cfg.chmod(0o600)
        before = snapshot(KEYDIR)
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-such-bus",
               "GREBOND_LOCK": str(tmp_path / "lock")}
        done = subprocess.run([sys.executable, "-m", "grebond", "apply", "--backend", "networkmanager",
                               "-c", str(cfg), "--node", "r2"], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "no system D-Bus" in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert snapshot(KEYDIR) == before
    finally:
        proc.kill()
        proc.wait()
