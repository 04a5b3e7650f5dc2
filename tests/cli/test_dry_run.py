"""A dry run tells the truth: the diff of every file it would change, and the exit status the real
apply would have for the refusals it can predict (an insecure config, a daemon not running, a
plaintext underlay). What a user reads on this host; the live counterpart is in tests/live/test_try.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from golden import assert_golden

REPO = Path(__file__).resolve().parents[2]
SEED = (REPO / "examples" / "seed.yaml").read_text()
CHANGES = {
    "mode": SEED.replace("mode: balance-rr", "mode: active-backup\n    primary: gre1"),
    "address": SEED.replace("10.67.0.1/24", "10.67.0.11/24").replace("10.67.0.2/24", "10.67.0.12/24"),
    "tunnels": SEED.replace("      gre2:\n        ends: {r2: 10.65.0.14, r1: 10.65.0.10}\n",
                            "      gre3:\n        ends: {r2: 10.65.0.18, r1: 10.65.0.22}\n"),
}


def grebond(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grebond", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "GREBOND_LOCK": "/tmp/grebond-test-dry-run.lock"})


def config(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("backend", ["networkd", "networkmanager"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_diff_of_a_change_is_golden_and_nothing_is_written(tmp_path: Path, backend: str, change: str) -> None:
    root = tmp_path / "root"
    config(tmp_path, "seed.yaml", SEED)
    config(tmp_path, "changed.yaml", CHANGES[change])
    # relative paths: the header names the config by the path it was given, for a stable golden
    applied = grebond("apply", "--backend", backend, "-c", "seed.yaml", "--node", "r2", "--root", "root",
                      cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    dry = grebond("apply", "--backend", backend, "-c", "changed.yaml", "--node", "r2", "--root", "root",
                  "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    text = dry.stdout.replace(str(tmp_path), "TMP")
    assert text.startswith("--- root/etc/"), text
    assert_golden(f"dry-run/{backend}-{change}.txt", text.encode())


def test_json_dry_run_says_changed_and_carries_the_diff(tmp_path: Path) -> None:
    config(tmp_path, "seed.yaml", SEED)
    config(tmp_path, "changed.yaml", CHANGES["mode"])
    assert grebond("apply", "--backend", "networkd", "-c", "seed.yaml", "--node", "r2", "--root", "root",
                   cwd=tmp_path).returncode == 0
    done = grebond("apply", "--backend", "networkd", "-c", "changed.yaml", "--node", "r2", "--root", "root",
                   "--dry-run", "--json", cwd=tmp_path)
    data = json.loads(done.stdout)
    assert done.returncode == 0 and data["changed"] is True
    assert "+Mode=active-backup" in data["diff"] and "-Mode=balance-rr" in data["diff"]
    same = grebond("apply", "--backend", "networkd", "-c", "seed.yaml", "--node", "r2", "--root", "root",
                   "--dry-run", "--json", cwd=tmp_path)
    assert json.loads(same.stdout) == {"changed": False, "changes": ["nothing to change"], "diff": ""}


def test_dry_run_predicts_an_insecure_config(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the config check protects root; as another user there is nothing to predict")
    cfg = config(tmp_path, "seed.yaml", SEED)
    cfg.chmod(0o664)
    done = grebond("apply", "--backend", "networkd", "-c", str(cfg), "--node", "r2", "--root", str(tmp_path / "r"),
                   "--dry-run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "writable by group or others" in done.stderr and "would write" in done.stdout
    assert not (tmp_path / "r").exists()


def test_dry_run_predicts_a_daemon_that_is_not_running(tmp_path: Path) -> None:
    """This host runs no systemd-networkd: the diff is shown, then the refusal the real apply meets."""
    cfg = config(tmp_path, "seed.yaml", SEED.replace("    ttl: 255\n", "    ttl: 255\n    allow-plaintext-underlay: true\n"))
    done = grebond("apply", "--backend", "networkd", "-c", str(cfg), "--node", "r2", "--dry-run")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "systemd-networkd is not running" in done.stderr and "would write /etc/systemd/network/" in done.stdout
    json_run = grebond("apply", "--backend", "networkd", "-c", str(cfg), "--node", "r2", "--dry-run", "--json")
    data = json.loads(json_run.stdout)     # ONE object: the predicted change and the refusal together
    assert json_run.returncode == 3 and data["exit_status"] == 3 and "systemd-networkd is not running" in data["error"]
    assert data["changed"] is True and "+++ " in data["diff"]


def test_dry_run_predicts_a_plaintext_underlay(tmp_path: Path) -> None:
    """On this host the tunnels' remotes route over the physical interface, not WireGuard."""
    cfg = config(tmp_path, "seed.yaml", SEED)
    done = grebond("apply", "--backend", "kernel", "-c", str(cfg), "--node", "r2", "--dry-run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "clear text" in done.stderr and "would create gretap gre1" in done.stdout
    assert "gre1: (absent) -> gretap local 10.65.0.2 remote 10.65.0.6 ttl 255 mtu 1402" in done.stdout
