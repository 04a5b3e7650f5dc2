"""Faults during a live apply, against the real daemons in the lab guest: grebond killed with
SIGKILL between deleting a link and reloading networkd, networkd or NetworkManager killed during
an apply, two applies at once, grebond killed inside a NetworkManager checkpoint (NM rolls back
by its timeout), and NetworkManager refusing a setting. The host-side tests
(tests/test_faults.py) cover every file-system step; these cover the steps only a running kernel
and daemon have.

A wrapper runs the CLI with a profiler that sends SIGKILL when a named grebond function is
called: to grebond itself, or to the pid in KILL_PID (a daemon). No hook in grebond.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.daemons import Daemon, Networkd, NetworkManager
from lab.topology import Lab, wait_for
from live.helpers import (
    NETDIR,
    PREFIX,
    assert_working,
    build_peer,
    grebond,
    grebond_links,
    keyfiles,
    model,
    profiles,
    write_config,
)

pytestmark = pytest.mark.kernel(root_ns=True)

KILL_ON_CALL = r"""
import os, signal, sys, threading
name, pid = os.environ["KILL_ON_CALL"], int(os.environ.get("KILL_PID") or os.getpid())
def prof(frame, event, arg):
    if event == "call" and frame.f_code.co_name == name and "grebond" in frame.f_code.co_filename:
        os.kill(pid, signal.SIGKILL)
        if pid != os.getpid():
            sys.setprofile(None); threading.setprofile(None)
