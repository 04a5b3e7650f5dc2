"""Every error grebond reports, one class per kind of failure, grouped by the exit status it has.

The CLI maps each class to its exit status in one place (``grebond.cli``) through the family it
belongs to; no subclass changes its family's status. Locations are fields, never parsed back out
of message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_DRIFT = 1        # verification found a difference, or an apply did not take (and was rolled back)
EXIT_USAGE = 2        # the user's input (config, arguments, file modes) is wrong; nothing was changed
EXIT_SYSTEM = 3       # the system could not be read or changed (no daemon, not root, lock held)
EXIT_DEGRADED = 4     # the configuration matches, but the underlay is degraded (tunnels share a path, one is down)


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or risky) in a config file, with where it is and how to fix it."""

    file: str
    line: int | None
    path: str
    message: str
    fix: str = ""
    warning: bool = False
    column: int | None = None
    excerpt: tuple[str, ...] = ()
    """The offending text and a caret under it (YAML syntax errors); printed under the one-line message."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.line and self.column:
            where += f":{self.column}"
        label = "warning: " if self.warning else ""
        text = f"{where}: {label}{self.path + ': ' if self.path else ''}{self.message}"
        if self.fix:
            text += f"; {self.fix}"
        # one line per problem, whatever the input contained
        return " ".join(text.split())


class GrebondError(Exception):
    """Base of every error grebond reports without a traceback."""

    exit_status = EXIT_SYSTEM


# ----------------------------------------------------------------------------- exit 1

class ApplyFailed(GrebondError, RuntimeError):
    """The system took the change but did not come to match the model (or refused part of it)."""

    exit_status = EXIT_DRIFT


class RolledBack(ApplyFailed):
    """An apply (or an unconfirmed try) was undone: the previous state is back."""


# ----------------------------------------------------------------------------- exit 2

class UsageError(GrebondError, ValueError):
    """A command-line argument is wrong (unknown node, backend, option)."""

    exit_status = EXIT_USAGE


class ConfigError(UsageError):
    """The configuration is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class InsecureConfigError(UsageError):
    """The config (or its directory) is owned or writable by a non-root user (like sshd's StrictModes)."""


class PlaintextUnderlayError(UsageError):
    """A tunnel would carry the bond's traffic unencrypted; refused before anything changes."""


class PendingChangeError(UsageError):
    """A ``grebond try`` is waiting for confirmation: no other change until it is confirmed or rolled back."""


# ----------------------------------------------------------------------------- exit 3

class SystemAccessError(GrebondError, OSError):
    """The running system cannot be read or changed: daemon absent, not root, lock held."""

    exit_status = EXIT_SYSTEM


class OwnershipError(SystemAccessError, FileExistsError):
    """A file grebond would write exists and was not written by grebond."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path}: exists and was not written by grebond; grebond never overwrites it. "
            "Rename or remove it yourself, or rename the interface in the config"
        )


class LockBusy(SystemAccessError):
    """Another grebond holds the lock (a guardian waits and tries again; a user is told who)."""


class OutputError(SystemAccessError):
    """A file or directory grebond was told to write cannot be written (not a directory, read-only...)."""


class DaemonRefused(SystemAccessError):
    """A network daemon answered a call with an error; ``name`` is its error name (e.g. a D-Bus error)."""

    def __init__(self, method: str, name: str, text: str, daemon: str = "NetworkManager") -> None:
        self.method, self.name, self.text = method, name, text
        super().__init__(f"{daemon} refused {method}: {text} ({name})")
