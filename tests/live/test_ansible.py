"""The grebond.fleet collection driving a real fleet: ansible-playbook over real SSH to a hub and
two spokes (tests/lab/fleet.py), each router installing the project's .deb and changing its bonds
with the kernel backend (networkd and NetworkManager only manage the guest's root namespace).

One fleet for the whole module, the tests in order, as an operator would run them: the first
rollout, the same rollout again, a dry run with diffs, a change that verifies on every router but
cuts a link end to end, and removal. Each asserts what the operator sees: Ansible's per-host
result, grebond verify's exit status on each router, pings across every bond, files on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lab.fleet import ROUTERS, SPOKES, Fleet, ansible_bin, bond_address
from lab.package import find_deb
from lab.topology import wait_for
from needs import need

pytestmark = pytest.mark.kernel(root_ns=True)   # the management veths live in the root namespace

REPO = Path(__file__).resolve().parents[2]
MODEL = (REPO / "examples" / "hub-spokes.yaml").read_text()
ON_HOST = "/etc/grebond/grebond.yaml"
GREBOND = "/usr/bin/grebond"      # the router's own, installed from the .deb by the role
PENDING = "/var/lib/grebond/pending.json"   # grebond's record of a pending try (grebond/pending.py)
# The fleet's one deadline, from the start of a change: generous for TCG, where each grebond start costs seconds
# (beside another lab guest, 240 s passed before the first run's pings began).
CONFIRM_TIMEOUT = 600
PHASE1 = "Phase 1: try the model on every end, all with that deadline"
CONFIRM = "Phase 3: confirm on every end (every try and every ping passed)"
ROLLBACK = "Phase 3: roll back on every end at once (a try or a ping failed)"
TIMINGS: dict[str, float] = {}


def cross_wired(model: str) -> str:
    """bond1 with spoke1's two underlay addresses swapped: each end's kernel matches the model (verify
    passes locally), but every GRE packet of bond1 enters the other WireGuard path, whose peer drops it."""
    swapped = model.replace("spoke1: 10.65.11.2", "spoke1: @P2@").replace("spoke1: 10.65.12.2", "spoke1: 10.65.11.2")
    out = swapped.replace("@P2@", "10.65.12.2")
    assert out != model
    return out


def slower_monitor(model: str) -> str:
    """Both links' ARP monitor at 200 ms: a change on every router."""
    out = model.replace("interval: 100ms", "interval: 200ms")
    assert out.count("interval: 200ms") == 2
    return out


@dataclass
class Play:
    rc: int
    seconds: float
    output: str
    record: dict[str, Any] = field(default_factory=dict)

    def results(self, task: str) -> dict[str, dict[str, Any]]:
        """host -> {status, result} of ``task``."""
        return {r["host"]: r for r in self.record.get("results", []) if r["task"] == task}

    def tasks(self) -> list[str]:
        return list(dict.fromkeys(r["task"] for r in self.record.get("results", [])))

    def explain(self) -> str:
        return f"ansible-playbook exit {self.rc} after {self.seconds:.0f} s:\n{self.output[-12000:]}"


