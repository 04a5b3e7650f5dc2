"""What a test needs from the machine: skip without it on a developer's machine, FAIL in CI.

Why: .ci/run installs everything (root, the lab, NetworkManager, dpkg tools, the .deb), so in CI
(CI=true) a missing piece is a broken set-up, and a skip would hide a test that never ran.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(present: object, why: str) -> None:
    """Go on when ``present`` is true; otherwise skip with ``why``, or fail with it under CI=true."""
    if present:
        return
    if is_ci():
        pytest.fail(f"{why} (CI=true: .ci/run must provide it)")
    pytest.skip(why)


def need_module(name: str, why: str) -> ModuleType:
    """``need`` for a module a whole test module imports: at collection, so under CI=true its absence
    is a collection error (the run fails), elsewhere the test module is skipped."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if is_ci():
            pytest.fail(f"{why} (CI=true: .ci/run must provide it)", pytrace=False)
        pytest.skip(why, allow_module_level=True)
