"""The running systemd's version, which decides what networkd can do on reload."""

from __future__ import annotations

import re
import subprocess


def version() -> int | None:
    """systemd's major version from ``networkctl --version`` (None when not installed)."""
    try:
        out = subprocess.run(["networkctl", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"systemd (\d+)", out)
    return int(match.group(1)) if match else None
