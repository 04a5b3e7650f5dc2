"""Is a daemon running? Found by name in /proc: cheap, no D-Bus, no privileges.

A killed daemon stays in /proc as a zombie until its parent reaps it (at once under systemd,
later under a test harness or a shell): a zombie is not running, so it is skipped.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def running_pid(comm: str, cmdline_has: bytes | None = None) -> int | None:
    """Pid of a live process whose comm is ``comm`` (and whose command line contains ``cmdline_has``)."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != comm:
                continue
            stat = (entry / "stat").read_text()
            if stat[stat.rindex(")") + 2:][:1] in ("Z", "X"):      # zombie or dead
                continue
            if cmdline_has is not None and cmdline_has not in (entry / "cmdline").read_bytes():
                continue
            return int(entry.name)
        except (OSError, ValueError):
            continue
    return None
