"""pytest plugin: run ``kernel``-marked tests in a real kernel, in a VM when the host lacks one.

Why: this machine's (and maybe CI's) kernel has no gre/bonding/wireguard. When a
session collects kernel tests and the host cannot run them, the plugin boots
virtme-ng guests (two side by side where they fit, each booted once, whole test
modules split between them by shards.py, with one or two vCPUs), runs pytest there on exactly those node ids (same interpreter,
same checkout, seen read-only through 9p), streams each guest test report back
as JSON through an --rwdir, and replays it as that test's outcome here, like
pytest-xdist does for its workers. Tests that do not need the kernel run on the
host as usual.

Environment:
- GREBOND_LAB_MODE     auto (default) | vm (always boot the VM) | host (never; run here)
- GREBOND_LAB_TIMEOUT  seconds for each guest run (default 5400: the fleet guest needs about an hour); also --lab-timeout
- GREBOND_LAB_VMS      how many guests at once (default 2 with 2 CPUs and 6 GiB, else 1); also --lab-vms
- GREBOND_LAB_DIR      where run directories go (default <rootdir>/.lab)
- GREBOND_LAB_ALLOW_ROOT=1  let root-namespace labs run directly on a capable host
- CI=true              a lab that cannot start FAILS the kernel tests instead of skipping them
- set by the plugin in the guest: GREBOND_LAB_GUEST=1, GREBOND_LAB_REPORT=<jsonl path>
See vm.py for GREBOND_LAB_KERNEL / _VNG / _MEMORY / _CPUS.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .shards import cpus_for, default_vms, split
from .topology import Lab, LabError, RootNamespaceRefused
from .vm import LabUnavailable, guest_path, guest_script, run_in_guest
from needs import is_ci, need

MARKER = "kernel"
LAB_FIXTURES = frozenset({"lab", "lab_factory"})
ENV_GUEST = "GREBOND_LAB_GUEST"
ENV_REPORT = "GREBOND_LAB_REPORT"
_INTERNAL_ENV = {ENV_GUEST, ENV_REPORT}
GUEST_HOME = "/tmp/grebond-lab-home"  # the guest's /root is read-only
KEEP_RUNS = 10
GUEST_TEST_STACKDUMP_S = 300


def is_guest() -> bool:
    return os.environ.get(ENV_GUEST) == "1"


# --------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grebond-lab", "grebond kernel lab")
    group.addoption("--no-lab", action="store_true", default=False,
                    help="skip kernel-marked tests instead of running them (no VM boot)")
    group.addoption("--lab-mode", choices=("auto", "vm", "host"),
                    default=os.environ.get("GREBOND_LAB_MODE", "auto"),
                    help="where kernel tests run: auto (host if its kernel can, else VM), vm, host")
    group.addoption("--lab-timeout", type=float,
                    default=float(os.environ.get("GREBOND_LAB_TIMEOUT", "5400")),
                    help="seconds allowed for the whole guest run (boot included)")
    group.addoption("--lab-vms", type=int, default=None,
                    help="guests booted side by side, test modules split between them "
                         "(default: $GREBOND_LAB_VMS, else 2 where 2 CPUs and 6 GiB allow it, else 1)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kernel(root_ns=False): needs a real kernel with bonding/gre/wireguard (runs in the lab VM "
        "when the host lacks them); root_ns=True: uses the root network namespace",
    )
    if is_guest():
        report = os.environ.get(ENV_REPORT)
        if report:
            config.pluginmanager.register(GuestReporter(config, Path(report)), "grebond-lab-guest")
    else:
        config.pluginmanager.register(LabDelegator(config), "grebond-lab-delegator")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark users of the lab fixtures as kernel tests (so ``-m "not kernel"`` drops them too); --no-lab."""
    for item in items:
        if item.get_closest_marker(MARKER) is None and LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(MARKER)
    if config.getoption("--no-lab"):
        for item in items:
            if item.get_closest_marker(MARKER) is not None:
                item.add_marker(pytest.mark.skip(reason="kernel test: --no-lab given"))


# --------------------------------------------------------------------- fixtures
@pytest.fixture
def lab_factory() -> Iterator[Callable[..., Lab]]:
    """``lab_factory(**Lab kwargs) -> Lab`` already set up; every lab is torn down after the test."""
    labs: list[Lab] = []

    def make(*args: Any, **kwargs: Any) -> Lab:
        lab = Lab(*args, **kwargs)
        labs.append(lab)
        try:
            return lab.setup()
        except RootNamespaceRefused as exc:
            need(False, str(exc))
            raise

    yield make
    errors = []
    for lab in reversed(labs):
        try:
            lab.teardown()
        except LabError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    """The default lab: r2 and r1 in namespaces, 2 WireGuard paths with the seed addresses."""
    return lab_factory()