threading.setprofile(prof)
sys.setprofile(prof)
from grebond.cli import main
sys.exit(main(sys.argv[1:]))
"""


def grebond_killed_at(function: str, *args: str, kill_pid: int | None = None) -> subprocess.CompletedProcess[str]:
    """``grebond ARGS`` in r2 (the root namespace), SIGKILLed (or killing KILL_PID) when FUNCTION is called."""
    env = {**os.environ, "KILL_ON_CALL": function, "KILL_PID": str(kill_pid or "")}
    return subprocess.run([sys.executable, "-c", KILL_ON_CALL, *args], capture_output=True, text=True,
                          env=env, timeout=300)


def files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in NETDIR.glob(f"{PREFIX}*")}


def apply_networkd(lab: Lab, cfg: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return grebond(lab, "r2", "apply", "--backend", "networkd", "-c", cfg, "--node", "r2", "--timeout", "60", *extra)


def seed_applied(lab_factory: Callable[..., Lab], daemon: Daemon, backend: str, tmp_path: Path) -> tuple[Lab, str]:
    """r2 (the root namespace, where ``daemon`` runs) and r1 on the seed model, applied through ``backend``."""
    lab = lab_factory(root_router="r2")
    seed = write_config(tmp_path, model(), "seed.yaml")
    build_peer(lab, seed)
    daemon.start()
    done = grebond(lab, "r2", "apply", "--backend", backend, "-c", seed, "--node", "r2", "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr + daemon.text()
    return lab, seed


def test_networkd_kill_between_delete_and_reload(lab_factory: Callable[..., Lab], networkd: Networkd,
                                                 tmp_path: Path) -> None:
    """A mode change recreates bond0: kill after the delete, before the files / before the reload."""
    lab, seed = seed_applied(lab_factory, networkd, "networkd", tmp_path)
    changed = write_config(tmp_path, model(mode="active-backup", extra="primary: gre1"), "changed.yaml")
    seed_files = files()
    steps = [  # (kill when this is called, model to go to, its mode, the files expected after the kill)
        ("sync", changed, "active-backup", "old"),           # bond0 deleted, nothing written yet
        ("networkctl", seed, "balance-rr", "new"),           # bond0 deleted, files written, no reload
    ]
    for function, cfg, mode, expect in steps:
        before = files()
        killed = grebond_killed_at(function, "apply", "--backend", "networkd", "-c", cfg, "--node", "r2")
        assert killed.returncode == -9, f"{function}: {killed.returncode} {killed.stdout}{killed.stderr}"
        assert "bond0" not in grebond_links(lab), f"{function}: killed before the delete"
        after_kill = files()
        assert not list(NETDIR.glob("*.grebond-tmp*")), f"{function}: a temporary file was left"
        done = apply_networkd(lab, cfg)                 # the next apply converges
        assert done.returncode == 0, f"{function}: {done.stdout}{done.stderr}{networkd.text()}"
        assert_working(lab, cfg, ["gre1", "gre2"], mode=mode)
        assert after_kill == (before if expect == "old" else files()), function
    assert files() == seed_files


def test_networkd_dies_during_apply(lab_factory: Callable[..., Lab], networkd: Networkd, tmp_path: Path) -> None:
    lab, seed = seed_applied(lab_factory, networkd, "networkd", tmp_path)
    changed = write_config(tmp_path, model(mode="active-backup", extra="primary: gre1"), "changed.yaml")
    seed_files = files()
    assert networkd.proc is not None
    # networkd is killed just before grebond asks it to reload
    done = grebond_killed_at("networkctl", "apply", "--backend", "networkd", "-c", changed, "--node", "r2",
                             kill_pid=networkd.proc.pid)
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "networkctl reload" in message and "restored the previous files" in message, done.stderr
    assert "Traceback" not in done.stderr
    assert files() == seed_files
    networkd.stop()
    networkd.start()                                   # as after a crash: networkd back, previous model
    done = apply_networkd(lab, seed)
    assert done.returncode == 0, done.stdout + done.stderr + networkd.text()
    assert_working(lab, seed, ["gre1", "gre2"])


def test_two_applies_at_once(lab_factory: Callable[..., Lab], networkd: Networkd, tmp_path: Path) -> None:
    """One waits for the other or refuses with the holder's pid; the result is one model, whole."""
    lab = lab_factory(root_router="r2")
    networkd.start()
    slow = write_config(tmp_path, model(interval="200ms"), "slow.yaml")
    fast = write_config(tmp_path, model(), "fast.yaml")
    build_peer(lab, fast)
    argv = [sys.executable, "-m", "grebond", "apply", "--backend", "networkd", "--node", "r2", "--timeout", "60"]
    first = subprocess.Popen([*argv, "-c", slow], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen([*argv, "-c", fast], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    report = f"first {first.returncode}: {out1}{err1}\nsecond {second.returncode}: {out2}{err2}"
    assert sorted([first.returncode, second.returncode]) in ([0, 0], [0, 3]), report
    assert "Traceback" not in err1 + err2, report
    refused = [err for rc, err in ((first.returncode, err1), (second.returncode, err2)) if rc == 3]
    for err in refused:             # refused after waiting 10 s: says who holds the lock
        assert "another grebond (pid" in err and "Try again" in err, report
    assert not list(NETDIR.glob("*.grebond-tmp*"))
    # whichever applied last is what the files and the kernel hold, whole
    interval = 200 if "200ms" in (NETDIR / f"{PREFIX}bond0.netdev").read_text() else 100
    assert_working(lab, slow if interval == 200 else fast, ["gre1", "gre2"], interval_ms=interval)


def test_networkmanager_rolls_back_when_grebond_dies_in_checkpoint(lab_factory: Callable[..., Lab],
                                                                   nm: NetworkManager, tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    cfg = write_config(tmp_path, model())
    build_peer(lab, cfg)
    nm.start()
    # killed once NM has added and activated the profiles, while grebond verifies: the
    # checkpoint (timeout: --timeout + 60 s) is never destroyed nor rolled back by grebond
    t0 = time.monotonic()
    done = grebond_killed_at("_verify", "apply", "--backend", "networkmanager", "-c", cfg, "--node", "r2",
                             "--timeout", "5")
    assert done.returncode == -9, done.stdout + done.stderr
    assert profiles() == ["grebond-bond0", "grebond-gre1", "grebond-gre2"], nm.text()
    # NM's own rollback removes what the checkpoint did not have: the profiles and their links
    assert wait_for(lambda: profiles() == [] and grebond_links(lab) == [], timeout=5 + 60 + 60), \
        f"{profiles()} {grebond_links(lab)}\n{nm.text()}"
    assert time.monotonic() - t0 > 5 + 60 - 15, "rolled back before the checkpoint's timeout"
    done = grebond(lab, "r2", "apply", "--backend", "networkmanager", "-c", cfg, "--node", "r2")
    assert done.returncode == 0, done.stdout + done.stderr + nm.text()
    v = grebond(lab, "r2", "verify", "-c", cfg, "--node", "r2", "--settle", "20")
    assert v.returncode == 0, v.stdout + v.stderr


def test_networkmanager_dies_during_apply(lab_factory: Callable[..., Lab], nm: NetworkManager,
                                          tmp_path: Path) -> None:
    """NM killed after it saved the changed profiles, before activation: its checkpoint dies with
    it, so grebond puts its previous keyfiles back, and NM brings the previous state up again."""
    lab, seed = seed_applied(lab_factory, nm, "networkmanager", tmp_path)
    before = keyfiles()
    assert nm.proc is not None
    changed = write_config(tmp_path, model(interval="200ms"), "changed.yaml")
    done = grebond_killed_at("_activate", "apply", "--backend", "networkmanager", "-c", changed, "--node", "r2",
                             kill_pid=nm.proc.pid)
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "NetworkManager stopped during the apply" in message and "restored the previous keyfiles" in message, \
        done.stderr
    assert "Traceback" not in done.stderr
    assert keyfiles() == before
    nm.stop()
    nm.start()                                         # back, from the previous keyfiles
    v = grebond(lab, "r2", "verify", "-c", seed, "--node", "r2", "--settle", "60")
    assert v.returncode == 0, v.stdout + v.stderr + nm.text()


def test_networkmanager_refusing_a_setting_changes_nothing(lab_factory: Callable[..., Lab], nm: NetworkManager,
                                                           tmp_path: Path) -> None:
    """A setting the running NM does not know (arp_missed_max needs NM 1.44; Debian 12 has 1.42,
    but the user said --target-nm 1.44): NM refuses it, grebond rolls back and exits 1 with NM's reason."""
    lab, seed = seed_applied(lab_factory, nm, "networkmanager", tmp_path)
    before = keyfiles()
    newer = write_config(tmp_path, model(missed_max=3), "newer.yaml")
    done = grebond(lab, "r2", "apply", "--backend", "networkmanager", "-c", newer, "--node", "r2",
                   "--target-nm", "1.44")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "arp_missed_max" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert keyfiles() == before
    v = grebond(lab, "r2", "verify", "-c", seed, "--node", "r2", "--settle", "20")
    assert v.returncode == 0, v.stdout + v.stderr
