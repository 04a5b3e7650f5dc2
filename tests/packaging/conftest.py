"""Packaging tests: shared paths, the ``deb`` marker and the built-.deb fixture.

Marker ``deb``: the test needs the .deb that ``.ci/build-deb`` builds (slow). It is looked
for in $GREBOND_DEB_DIR (default <repo>/build/deb); when missing the test is skipped with
the reason, except under CI=true, where a missing .deb is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
DEBIAN = REPO / "debian"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deb: needs the .deb built by .ci/build-deb (slow; in $GREBOND_DEB_DIR)")


def is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def deb_dir() -> Path:
    return Path(os.environ.get("GREBOND_DEB_DIR") or REPO / "build" / "deb")


@pytest.fixture(scope="session")
def deb() -> Path:
    """The built grebond_*_all.deb."""
    found = sorted(deb_dir().glob("grebond_*_all.deb"))
    if len(found) == 1:
        return found[0]
    why = (f"no grebond_*_all.deb in {deb_dir()} (run .ci/build-deb, or set GREBOND_DEB_DIR)" if not found
           else f"several .debs in {deb_dir()}: {', '.join(p.name for p in found)}")
    if is_ci():
        pytest.fail(why)
    pytest.skip(why)
