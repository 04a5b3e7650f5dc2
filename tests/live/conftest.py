"""Fixtures shared by the kernel tests: the daemons, stopped and cleaned up after each test.

The guest's /etc is an overlay discarded at shutdown; the fixtures still leave it as they found
it, because many tests share one boot.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import NETWORKD_DIR, NM_KEYDIR, Networkd, NetworkManager

NETWORKD_PREFIX = "40-grebond-"
NM_LAB_PROFILES = ("grebond-*.nmconnection", "lab-unrelated.nmconnection")


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
