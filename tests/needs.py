"""What a test needs from the machine: skip without it on a developer's machine, FAIL in CI.

Why: .ci/run installs everything (root, the lab, NetworkManager, dpkg tools, the .deb), so in CI
(CI=true) a missing piece is a broken set-up, and a skip would hide a test that never ran.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(present: object, why: str, *, module_level: bool = False) -> None:
    """Go on when ``present`` is true; otherwise skip with ``why``, or fail with it under CI=true.
    ``module_level``: called at a test module's import (its collection fails, or it is skipped whole)."""
    if present:
        return
    if is_ci():
        pytest.fail(f"{why} (CI=true: .ci/run must provide it)", pytrace=not module_level)
    pytest.skip(why, allow_module_level=module_level)


def need_module(name: str, why: str) -> None:
    """``need`` for a module a whole test module imports."""
    need(importlib.util.find_spec(name.partition(".")[0]) is not None, why, module_level=True)
