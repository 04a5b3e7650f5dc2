"""The grebond.fleet.rollout playbook run by ansible-playbook on this machine (connection local): what
it refuses before touching any host. The model is read by the controller's real grebond (``grebond
validate --json``); every run here stops before the first task on a host, so nothing changes.

The role changing a real fleet is tests/live/test_ansible.py, in the lab VM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from needs import need, need_module

need_module("ansible.errors", "ansible-core is not installed for this interpreter (./setup --test)")

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HUB_SPOKES = REPO / "examples" / "hub-spokes.yaml"


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need((BIN / "ansible-playbook").exists(), "ansible-core is not installed (./setup --test)")
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "grebond").mkdir(parents=True)
    (root / "ansible_collections" / "grebond" / "fleet").symlink_to(REPO / "ansible")
    return root


def rollout(collections: Path, tmp_path: Path, model: Path, *extra: str) -> tuple[int, str]:
    """``ansible-playbook grebond.fleet.rollout`` on localhost; (exit status, what the operator sees)."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "HOME": str(tmp_path),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local"), "ANSIBLE_REMOTE_TMP": str(tmp_path / "remote"),
           "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "grebond.fleet.rollout",
                           "-e", "grebond_hosts=all", "-e", f"grebond_model={model}", "-e", "grebond_install=none",
                           "-e", f"ansible_python_interpreter={sys.executable}", *extra],
                          capture_output=True, text=True, check=False, timeout=300, env=env, cwd=tmp_path)
    return done.returncode, done.stdout + done.stderr


def test_an_invalid_model_stops_the_play_with_grebonds_line(collections: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    mtu = "    underlay-mtu: 1440\n"
    broken.write_text(HUB_SPOKES.read_text().replace(mtu, mtu + "    mode: balance-rrr\n", 1))
    rc, out = rollout(collections, tmp_path, broken)
    assert rc == 2, out
    assert "grebond validate on the controller: " in out and "balance-rrr" in out, out
    assert "Traceback" not in out
    assert "Phase 1" not in out and "Install" not in out, out   # no task ran on a host


def test_a_host_that_is_no_node_of_the_model_is_named(collections: Path, tmp_path: Path) -> None:
    rc, out = rollout(collections, tmp_path, HUB_SPOKES)
    assert rc == 2, out
    assert "localhost is node 'localhost', which is no end of a link in" in out, out
    assert "(its nodes: hub, spoke1, spoke2); set grebond_node or grebond_nodes" in out, out
    assert "Phase 1" not in out, out


def test_a_node_without_a_host_is_named(collections: Path, tmp_path: Path) -> None:
    """A link changed at one end only would be cut: the play refuses unless every end is a host."""
    rc, out = rollout(collections, tmp_path, HUB_SPOKES, "-e", "grebond_node=hub")
    assert rc == 2, out
    assert "the model's nodes spoke1, spoke2 are no host of this play" in out, out
    assert "Phase 1" not in out, out
