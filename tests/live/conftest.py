"""Fixtures shared by the kernel tests: the daemons, stopped and cleaned up after each test.

The guest's /etc is an overlay discarded at shutdown; the fixtures still leave it as they found
it, because many tests share one boot.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import NETWORKD_DIR, NM_KEYDIR, Networkd, NetworkManager

NETWORKD_PREFIX = "40-grebond-"
NM_LAB_PROFILES = ("grebond-*.nmconnection", "lab-unrelated.nmconnection")
REPORT_ENV = "GREBOND_LAB_REPORT"     # lab.plugin.ENV_REPORT: a file in the run's directory on the host


@pytest.fixture(autouse=True)
def state_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test its own GREBOND_STATE_DIR, so a try one test leaves pending cannot refuse the next
    test's applies; kept beside the console log on the host (guardian.log survives the VM)."""
    report = os.environ.get(REPORT_ENV)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    path = Path(report).parent / "state" / name if report else tmp_path / "state"
    path.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("GREBOND_STATE_DIR", str(path))
    yield path
    try:     # a guardian left behind would roll back at its deadline, in the middle of a later test
        guardian = json.loads((path / "pending.json").read_text()).get("guardian", "")
    except (OSError, ValueError):
        return
    if guardian.startswith("pid:"):
        pid = int(guardian.removeprefix("pid:"))
        try:      # SIGTERM first: the guardian writes where it was to guardian.log (faulthandler)
            os.kill(pid, signal.SIGTERM)
            time.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


@pytest.fixture
def networkd(tmp_path: Path) -> Iterator[Networkd]:
    nd = Networkd(tmp_path / "networkd.log")
    yield nd
    nd.close()
    for p in NETWORKD_DIR.glob(f"{NETWORKD_PREFIX}*"):
        p.unlink()


@pytest.fixture
def nm(tmp_path: Path) -> Iterator[NetworkManager]:
    daemon = NetworkManager(tmp_path / "nm.log")
    yield daemon
    daemon.close()
    for pattern in NM_LAB_PROFILES:
        for p in NM_KEYDIR.glob(pattern):
            p.unlink()
    subprocess.run(["ip", "link", "del", "gbldummy0"], capture_output=True)