# ----------------------------------------------------------- host capability
_HOST_PROBE = (
    "ip link add name gblb0 type bond && "
    "ip link add name gblg0 type gretap local 127.0.0.1 remote 127.0.0.2 && "
    "ip link add name gblg6 type ip6gretap local ::1 remote ::2 && "
    "ip link add name gblw0 type wireguard && "
    "ip link add name gblv0 type veth peer name gblv1 && "
    "tc qdisc add dev gblv0 root netem loss 1%"
)


def host_kernel_ready() -> tuple[bool, str]:
    """Try, in a throwaway network namespace, everything the kernel tests need."""
    if os.geteuid() != 0:
        return False, "not root"
    missing = [t for t in ("unshare", "ip", "tc", "wg", "ping") if not shutil.which(t)]
    if missing:
        return False, f"missing tools: {' '.join(missing)}"
    cp = subprocess.run(["unshare", "-n", "sh", "-ec", _HOST_PROBE], capture_output=True, text=True)
    if cp.returncode != 0:
        return False, f"host kernel probe failed: {cp.stderr.strip() or cp.stdout.strip()}"
    return True, "host kernel has bonding, gretap, ip6gretap, wireguard, veth, netem"


# ------------------------------------------------------------------ guest side
class GuestReporter:
    """Inside the guest: append every test report, serialized like xdist does, to a JSONL file."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.file = path.open("a", encoding="utf-8")

    def _write(self, obj: dict[str, Any]) -> None:
        self.file.write(json.dumps(obj, default=repr) + "\n")
        self.file.flush()  # the host may have to read a partial file after a timeout

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self._write({"event": "start", "nodeid": nodeid, "t": time.time()})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self._write({"event": "report", "nodeid": report.nodeid, "data": data})

    def pytest_unconfigure(self) -> None:
        self.file.close()


# ------------------------------------------------------------------- host side
@dataclass
class LabRun:
    """What one guest run produced, per node id."""

    reports: dict[str, list[pytest.TestReport]] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    unavailable: str | None = None      # lab could not start: CI -> fail, else skip
    problem: str | None = None          # lab started but the run ended badly
    run_dir: Path | None = None
    boot_seconds: float | None = None
    total_seconds: float | None = None


class LabDelegator:
    """On the host: decide which kernel tests go to the VM, run them there once, replay results."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.delegated: list[pytest.Item] = []
        self.delegated_ids: set[str] = set()
        self.runs: list[LabRun] | None = None
        self.run_of: dict[str, LabRun] = {}     # node id -> the guest run it was in
        self.host_note: str | None = None

    # which tests ---------------------------------------------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        kernel_items = [
            it for it in session.items
            if it.get_closest_marker(MARKER) is not None and it.get_closest_marker("skip") is None
        ]
        if not kernel_items:
            return
        mode = self.config.getoption("--lab-mode")
        if mode == "host":
            self.host_note = "kernel tests run on the host (--lab-mode host)"
            return
        ready, why = (False, "--lab-mode vm") if mode == "vm" else host_kernel_ready()
        allow_root = os.environ.get("GREBOND_LAB_ALLOW_ROOT") == "1"
        for it in kernel_items:
            root_ns = bool(it.get_closest_marker(MARKER).kwargs.get("root_ns"))  # type: ignore[union-attr]
            if not ready or (root_ns and not allow_root):
                self.delegated.append(it)
        self.delegated_ids = {it.nodeid for it in self.delegated}
        self.host_note = f"host kernel: {why}"

    # run them ------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if item.nodeid not in self.delegated_ids:
            return None
        if self.runs is None:
            self.runs = self._run_guests()
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for rep in self._reports_for(item):
            ihook.pytest_runtest_logreport(report=rep)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _say(self, msg: str) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.ensure_newline()
            tr.write_line(msg, cyan=True)

    def _run_dir(self, suffix: str = "") -> Path:
        base = Path(os.environ.get("GREBOND_LAB_DIR") or (self.config.rootpath / ".lab"))
        base.mkdir(parents=True, exist_ok=True)
        old = sorted(base.glob("run-*"))
        for stale in old[: max(0, len(old) - (KEEP_RUNS - 1))]:
            if time.time() - stale.stat().st_mtime > 7200:  # never a run another session is still using
                shutil.rmtree(stale, ignore_errors=True)
        d = base / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{suffix}"
        d.mkdir()
        return d

    def _guest_env(self, run_dir: Path) -> dict[str, str]:
        env = {
            ENV_GUEST: "1",
            ENV_REPORT: str(run_dir / "reports.jsonl"),
            "HOME": GUEST_HOME,
            "TMPDIR": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",  # the checkout is read-only in the guest
            "PYTHONUNBUFFERED": "1",
            "PATH": guest_path([os.path.dirname(sys.executable)]),
            "LANG": "C.UTF-8",
            # hypothesis wants <cwd>/.hypothesis, and a warning is an error under filterwarnings=error
            "HYPOTHESIS_STORAGE_DIRECTORY": "/tmp/grebond-lab-hypothesis",
            # grebond's state (the applied model, a pending try): the guest's /var is this machine's, read-only
            "GREBOND_STATE_DIR": "/tmp/grebond-lab-state",
        }
        for k, v in os.environ.items():  # the guest starts with an empty environment
            if (k.startswith("GREBOND_") and k not in _INTERNAL_ENV) or k in {"CI", "PYTHONPATH"}:
                env[k] = v
        return env

    def _run_guests(self) -> list[LabRun]:
        """Boot the guests side by side, each on its share of the delegated tests; wait for all."""
        ids = [it.nodeid for it in self.delegated]
        vms = self.config.getoption("--lab-vms") or default_vms()
        groups = [[ids[i] for i in g] for g in split(ids, vms)]
        runs = [LabRun() for _ in groups]
        cpus = [cpus_for(group, alone=len(groups) == 1) for group in groups]
        for k, (run, group) in enumerate(zip(runs, groups, strict=True)):
            try:
                run.run_dir = self._run_dir(f"-{k + 1}" if len(groups) > 1 else "")
            except OSError as exc:
                run.unavailable = f"cannot create lab run directory: {exc}"
                continue
            modules = sorted({n.split("::", 1)[0].rsplit("/", 1)[-1] for n in group})
            self._say(f"grebond lab: VM {k + 1}/{len(groups)} boots for {len(group)} kernel test(s) "
                      f"({cpus[k]} vCPU) "
                      f"({', '.join(modules)}); log: {run.run_dir / 'console.log'}")
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            list(pool.map(self._run_guest, runs, groups, cpus))
        for k, run in enumerate(runs):
            if run.total_seconds is not None:
                boot = f"{run.boot_seconds:.1f}s" if run.boot_seconds is not None else "n/a"
                self._say(f"grebond lab: VM {k + 1}/{len(groups)} done in {run.total_seconds:.1f}s (boot {boot})")
            elif run.unavailable:
                self._say(f"grebond lab: VM {k + 1}/{len(groups)}: {run.unavailable.splitlines()[0]}")
            for nodeid in groups[k]:
                self.run_of[nodeid] = run
        return runs

    def _run_guest(self, result: LabRun, ids: list[str], cpus: int) -> None:
        """One guest on ``ids``; fills ``result`` (runs in a worker thread: it never writes to the terminal)."""
        if result.run_dir is None:
            return
        run_dir = result.run_dir
        (run_dir / "nodeids.txt").write_text("\n".join(ids) + "\n")
        rootdir = self.config.rootpath
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rA", "--color=no",
                "--rootdir", str(rootdir), "--junitxml", str(run_dir / "junit.xml"),
                # a hung test dumps every thread's stack into the console log
                "-o", f"faulthandler_timeout={GUEST_TEST_STACKDUMP_S}"]
        if self.config.inipath:
            argv += ["-c", str(self.config.inipath)]
        argv += ids
        # pyroute2 0.7.2 beside the venv's (tests/live/test_kernel_backend.py): served from RAM too
        extra = sorted((rootdir / ".lab").glob("pyroute2-*"))
        script = guest_script(run_dir, f"cd {shlex.quote(str(rootdir))} && {shlex.join(argv)}",
                              self._guest_env(run_dir), ram_extra=extra)
        timeout = float(self.config.getoption("--lab-timeout"))
        try:
            gr = run_in_guest(script, run_dir, timeout=timeout, cwd=rootdir, cpus=cpus)
        except LabUnavailable as exc:
            result.unavailable = f"lab unavailable: {exc}"
            return
        result.boot_seconds, result.total_seconds = gr.boot_seconds, gr.total_seconds
        if not gr.started:
            what = "timed out booting" if gr.timed_out else f"did not boot (vng exit {gr.returncode})"
            result.unavailable = (f"lab VM {what}; console log {gr.console_log}:\n{gr.console_tail()}")
        else:
            self._load_reports(run_dir / "reports.jsonl", result)
            rc_file = run_dir / "rc"
            rc = rc_file.read_text().strip() if rc_file.exists() else None
            if gr.timed_out:
                result.problem = f"guest run timed out after {timeout:.0f}s (--lab-timeout)"
            elif rc is None:
                result.problem = f"guest ended without an exit code (vng exit {gr.returncode}); kernel crash?"
            elif rc not in {"0", "1", "5"}:
                result.problem = f"guest pytest exited {rc}"
            if result.problem:
                result.problem += f"; console log {gr.console_log}:\n{gr.console_tail()}"
        (run_dir / "summary.json").write_text(json.dumps({
            "tests": len(ids), "boot_seconds": gr.boot_seconds, "total_seconds": gr.total_seconds,
            "started": gr.started, "timed_out": gr.timed_out, "vng_returncode": gr.returncode,
        }, indent=2))

    def _load_reports(self, path: Path, result: LabRun) -> None:
        if not path.exists():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn last line after a crash
            if ev["event"] == "start":
                result.started.add(ev["nodeid"])
            elif ev["event"] == "report":
                rep = self.config.hook.pytest_report_from_serializable(config=self.config, data=ev["data"])
                _fix_json_tuples(rep)
                result.reports.setdefault(ev["nodeid"], []).append(rep)

    def _reports_for(self, item: pytest.Item) -> list[pytest.TestReport]:
        run = self.run_of[item.nodeid]
        if run.unavailable is not None:
            return _synthetic(item, "failed" if is_ci() else "skipped",
                              run.unavailable + ("" if is_ci() else " (CI=true would fail)"))
        reps = run.reports.get(item.nodeid, [])
        if reps and reps[-1].when == "teardown":
            return reps
        problem = run.problem or "guest pytest produced no result for this test"
        if item.nodeid in run.started:
            msg = f"guest stopped while this test was running: {problem}"
        else:
            msg = f"guest did not run this test: {problem}"
        phases = {r.when for r in reps}
        if not reps:
            return _synthetic(item, "failed", msg)
        when = "call" if "call" not in phases else "teardown"
        return [*reps, _report(item, "failed", msg, when)]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.runs is None:
            return
        tr = terminalreporter
        tr.section("grebond lab", sep="-")
        if self.host_note:
            tr.write_line(self.host_note)
        for k, r in enumerate(self.runs):
            name = f"VM {k + 1}/{len(self.runs)}: "
            if r.unavailable:
                tr.write_line(name + r.unavailable.splitlines()[0])
            if r.boot_seconds is not None:
                tests = sum(1 for run in self.run_of.values() if run is r)
                tr.write_line(f"{name}boot {r.boot_seconds:.1f}s, whole guest run {r.total_seconds:.1f}s, "
                              f"{tests} test(s)")
            if r.problem:
                tr.write_line(name + r.problem.splitlines()[0])
            if r.run_dir and (r.run_dir / "console.log").exists():
                tr.write_line(f"{name}guest console log: {r.run_dir / 'console.log'} (kernel log: dmesg.log)")


