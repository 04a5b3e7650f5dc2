"""Golden files: compare rendered bytes with tests/golden/...; GREBOND_UPDATE_GOLDEN=1 rewrites them.

Regenerate on purpose with:  GREBOND_UPDATE_GOLDEN=1 .venv/bin/pytest tests -k golden
then review the diff with git before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GREBOND_UPDATE_GOLDEN") == "1"


def assert_golden(relpath: str, content: bytes) -> None:
    """Assert ``content`` equals tests/golden/``relpath`` byte for byte (or rewrite it when updating)."""
    path = GOLDEN_DIR / relpath
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return
    assert path.exists(), f"no golden file {path}; create it with GREBOND_UPDATE_GOLDEN=1"
    expected = path.read_bytes()
    assert content == expected, (
        f"{relpath} differs from the golden file; if the change is intended, regenerate with "
        f"GREBOND_UPDATE_GOLDEN=1 and review the diff\n--- golden\n{expected.decode(errors='replace')}"
        f"\n--- rendered\n{content.decode(errors='replace')}"
    )


def assert_golden_set(reldir: str, names: list[str]) -> None:
    """The golden directory holds exactly ``names``: no stale golden file for one no longer rendered,
    and none missing (when updating, stale ones are removed)."""
    directory = GOLDEN_DIR / reldir
    if UPDATE:
        for stale in directory.iterdir() if directory.is_dir() else []:
            if stale.name not in names:
                stale.unlink()
        return
    assert names, f"nothing rendered for {reldir}"
    assert directory.is_dir(), f"no golden directory {directory}; create it with GREBOND_UPDATE_GOLDEN=1"
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


def golden_for(path: Path, golden: bytes) -> bytes:
    """A golden file as an apply of ``path`` writes it: the header names the config by its resolved path."""
    return golden.replace(b"from examples/seed.yaml", f"from {path.resolve()}".encode(), 1)
