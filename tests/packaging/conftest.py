"""Packaging tests: shared paths, the ``deb`` marker and the built-.deb fixture.

Marker ``deb``: the test needs the .deb that ``.ci/build-deb`` builds (slow). It is looked
for in $GREBOND_DEB_DIR (default <repo>/build/deb); when missing the test is skipped with
the reason, except under CI=true, where a missing .deb is a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.package import find_deb
from needs import need

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
DEBIAN = REPO / "debian"


@pytest.fixture(scope="session")
def deb() -> Path:
    """The built grebond_*_all.deb (the lab's package tests look for it the same way)."""
    found, why = find_deb()
    need(found, why)
    assert found is not None
    return found
