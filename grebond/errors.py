"""The errors grebond raises, one class per kind of failure.

The CLI maps each class to an exit status in one place (``grebond.cli``); locations are
fields, never parsed back out of message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_DRIFT = 1        # verification found a difference, or apply failed and rolled back
EXIT_USAGE = 2        # the user's input (config, arguments) is wrong; nothing was changed
EXIT_SYSTEM = 3       # the system could not be read or changed (no daemon, not root, lock held)


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or risky) in a config file, with where it is and how to fix it."""

    file: str
    line: int | None
    path: str
    message: str
    fix: str = ""
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        label = "warning: " if self.warning else ""
        text = f"{where}: {label}{self.path + ': ' if self.path else ''}{self.message}"
        if self.fix:
            text += f"; {self.fix}"
        # one line per problem, whatever the input contained
        return " ".join(text.split())


class GrebondError(Exception):
    """Base of every error grebond reports without a traceback."""

    exit_status = EXIT_SYSTEM


class ConfigError(GrebondError, ValueError):
    """The configuration is invalid; ``problems`` lists every problem found, not just the first."""

    exit_status = EXIT_USAGE

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(GrebondError, ValueError):
    """A command-line argument is wrong (unknown node, backend, option)."""

    exit_status = EXIT_USAGE


class SystemAccessError(GrebondError, OSError):
    """The running system cannot be read or changed: daemon absent, not root, lock held."""

    exit_status = EXIT_SYSTEM


class OwnershipError(GrebondError, FileExistsError):
    """A file grebond would write exists and was not written by grebond."""

    exit_status = EXIT_SYSTEM

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path}: exists and was not written by grebond; grebond never overwrites it. "
            "Rename or remove it yourself, or rename the interface in the config"
        )


class ApplyFailed(GrebondError, RuntimeError):
    """Apply could not reach the model and restored the previous state (or was told not to)."""

    exit_status = EXIT_DRIFT
