"""The grebond.fleet.grebond module run by Ansible on this machine (connection local) against the
real grebond of this checkout: check mode is grebond's dry run, and a mistake comes back as a
failed task with grebond's one line, never a traceback. Nothing here changes the system: every
run is in check mode, or fails before grebond touches anything.

What a change does to a real router is tests/live/test_ansible.py, in the lab VM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from needs import need, need_module

# The .deb's build leaves tests/ansible out (debian/rules: Debian's python3 has no ansible-core);
# everywhere else ansible-core is a test dependency (./setup --test).
need_module("ansible.errors", "ansible-core is not installed for this interpreter (./setup --test)")

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SEED = REPO / "examples" / "seed.yaml"
# this machine routes the seed's underlay addresses over its own uplink, not WireGuard
PLAINTEXT_OK = SEED.read_text().replace("    ttl: 255\n", "    ttl: 255\n    allow-plaintext-underlay: true\n")


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need((BIN / "ansible").exists(), "ansible-core is not installed (./setup --test)")
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "grebond").mkdir(parents=True)
    (root / "ansible_collections" / "grebond" / "fleet").symlink_to(REPO / "ansible")
    return root


def run_module(collections: Path, tmp_path: Path, module: str, args: dict[str, object],
               *flags: str) -> tuple[int, dict[str, object], str]:
    """``ansible localhost -m MODULE -a ARGS`` with the minimal callback (host | STATUS => JSON); (rc, result, output)."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "minimal", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local"),
           "ANSIBLE_REMOTE_TMP": str(tmp_path / "remote"), "HOME": str(tmp_path),
           "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    done = subprocess.run([str(BIN / "ansible"), "localhost", "-c", "local", "-m", module, "-a", json.dumps(args),
                           *flags], capture_output=True, text=True, check=False, timeout=300, env=env, cwd=tmp_path)
    out = done.stdout + done.stderr
    start = done.stdout.find("localhost | ")
    brace = done.stdout.find("{", start) if start >= 0 else -1
    result = json.JSONDecoder().raw_decode(done.stdout[brace:])[0] if brace >= 0 else {}
    return done.returncode, result, out


def test_check_mode_is_grebonds_dry_run(collections: Path, tmp_path: Path) -> None:
    """On a kernel with bonding and gretap, grebond's dry run and its diff; on one without (this machine),
    grebond's predicted refusal, as the real run would fail. Either way the model is not written."""
    assert SEED.read_text() != PLAINTEXT_OK
    rc, result, out = run_module(collections, tmp_path, "grebond.fleet.grebond",
                                 {"content": PLAINTEXT_OK, "path": str(tmp_path / "grebond.yaml"), "node": "r2",
                                  "backend": "kernel", "executable": str(BIN / "grebond")}, "--check", "--diff")
    assert not (tmp_path / "grebond.yaml").exists(), "check mode wrote the model"
    assert "Traceback" not in out
    if not (Path("/sys/module/bonding").is_dir() and Path("/sys/module/ip_gre").is_dir()):
        assert rc != 0 and result["exit_status"] == 3, out
        assert str(result["msg"]).startswith("this kernel has no bond"), out
        return
    assert rc == 0, out
    assert result["changed"] is True, out
    assert result["model_changed"] is True and result["pending"] is None and result["verify"] is None, out
    assert any("bond0" in line for line in result["changes"]), out   # type: ignore[attr-defined]
    # the callback prints the diffs (and leaves them out of the result it shows)
    assert f"+++ after: {tmp_path / 'grebond.yaml'}" in out and "+    allow-plaintext-underlay: true" in out, out
    assert "bond0" in out.split("localhost |")[0], out


def test_check_mode_fails_where_the_real_run_would_be_refused(collections: Path, tmp_path: Path) -> None:
    """grebond's dry run predicts the refusal of a plaintext underlay: the task fails as the real one would."""
    rc, result, out = run_module(collections, tmp_path, "grebond.fleet.grebond",
                                 {"src": str(SEED), "path": str(tmp_path / "grebond.yaml"), "node": "r2",
                                  "backend": "kernel", "executable": str(BIN / "grebond")}, "--check")
    assert rc != 0, out
    assert result["exit_status"] == 2, out
    assert str(result["msg"]).startswith("refusing to apply:") and "clear text" in str(result["msg"]), out
    assert "Traceback" not in out


def test_a_bad_model_fails_with_grebonds_line_and_exit_status(collections: Path, tmp_path: Path) -> None:
    broken = SEED.read_text().replace("mode: balance-rr", "mode: balance-rrr")
    rc, result, out = run_module(collections, tmp_path, "grebond.fleet.grebond",
                                 {"content": broken, "path": str(tmp_path / "grebond.yaml"), "node": "r2",
                                  "backend": "kernel", "executable": str(BIN / "grebond")}, "--check")
    assert rc != 0, out
    assert result["exit_status"] == 2, out
    assert "balance-rrr" in str(result["msg"]) and "\n" not in str(result["msg"]), out
    assert "Traceback" not in out


def test_grebond_missing_on_the_host_says_how_to_install_it(collections: Path, tmp_path: Path) -> None:
    rc, result, out = run_module(collections, tmp_path, "grebond.fleet.grebond",
                                 {"src": str(SEED), "node": "r2", "executable": "grebond-not-installed"}, "--check")
    assert rc != 0, out
    assert "grebond is not installed on this host" in str(result["msg"]), out
    assert "Traceback" not in out


def test_a_missing_src_on_the_controller_is_named(collections: Path, tmp_path: Path) -> None:
    rc, result, out = run_module(collections, tmp_path, "grebond.fleet.grebond",
                                 {"src": str(tmp_path / "nowhere.yaml"), "node": "r2"}, "--check")
    assert rc != 0, out
    assert "nowhere.yaml" in str(result["msg"]) and "on the controller" in str(result["msg"]), out
