"""Top-level test configuration: load the kernel lab plugin (marker ``kernel``, fixtures ``lab``/``lab_factory``).

tests/ goes on sys.path so ``lab`` imports the same way under every --import-mode.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import pytest  # noqa: E402

pytest_plugins = ["lab.plugin"]

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Markers live here, so that ``-m`` works whichever subset of tests/ is collected."""
    config.addinivalue_line("markers", "deb: needs the .deb built by .ci/build-deb (slow; in $GREBOND_DEB_DIR)")
    config.addinivalue_line(
        "markers", "pinned: needs the pinned pyroute2 copies in .lab/ (./setup --test puts them there; "
                   "the package build has no network to fetch them, so debian/rules deselects these)")


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Load examples by their relative path so the header (which names the source) is stable."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    """examples/seed.yaml copied with a known mode (0644, as root wants it): tests never apply the
    checkout's file in place, whose mode depends on how it was checked out (git archive keeps 0664)."""
    path = tmp_path / "config" / "seed.yaml"
    path.parent.mkdir()
    path.write_bytes((REPO / "examples" / "seed.yaml").read_bytes())
    path.chmod(0o644)
    return path

