"""Commands that read the running kernel: verify, status (placeholder until the verifier lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pass