class Controller:
    """ansible-playbook from the guest's root namespace, with the collection built and installed."""

    def __init__(self, fleet: Fleet, work: Path) -> None:
        self.fleet = fleet
        self.work = work
        deb, why = find_deb()
        need(deb, why)
        assert deb is not None
        self.deb = deb
        (work / "ansible.cfg").write_text(fleet.ansible_cfg())
        (work / "inventory.ini").write_text(fleet.inventory(grebond_backend="kernel"))
        self.collections = work / "collections"
        started = time.monotonic()
        built = self._run([ansible_bin("ansible-galaxy"), "collection", "build", str(REPO / "ansible"),
                           "--output-path", str(work)])
        assert built.returncode == 0, built.stdout + built.stderr
        (tarball,) = work.glob("grebond-fleet-*.tar.gz")
        installed = self._run([ansible_bin("ansible-galaxy"), "collection", "install", str(tarball),
                               "-p", str(self.collections)])
        assert installed.returncode == 0, installed.stdout + installed.stderr
        TIMINGS["collection build + install"] = time.monotonic() - started
        self.plays = 0

    def env(self) -> dict[str, str]:
        return {**os.environ, "ANSIBLE_CONFIG": str(self.work / "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
                "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "ansible" / "callback"),
                "ANSIBLE_CALLBACKS_ENABLED": "fleet_record", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}

    def _run(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900, cwd=self.work,
                              env=env or self.env())

    def play(self, model: str, *args: str, **extra: object) -> Play:
        """``ansible-playbook grebond.fleet.rollout`` with ``model`` (written on the controller) and ``extra`` vars."""
        self.plays += 1
        path = self.work / f"model-{self.plays}.yaml"
        path.write_text(model)
        variables = {"grebond_hosts": "grebond", "grebond_model": str(path), "grebond_deb": str(self.deb),
                     "grebond_confirm_timeout": CONFIRM_TIMEOUT, **extra}
        if self.plays > 1:   # the first run installed the package (and checked it); later runs skip apt,
            variables.setdefault("grebond_install", "none")   # which costs minutes per play under TCG
        (self.work / "vars.json").write_text(json.dumps(variables))
        record = self.work / f"record-{self.plays}.json"
        env = {**self.env(), "GREBOND_FLEET_RECORD": str(record)}
        # the play's output goes straight to a file the host sees (beside the lab's console log), so a
        # play that hangs still shows how far it got
        report = os.environ.get("GREBOND_LAB_REPORT")
        logs = Path(report).parent / "fleet" if report else self.work
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"play-{self.plays}.log"
        started = time.monotonic()
        with log.open("w") as out:
            done = subprocess.run([ansible_bin("ansible-playbook"), "-v", "-i", "inventory.ini", "-e", "@vars.json",
                                   "grebond.fleet.rollout", *args], stdout=out, stderr=subprocess.STDOUT,
                                  text=True, check=False, timeout=1800, cwd=self.work, env=env)
        play = Play(done.returncode, time.monotonic() - started, log.read_text())
        if record.exists():
            play.record = json.loads(record.read_text())
        print(f"play {self.plays} {' '.join(args)} {extra}: exit {play.rc} in {play.seconds:.1f} s")
        with log.open("a") as out:     # where the play's time went, slowest task first
            slowest = sorted(play.record.get("results", []), key=lambda r: -r.get("seconds", 0))[:12]
            out.write("\nslowest task results (s from the task's start, host, task):\n" + "".join(
                f"  {r.get('seconds', 0):7.1f}  at {r.get('at', 0):6.1f}  {r['host']:8} {r['task']}\n" for r in slowest))
        return play


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    need(Path("/usr/sbin/sshd").exists(), "openssh-server is not installed (bash .ci/install-ssh)")
    need(Path(ansible_bin("ansible-playbook")).exists(), "ansible-core is not installed (./setup --test)")
    # the role installs the .deb with Ansible's apt module, which runs on Debian's python3 with python3-apt
    need(subprocess.run(["/usr/bin/python3", "-c", "import apt, apt_pkg"], capture_output=True).returncode == 0,
         "python3-apt is not installed (bash .ci/install-ssh)")
    started = time.monotonic()
    f = Fleet(tmp_path_factory.mktemp("fleet")).setup()
    TIMINGS["fleet set-up (namespaces, WireGuard, 3 sshd)"] = time.monotonic() - started
    TIMINGS.update({f"  of which {k}": v for k, v in f.timings.items()})
    yield f
    f.teardown()
    print("fleet timings (s): " + ", ".join(f"{k}: {v:.0f}" for k, v in TIMINGS.items()))


@pytest.fixture(scope="module")
def controller(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Controller:
    return Controller(fleet, tmp_path_factory.mktemp("controller"))


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What one test leaves for the next (the tests run in order on one fleet)."""
    return {}


# ----------------------------------------------------------------------------- what a user checks
def verify(fleet: Fleet, router: str, model: str | None = None, settle: str = "20") -> subprocess.CompletedProcess[str]:
    """The router's installed grebond verify, against the model on the router or ``model``'s text."""
    path = ON_HOST
    if model is not None:
        path = f"/tmp/gbf-check-{fleet.token}-{router}.yaml"
        fleet.run(router, "sh", "-c", f"umask 077; cat > {path}", input=model)
    return fleet.run(router, GREBOND, "verify", "-c", path, "--node", router, "--settle", settle, check=False)


def peers(router: str) -> list[tuple[str, str]]:
    """(bond, peer's bond address) for each bond of ``router``."""
    if router == "hub":
        return [(f"bond{link}", bond_address(link, spoke)) for link, spoke in SPOKES.items()]
    link = next(link for link, spoke in SPOKES.items() if spoke == router)
    return [(f"bond{link}", bond_address(link, "hub"))]


def assert_traffic_everywhere(fleet: Fleet) -> None:
    """Every bond passes traffic end to end, from both ends."""
    for router in ROUTERS:
        for bond, address in peers(router):
            assert wait_for(lambda r=router, a=address, b=bond: fleet.ping(r, a, count=1, iface=b).ok,  # type: ignore[misc]
                            timeout=30), \
                f"{router}: no answer from {address} across {bond}"
            res = fleet.ping(router, address, count=10, interval=0.1, iface=bond)
            assert res.ok, f"{router} -> {address} across {bond}:\n{res.output}"


def assert_verifies_everywhere(fleet: Fleet, model: str | None = None) -> None:
    for router in ROUTERS:
        v = verify(fleet, router, model)
        assert v.returncode == 0, f"{router}: verify exit {v.returncode}\n{v.stdout}{v.stderr}"


def nothing_pending(fleet: Fleet, router: str) -> bool:
    """No try pending (grebond's record of it, which ``grebond status`` shows), no previous model kept.
    Read, not asked with ``grebond confirm``, which would keep a pending try."""
    left = fleet.run(router, "sh", "-c", f"for f in {PENDING} {ON_HOST}.previous; do [ ! -e $f ] || echo $f; done")
    return left.stdout == ""


def tunnel_ends(fleet: Fleet, router: str, name: str) -> tuple[str, str]:
    """(local, remote) of tunnel ``name`` in the router's kernel."""
    (link,) = json.loads(fleet.run(router, "ip", "-j", "-d", "link", "show", name).stdout)
    data = link["linkinfo"]["info_data"]
    return data["local"], data["remote"]


def model_on(fleet: Fleet, router: str) -> str | None:
    done = fleet.run(router, "cat", ON_HOST, check=False)
    return done.stdout if done.returncode == 0 else None


# ----------------------------------------------------------------------------- the operator's runs
def test_first_run_installs_and_changes_every_router_then_traffic_passes_on_every_bond(
        fleet: Fleet, controller: Controller, state: dict[str, Any]) -> None:
    play = controller.play(MODEL)
    TIMINGS["first run"] = play.seconds
    assert play.rc == 0, play.explain()
    tried = play.results(PHASE1)
    assert sorted(tried) == sorted(ROUTERS), play.explain()
    for router, r in tried.items():
        assert r["status"] == "changed", f"{router}: {r}"
        assert r["result"]["pending"]["node"] == router, r
        assert r["result"]["verify"]["ok"] is True, r
    # one deadline for the fleet (grebond try --deadline): the same moment on every router
    fleet_deadline = float(play.results("Set one deadline for the whole fleet")["hub"]["result"]["ansible_facts"][
        "grebond_fleet_deadline"])
    deadlines = {h: r["result"]["pending"]["deadline"] for h, r in tried.items()}
    assert all(abs(d - fleet_deadline) < 0.01 for d in deadlines.values()), (fleet_deadline, deadlines)
    state["first_deadline"] = fleet_deadline
    confirmed = play.results(CONFIRM)
    assert {h: r["status"] for h, r in confirmed.items()} == dict.fromkeys(ROUTERS, "changed"), play.explain()
    for router in ROUTERS:   # the .deb, installed in each router's own /usr (not the guest's)
        pkg = fleet.run(router, "dpkg-query", "-W", "-f", "${Status}", "grebond", check=False)
        assert pkg.stdout == "install ok installed", f"{router}: {pkg.stdout}{pkg.stderr}"
        assert model_on(fleet, router) == MODEL
        assert nothing_pending(fleet, router)
    assert tunnel_ends(fleet, "hub", "gre11") == ("10.65.11.1", "10.65.11.2")
    assert tunnel_ends(fleet, "spoke2", "gre22") == ("10.65.22.2", "10.65.22.1")
    assert_verifies_everywhere(fleet)
    assert_traffic_everywhere(fleet)


def test_second_run_changes_nothing(fleet: Fleet, controller: Controller) -> None:
    play = controller.play(MODEL)
    TIMINGS["second run (nothing to do)"] = play.seconds
    assert play.rc == 0, play.explain()
    tried = play.results(PHASE1)
    assert {h: r["status"] for h, r in tried.items()} == dict.fromkeys(ROUTERS, "ok"), play.explain()
    assert all(r["result"]["pending"] is None for r in tried.values())
    assert {h: s["changed"] for h, s in play.record["stats"].items()} == dict.fromkeys(ROUTERS, 0), play.explain()
    assert not play.results(CONFIRM) or all(r["status"] == "skipped" for r in play.results(CONFIRM).values())
    assert_verifies_everywhere(fleet)


def test_check_diff_shows_each_hosts_diff_and_changes_nothing(fleet: Fleet, controller: Controller) -> None:
    play = controller.play(slower_monitor(MODEL), "--check", "--diff")
    TIMINGS["--check --diff"] = play.seconds
    assert play.rc == 0, play.explain()
    tried = play.results(PHASE1)
    for router in ROUTERS:
        r = tried[router]
        assert r["status"] == "changed", f"{router}: {r}"
        diffs = r["result"]["diff"]
        model_diff = [d for d in diffs if d.get("after_header") == ON_HOST]
        assert model_diff and "interval: 200ms" in model_diff[0]["after"], diffs
        grebond_diff = "".join(d.get("prepared", "") for d in diffs)
        for bond, _peer in peers(router):
            assert bond in grebond_diff, f"{router}: no diff for {bond}:\n{grebond_diff}"
        assert "200" in grebond_diff, grebond_diff
        assert grebond_diff in play.output or grebond_diff.strip().splitlines()[0] in play.output
    assert not play.results(CONFIRM) or all(r["status"] == "skipped" for r in play.results(CONFIRM).values())
    for router in ROUTERS:
        assert model_on(fleet, router) == MODEL, router
        assert nothing_pending(fleet, router), router
    assert_verifies_everywhere(fleet, MODEL)


def test_a_change_that_cuts_a_link_end_to_end_fails_the_play_and_rolls_back_everywhere(
        fleet: Fleet, controller: Controller, state: dict[str, Any]) -> None:
    broken = cross_wired(MODEL)
    play = controller.play(broken)
    TIMINGS["cross-wired change, failed and rolled back"] = play.seconds
    assert play.rc != 0, play.explain()
    tried = play.results(PHASE1)
    # bond1's ends: either the try verified there (its kernel matches the model) and the fleet's pings then
    # found the link cut, or grebond's own verify already saw the ARP monitor hear nothing from the peer
    # and rolled that end back by itself (exit 1); both are refusals of the change, and the play's
    # verdict is the same: confirmed nowhere, rolled back everywhere at once
    rolled = play.results(ROLLBACK)
    verified = []
    for router in ("hub", "spoke1"):
        r = tried[router]
        if r["status"] == "changed":
            assert r["result"]["verify"]["ok"] is True and r["result"]["pending"], r
            assert rolled[router]["status"] == "changed" and rolled[router]["result"]["pending"] is True, rolled
            # by the role at once, not by the guardian at the deadline
            assert "rolled back (asked for)" in rolled[router]["result"]["grebond"]["outcome"], rolled[router]
            verified.append(router)
        else:
            assert r["status"] == "ignored" and r["result"]["exit_status"] == 1, r
            assert "rolled back" in json.dumps(r["result"]), r
    if len(verified) == 2:    # both ends up, nothing answering: the pings name the cut link
        assert "no answer from spoke1 (10.67.1.2) across bond1" in play.output, play.explain()
        assert "no answer from hub (10.67.1.1) across bond1" in play.output, play.explain()
    assert "confirmed nowhere" in play.output, play.explain()
    # spoke2's bond is not in the change: its kernel is left alone, only the new model file is staged and dropped
    assert tried["spoke2"]["status"] == "changed", tried["spoke2"]
    assert tried["spoke2"]["result"]["pending"] is None and tried["spoke2"]["result"]["staged"] is True, tried["spoke2"]
    assert tried["spoke2"]["result"]["changes"][0] == "nothing to change", tried["spoke2"]
    assert rolled["spoke2"]["status"] == "changed" and rolled["spoke2"]["result"]["pending"] is False, rolled
    assert all(r["status"] != "changed" for r in play.results(CONFIRM).values())
    # back on the old state
    for router in ROUTERS:
        assert model_on(fleet, router) == MODEL, router
        assert nothing_pending(fleet, router), router
    assert tunnel_ends(fleet, "hub", "gre11") == ("10.65.11.1", "10.65.11.2")
    assert tunnel_ends(fleet, "spoke1", "gre12") == ("10.65.12.2", "10.65.12.1")
    # and the first run's change, confirmed, outlives its deadline (passed by now, or soon): nothing
    # rolls it back to the routers' state before the first run
    wait = state.get("first_deadline", 0) + 5 - time.time()
    TIMINGS["waited for the first run's deadline"] = max(0.0, wait)
    if wait > 0:
        time.sleep(wait)
    assert_verifies_everywhere(fleet, MODEL)
    assert_traffic_everywhere(fleet)


def test_state_absent_removes_grebonds_configuration_and_nothing_else(fleet: Fleet, controller: Controller) -> None:
    for router in ROUTERS:   # the user's own interface, which grebond must leave alone
        fleet.run(router, "ip", "link", "add", "user0", "type", "dummy")
    before = {r: fleet.run(r, "ip", "-br", "addr", "show").stdout for r in ROUTERS}
    play = controller.play(MODEL, grebond_state="absent")
    TIMINGS["state absent"] = play.seconds
    assert play.rc == 0, play.explain()
    removed = play.results("Remove grebond's configuration from every end (and the model it was given)")
    assert {h: r["status"] for h, r in removed.items()} == dict.fromkeys(ROUTERS, "changed"), play.explain()
    for router in ROUTERS:
        links = fleet.links(router)
        for name in ("bond1", "bond2", "gre11", "gre12", "gre21", "gre22"):
            assert f" {name}:" not in links and f" {name}@" not in links, f"{router}: {name} left\n{links}"
        after = fleet.run(router, "ip", "-br", "addr", "show").stdout
        kept = [line.split()[0] for line in before[router].splitlines()
                if not line.split()[0].split("@")[0].startswith(("bond", "gre1", "gre2"))]
        for dev in kept:   # WireGuard devices, veths, mgmt0, user0: there, with their addresses
            old = next(line for line in before[router].splitlines() if line.split()[0] == dev)
            new = [line for line in after.splitlines() if line.split()[0] == dev]
            assert new and new[0].split()[2:] == old.split()[2:], f"{router}: {dev} changed: {old!r} -> {new}"
        assert model_on(fleet, router) is None, router
        pkg = fleet.run(router, "dpkg-query", "-W", "-f", "${Status}", "grebond", check=False)
        assert pkg.stdout == "install ok installed", router   # the package is no configuration
    again = controller.play(MODEL, grebond_state="absent")
    assert again.rc == 0, again.explain()
    assert {h: s["changed"] for h, s in again.record["stats"].items()} == dict.fromkeys(ROUTERS, 0), again.explain()

