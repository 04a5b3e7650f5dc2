"""kill -9 at every file-system step of an apply: each managed file is the old or the new
version (never partial or missing), and the next apply converges.

No hook in grebond: a wrapper installs a profiler that SIGKILLs the process at the Nth call
of open/write/fsync/rename/replace/unlink/chmod, so every step of the write sequence is hit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED = (REPO / "examples" / "seed.yaml").read_text()

# The new model: another mode, a changed remote, gre1 removed, gre3 added.
CHANGED = SEED.replace("mode: balance-rr", "mode: active-backup\n    primary: gre2").replace(
    "      gre1:\n        ends: {r2: 10.65.0.2, r1: 10.65.0.6}\n", "").replace(
    "ends: {r2: 10.65.0.14, r1: 10.65.0.10}",
    "ends: {r2: 10.65.0.14, r1: 10.65.0.18}\n      gre3:\n        ends: {r2: 10.65.0.22, r1: 10.65.0.26}")

KILLER = r"""
import os, signal, sys
target = int(os.environ["KILL_AT"])
watched = {os.open, os.write, os.fsync, os.replace, os.rename, os.unlink, os.fchmod, os.fchown, os.close}
count = 0
def prof(frame, event, arg):
    global count
    if event == "c_call" and arg in watched:
        count += 1
        if count == target:
            os.kill(os.getpid(), signal.SIGKILL)
sys.setprofile(prof)
from grebond.cli import main
rc = main(sys.argv[1:])
sys.setprofile(None)
print(f"CALLS={count}", file=sys.stderr)
sys.exit(rc)
"""

BACKENDS = {
    "networkd": "etc/systemd/network",
    "networkmanager": "etc/NetworkManager/system-connections",
}


def apply(cfg: Path, root: Path, backend: str, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KILL_AT=str(kill_at), GREBOND_LOCK=str(root.parent / f"{root.name}.lock"))
    return subprocess.run([sys.executable, "-c", KILLER, "apply", "--backend", backend, "-c", str(cfg),
                           "--node", "r2", "--root", str(root)], capture_output=True, text=True, env=env)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if not p.name.startswith(".")}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_kill_at_every_step_leaves_old_or_new_files_and_next_apply_converges(backend: str, tmp_path: Path) -> None:
    old_cfg, new_cfg = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old_cfg.write_text(SEED)
    new_cfg.write_text(CHANGED)

    # The reference states: the files after a clean apply of the old and of the new model.
    ref_old, ref_new = tmp_path / "ref-old", tmp_path / "ref-new"
    assert apply(old_cfg, ref_old, backend).returncode == 0
    assert apply(new_cfg, ref_new, backend).returncode == 0
    old_files = snapshot(ref_old / BACKENDS[backend])
    new_files = snapshot(ref_new / BACKENDS[backend])
    assert old_files and new_files and old_files != new_files

    # How many watched calls an old -> new apply makes: one kill point before each.
    probe = tmp_path / "probe"
    apply(old_cfg, probe, backend)
    done = apply(new_cfg, probe, backend)
    calls = int(done.stderr.rsplit("CALLS=", 1)[1])
    assert calls >= 10

    user_file = "00-admin.network" if backend == "networkd" else "admin.nmconnection"
    for kill_at in range(1, calls + 1):
        root = tmp_path / f"k{kill_at}"
        assert apply(old_cfg, root, backend).returncode == 0
        directory = root / BACKENDS[backend]
        (directory / user_file).write_bytes(b"[Match]\nName=eth0\n")
        killed = apply(new_cfg, root, backend, kill_at)
        assert killed.returncode == -9, f"kill point {kill_at}: {killed.stderr}"
        for name, content in snapshot(directory).items():
            if name == user_file:
                assert content == b"[Match]\nName=eth0\n"
                continue
            assert content in (old_files.get(name), new_files.get(name)), f"kill point {kill_at}: {name} is partial"
        # every file belongs to exactly one of the two states; none is missing from both
        names = set(snapshot(directory)) - {user_file}
        assert names <= set(old_files) | set(new_files)
        assert set(old_files) & set(new_files) <= names, f"kill point {kill_at}: a kept file went missing"
        # the next apply converges to exactly the new state, the admin's file untouched
        again = apply(new_cfg, root, backend)
        assert again.returncode == 0, again.stderr
        final = snapshot(directory)
        assert final.pop(user_file) == b"[Match]\nName=eth0\n"
        assert final == new_files, f"kill point {kill_at}: did not converge"
        assert not [p for p in directory.iterdir() if p.name.endswith(".grebond-tmp")]
    print(f"{backend}: {calls} kill points, all converged")
