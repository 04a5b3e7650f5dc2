"""`grebond try` against the real kernel and daemons: kept when confirmed, rolled back when not, even
when the `try` process or its terminal's session is killed; `--ping` decides unattended.

r2 is the router changed; r1 its peer, built from the seed with grebond's iproute2 script and left
alone, so a change that breaks the link end to end (r2's tunnel remotes swapped: still routed over
WireGuard, so this end verifies) is visible only across the bond. What is asserted is what a user
sees: exit statuses, kernel fields, ping across the bond, `grebond verify` against the old and the
new model, and the daemon's files byte for byte.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import Networkd, NetworkManager
from lab.topology import Lab, wait_for
from live.helpers import NETDIR, PEER_BOND_IP, PREFIX, build_peer, detail, grebond, keyfiles, model, write_config

TIMEOUT = 30            # the try's confirmation timeout: every scenario waits for it (a grebond start: up to 10 s)
LONG = 900              # for the try that is confirmed by hand: never reached
# "a few seconds" after the deadline, under TCG beside another guest: NetworkManager's checkpoint
# rollback alone took 11 s there (the guardian began on time)
SLACK = {"kernel": 10, "networkd": 10, "networkmanager": 20}
SWAPPED = {"gre1": ("10.65.0.2", "10.65.0.10"), "gre2": ("10.65.0.14", "10.65.0.6")}


def state_dir() -> Path:
    return Path(os.environ.get("GREBOND_STATE_DIR", "/tmp/grebond-lab-state"))


def pending() -> bool:
    return (state_dir() / "pending.json").exists()


def try_(lab: Lab, backend: str, cfg: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return grebond(lab, "r2", "try", "--backend", backend, "-c", cfg, "--node", "r2", "--timeout", str(TIMEOUT),
                   *extra)


def files(backend: str) -> dict[str, bytes]:
    if backend == "networkd":
        return {p.name: p.read_bytes() for p in NETDIR.glob(f"{PREFIX}*")}
    if backend == "networkmanager":
        return keyfiles()
    return {}


def verifies(lab: Lab, cfg: str, settle: str = "30") -> bool:
    return grebond(lab, "r2", "verify", "-c", cfg, "--node", "r2", "--settle", settle).returncode == 0


def ping_ok(lab: Lab) -> bool:
    return wait_for(lambda: lab.ping("r2", PEER_BOND_IP, count=1, wait=1).ok, timeout=30)


def record() -> dict[str, Any]:
    """The pending try's record ({} when none)."""
    try:
        data = json.loads((state_dir() / "pending.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def verified() -> bool:
    """A try pending, its change made and verified (before that the record names the try's pid as owner)."""
    return record().get("owner") == 0


def guarded() -> bool:
    """A try's record names its guardian: written once the guardian runs, just before the change."""
    return bool(record().get("guardian"))


def deadline() -> float:
    """The pending try's deadline (wall clock), as grebond recorded it once the change was verified."""
    return float(json.loads((state_dir() / "pending.json").read_text())["deadline"])


def guardian_log() -> str:
    path = state_dir() / "guardian.log"
    return path.read_text() if path.exists() else "(no guardian.log)"


def rolled_back(lab: Lab, backend: str, seed: str, before: dict[str, bytes], due: float | None) -> None:
    """Back on the old state within SLACK s of the deadline (``due``; None: the try itself waited for
    the rollback): nothing pending, the old model verifies, the peer answers across the bond, the
    files byte for byte as before and nothing stray beside them."""
    if due is not None:
        slack = SLACK[backend]
        assert wait_for(lambda: not pending(), timeout=max(0.0, due + slack - time.time()) + 1), \
            f"not rolled back within the deadline + {slack} s; guardian.log:\n" + guardian_log()
        assert time.time() <= due + slack + 1, guardian_log()
    assert not pending(), guardian_log()
    assert verifies(lab, seed)
    assert ping_ok(lab)
    assert files(backend) == before
    if backend == "networkd":
        assert not list(NETDIR.glob(".*grebond*"))


def scenarios(lab: Lab, backend: str, tmp_path: Path, restart: Callable[[], None] | None) -> None:
    seed = write_config(tmp_path, model(), "seed.yaml")
    changed = write_config(tmp_path, model(interval="200ms"), "changed.yaml")
    broken = write_config(tmp_path, model(tunnels=SWAPPED), "broken.yaml")
    build_peer(lab, seed)
    done = grebond(lab, "r2", "apply", "--backend", backend, "-c", seed, "--node", "r2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ping_ok(lab)
    before = files(backend)

    # 1. no confirmation: at the deadline the guardian restores the old state (this process is gone already)
    done = try_(lab, backend, changed, "--no-wait")
    assert done.returncode == 0, done.stdout + done.stderr
    # the seconds left once applied and verified (NetworkManager's checkpoint counts from its creation)
    left = re.search(r"confirm within (\d+) s", done.stdout)
    assert left and 0 < int(left.group(1)) <= TIMEOUT and pending(), done.stdout
    due = deadline()
    assert "arp_interval 200 " in detail(lab, "bond0")
    rolled_back(lab, backend, seed, before, due)
    assert "arp_interval 100 " in detail(lab, "bond0")

    # 2. a change that breaks the link end to end but verifies on this end: --ping never answers
    done = try_(lab, backend, broken, "--ping", PEER_BOND_IP)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "rolled back (not confirmed in time)" in done.stderr and "the previous model verifies" in done.stderr
    rolled_back(lab, backend, seed, before, None)

    # 3. the try process SIGKILLed once its change verified: the guardian still rolls back at the deadline
    proc = subprocess.Popen(lab.r2.wrap([sys.executable, "-m", "grebond", "try", "--backend", backend, "-c", changed,
                                         "--node", "r2", "--timeout", str(TIMEOUT)]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    assert wait_for(verified, timeout=120), proc.stdout.read() if proc.poll() is not None else "no pending try"
    due = deadline()
    proc.kill()
    proc.wait()
    proc.stdout.close()      # else an unclosed-file warning, an error under filterwarnings=error
    rolled_back(lab, backend, seed, before, due)
    # ... and its session hung up as soon as its guardian runs, in the middle of the change
    # (an SSH session carried by the bond dies there): the guardian rolls back once the try is gone,
    # from the backend's half-made change (NetworkManager's checkpoint is in the record once made)
    argv = lab.r2.wrap([sys.executable, "-m", "grebond", "try", "--backend", backend, "-c", changed, "--node",
                        "r2", "--timeout", str(TIMEOUT)])
    leader, terminal = pty.fork()
    if leader == 0:       # a session with a controlling terminal, like an SSH login
        os.execvp(argv[0], argv)
    assert wait_for(guarded, timeout=120, interval=0.05)     # the change begins now
    # mid-change (nearly always): the guardian acts within a poll once the try is gone, then restores,
    # within what would have been the try's timeout
    hung_up = record()["id"]
    due = time.time() + TIMEOUT     # (a change verified meanwhile has its deadline before this)
    os.close(terminal)    # the terminal goes away: the kernel hangs up the session
    os.killpg(os.getpgid(leader), signal.SIGHUP)
    os.waitpid(leader, 0)
    rolled_back(lab, backend, seed, before, due)
    # the guardian rolled it back (the try did not merely give up before changing anything)
    assert any(f"try {hung_up}: {reason}: rolling back" in guardian_log()
               for reason in ("the try ended before its change was verified", "not confirmed in time")), guardian_log()

    # 5. confirmed (by --ping, unattended): kept past the deadline, and after a cold start of the daemon
    done = try_(lab, backend, changed, "--ping", PEER_BOND_IP, "--settle", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "confirmed" in done.stdout and not pending()
    time.sleep(TIMEOUT + 2)
    assert verifies(lab, changed) and "arp_interval 200 " in detail(lab, "bond0")
    assert ping_ok(lab)
    if backend == "networkmanager":    # confirmed means NM's own rollback is gone too
        checkpoints = subprocess.run(["busctl", "get-property", "org.freedesktop.NetworkManager",
                                      "/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager",
                                      "Checkpoints"], capture_output=True, text=True).stdout.strip()
        assert checkpoints == "ao 0", checkpoints
    if restart is not None:
        restart()
        assert verifies(lab, changed, settle="60") and "arp_interval 200 " in detail(lab, "bond0")

    # 6. confirmed from another shell; while it waits, status shows it and another change is refused
    # (a deadline that is never reached: each grebond start costs seconds under TCG)
    done = grebond(lab, "r2", "try", "--backend", backend, "-c", seed, "--node", "r2", "--timeout", str(LONG),
                   "--no-wait")
    assert done.returncode == 0 and pending(), done.stdout + done.stderr
    status = grebond(lab, "r2", "status", "-c", seed, "--node", "r2")
    assert "pending: a 'grebond try' of" in status.stdout, status.stdout
    second = grebond(lab, "r2", "apply", "--backend", backend, "-c", changed, "--node", "r2")
    assert second.returncode == 2 and "is waiting for confirmation" in second.stderr, second.stderr
    ok = grebond(lab, "r2", "confirm")
    assert ok.returncode == 0 and "is kept" in ok.stdout and not pending(), ok.stdout + ok.stderr
    again = grebond(lab, "r2", "confirm")
    assert again.returncode == 1 and "nothing to confirm" in again.stderr
    assert verifies(lab, seed) and ping_ok(lab)


@pytest.mark.kernel
def test_try_with_the_kernel_backend(lab: Lab, tmp_path: Path) -> None:
    scenarios(lab, "kernel", tmp_path, None)


@pytest.mark.kernel(root_ns=True)
def test_try_with_networkd(lab_factory: Callable[..., Lab], networkd: Networkd, tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    networkd.start()

    def restart() -> None:
        networkd.stop()
        for link in ("bond0", "gre1", "gre2"):
            lab.run("r2", "ip", "link", "del", link, check=False)
        networkd.start()

    scenarios(lab, "networkd", tmp_path, restart)


@pytest.mark.kernel(root_ns=True)
def test_try_with_networkmanager(lab_factory: Callable[..., Lab], nm: NetworkManager, tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    nm.start()

    def restart() -> None:
        nm.stop()
        for link in ("bond0", "gre1", "gre2"):
            lab.run("r2", "ip", "link", "del", link, check=False)
        nm.start()

    scenarios(lab, "networkmanager", tmp_path, restart)
