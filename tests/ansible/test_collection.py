"""The grebond.fleet collection as Ansible itself sees it: it builds, passes ansible-test's
validate-modules and pep8, documents what its modules take, and its filters read what grebond validate says of the examples.

The fleet itself (real SSH, real routers) is tests/live/test_ansible.py, in the lab VM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from needs import need, need_module

# The .deb's build leaves tests/ansible out (debian/rules: Debian's python3 has no ansible-core);
# everywhere else ansible-core is a test dependency (./setup --test).
need_module("ansible.errors", "ansible-core is not installed for this interpreter (./setup --test)")

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible"
BIN = Path(sys.executable).parent


def ansible(tool: str) -> str:
    path = BIN / tool
    need(path.exists(), f"{tool} is not installed (ansible-core is a test dependency: ./setup --test)")
    return str(path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("galaxy")
    done = subprocess.run([ansible("ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path", str(out)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (tarball,) = out.glob("grebond-fleet-*.tar.gz")
    return tarball


def test_galaxy_build_holds_the_modules_role_and_playbook(built: Path) -> None:
    with tarfile.open(built) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    assert manifest["collection_info"]["namespace"] == "grebond"
    assert manifest["collection_info"]["name"] == "fleet"
    for member in ("plugins/modules/grebond.py", "plugins/modules/grebond_pending.py", "plugins/action/grebond.py",
                   "plugins/filter/fleet.py", "plugins/module_utils/grebond_cli.py", "roles/rollout/tasks/main.yml",
                   "roles/rollout/meta/argument_specs.yml", "playbooks/rollout.yml", "README.md"):
        assert member in names, member


def test_galaxy_install_then_ansible_doc_shows_the_modules(built: Path, tmp_path: Path) -> None:
    """What a user does: install the built collection, read the docs of every plugin."""
    done = subprocess.run([ansible("ansible-galaxy"), "collection", "install", str(built), "-p", str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    env = {"ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    docs = subprocess.run([ansible("ansible-doc"), "--json", "grebond.fleet.grebond", "grebond.fleet.grebond_pending"],
                          capture_output=True, text=True, check=False, timeout=120, env=env)
    assert docs.returncode == 0, docs.stderr
    found = json.loads(docs.stdout)
    options = found["grebond.fleet.grebond"]["doc"]["options"]
    assert {"state", "path", "src", "content", "node", "backend", "confirm_timeout", "confirm_deadline",
            "ping", "executable"} <= set(options)
    assert found["grebond.fleet.grebond"]["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert found["grebond.fleet.grebond"]["doc"]["attributes"]["diff_mode"]["support"] == "full"
    assert "verify" in found["grebond.fleet.grebond"]["return"]
    assert found["grebond.fleet.grebond_pending"]["doc"]["options"]["state"]["choices"] == ["confirmed", "rolled_back"]
    filters = subprocess.run([ansible("ansible-doc"), "-t", "filter", "--json", "grebond.fleet.peers",
                              "grebond.fleet.verdict"],
                             capture_output=True, text=True, check=False, timeout=120, env=env)
    assert filters.returncode == 0, filters.stderr
    assert set(json.loads(filters.stdout)) == {"grebond.fleet.peers", "grebond.fleet.verdict"}
    role = subprocess.run([ansible("ansible-doc"), "-t", "role", "--json", "grebond.fleet.rollout"],
                          capture_output=True, text=True, check=False, timeout=120, env=env)
    assert role.returncode == 0, role.stderr
    assert "grebond_model" in json.loads(role.stdout)["grebond.fleet.rollout"]["entry_points"]["main"]["options"]


def test_ansible_test_sanity_validate_modules_and_pep8() -> None:
    """ansible-test sanity, run as it needs (the collection under ansible_collections/grebond/fleet/)."""
    ansible("ansible-test")
    # the interpreter running these tests (a worktree without its own .venv included)
    done = subprocess.run(["bash", str(REPO / "tests/ansible/sanity"), "--test", "validate-modules", "--test", "pep8"],
                          capture_output=True, text=True, check=False, timeout=900,
                          env={**os.environ, "GREBOND_ANSIBLE_BIN": str(BIN)})
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert 'Running sanity test "validate-modules"' in done.stdout
    assert 'Running sanity test "pep8"' in done.stdout


def _filters() -> dict[str, object]:
    sys.path.insert(0, str(COLLECTION / "plugins" / "filter"))
    try:
        import fleet  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return fleet.FilterModule().filters()  # type: ignore[no-any-return]


def validated(model: Path) -> dict[str, object]:
    """What the role reads the model as: ``grebond validate --json`` on the controller."""
    done = subprocess.run([str(BIN / "grebond"), "validate", "-c", str(model), "--json"], capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_peers_are_what_grebond_validate_names() -> None:
    hub_spokes = validated(REPO / "examples" / "hub-spokes.yaml")
    assert hub_spokes["nodes"] == ["hub", "spoke1", "spoke2"]
    peers = _filters()["peers"]
    assert peers(hub_spokes, "hub") == [  # type: ignore[operator]
        {"bond": "bond1", "peer": "spoke1", "address": "10.67.1.2"},
        {"bond": "bond2", "peer": "spoke2", "address": "10.67.2.2"}]
    assert peers(hub_spokes, "spoke2") == [{"bond": "bond2", "peer": "hub", "address": "10.67.2.1"}]  # type: ignore[operator]
    seed = validated(REPO / "examples" / "seed.yaml")
    assert peers(seed, "r1") == [{"bond": "bond0", "peer": "r2", "address": "10.67.0.1"}]  # type: ignore[operator]
    assert peers(seed, "nobody") == []  # type: ignore[operator]


def test_verdict_confirms_only_when_every_try_and_ping_passed() -> None:
    verdict = _filters()["verdict"]
    ok_ping = {"results": [{"item": {"bond": "bond1", "peer": "spoke1", "address": "10.67.1.2"}, "rc": 0}]}
    hostvars = {
        "hub": {"grebond_fleet_try": {"pending": {"id": "a"}, "staged": True}, "grebond_fleet_ping": ok_ping},
        "spoke1": {"grebond_fleet_try": {"pending": {"id": "b"}, "staged": True}, "grebond_fleet_ping": ok_ping},
        "spoke2": {"grebond_fleet_try": {"pending": None, "staged": True}, "grebond_fleet_ping": ok_ping},
    }
    import time
    future = time.time() + 300
    good = verdict(hostvars, ["hub", "spoke1", "spoke2"], future, 10)  # type: ignore[operator]
    assert good == {"ok": True, "problems": [], "pending": ["hub", "spoke1"], "staged": ["hub", "spoke1", "spoke2"]}
    bad_ping = {"results": [{"item": {"bond": "bond1", "peer": "spoke1", "address": "10.67.1.2"}, "rc": 1}]}
    bad = verdict({**hostvars, "hub": {**hostvars["hub"], "grebond_fleet_ping": bad_ping}},  # type: ignore[operator]
                  ["hub", "spoke1", "spoke2"], future, 10)
    assert not bad["ok"] and bad["problems"] == ["hub: no answer from spoke1 (10.67.1.2) across bond1"]
    failed = verdict({**hostvars, "spoke2": {"grebond_fleet_try": {"failed": True, "msg": "bond2: refused"}}},  # type: ignore[operator]
                     ["hub", "spoke1", "spoke2"], future, 10)
    assert failed["problems"] == ["spoke2: the try failed: bond2: refused"]
    late = verdict(hostvars, ["hub", "spoke1", "spoke2"], time.time() + 5, 10)  # type: ignore[operator]
    assert not late["ok"] and "before the deadline" in late["problems"][0]
    gone = verdict({k: v for k, v in hostvars.items() if k != "spoke1"}, ["hub", "spoke1", "spoke2"], future, 10)  # type: ignore[operator]
    assert gone["problems"] == ["spoke1: no result from the try (host unreachable?)"]
