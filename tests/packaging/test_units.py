"""The systemd units have one source: each unit in packaging/systemd/ is what the .deb ships
(debian/grebond.<unit>, which dh_installsystemd installs), byte for byte or as a symlink to it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "packaging" / "systemd").iterdir())
# the package build runs these tests from a copy without debian/ (debian/pybuild.testfiles):
# there the question does not arise, the build itself installs debian/'s units
pytestmark = pytest.mark.skipif(not (REPO / "debian").is_dir(), reason="no debian/ in the package build's copy")


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_debian_ships_the_packaging_unit(unit: Path) -> None:
    shipped = REPO / "debian" / f"grebond.{unit.name}"
    assert shipped.exists(), f"{unit.name} is in packaging/systemd but not in debian/ (add debian/grebond.{unit.name})"
    assert shipped.read_bytes() == unit.read_bytes(), f"debian/grebond.{unit.name} differs from packaging/systemd/"


def test_debian_ships_no_unit_the_packaging_lacks() -> None:
    names = {u.name for u in UNITS}
    extra = [p.name for p in (REPO / "debian").glob("grebond.*") if p.suffix in (".service", ".timer")
             and p.name.removeprefix("grebond.") not in names]
    assert not extra, f"units in debian/ without a source in packaging/systemd: {extra}"