def _fix_json_tuples(rep: pytest.TestReport) -> None:
    """JSON turned tuples into lists; pytest's terminal code tests isinstance(..., tuple)."""
    rep.location = tuple(rep.location)  # type: ignore[assignment]
    if isinstance(rep.longrepr, list):
        rep.longrepr = tuple(rep.longrepr)  # type: ignore[assignment]
    rep.sections = [tuple(s) for s in rep.sections]  # type: ignore[misc]
    rep.user_properties = [tuple(p) for p in rep.user_properties]  # type: ignore[misc]


def _report(item: pytest.Item, outcome: str, msg: str, when: str) -> pytest.TestReport:
    longrepr: Any = msg if outcome == "failed" else None
    if outcome == "skipped":
        longrepr = (item.location[0], (item.location[1] or 0) + 1, f"Skipped: {msg}")
    return pytest.TestReport(
        nodeid=item.nodeid, location=item.location, keywords=dict.fromkeys(item.keywords, 1),
        outcome=outcome, longrepr=longrepr, when=when,  # type: ignore[arg-type]
    )


def _synthetic(item: pytest.Item, outcome: str, msg: str) -> list[pytest.TestReport]:
    """Reports for a test that never ran: setup skipped, or setup ok + call failed."""
    if outcome == "skipped":
        return [_report(item, "skipped", msg, "setup"), _report(item, "passed", "", "teardown")]
    return [_report(item, "passed", "", "setup"), _report(item, "failed", msg, "call"),
            _report(item, "passed", "", "teardown")]
