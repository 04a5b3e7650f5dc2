"""The interface every backend implements (built-in or third-party plugin).

Contract, method by method:

``render(ctx) -> Rendering``
    Pure. Reads only ``ctx.config`` and ``ctx.node``; returns the files (name -> bytes) and,
    optionally, plain data (e.g. NetworkManager settings dicts). Touches nothing on the host,
    imports no system library. Raises ``ConfigError`` for a model this backend cannot express.
``available() -> Availability``
    Cheap, read-only probe: is the service this backend drives present and running here?
    Never raises; says why not in ``reason``.
``write(rendering, ctx) -> Changes``
    Persists the rendering under ``ctx.root`` only (e.g. ROOT/etc/systemd/network); removes
    files it generated earlier that the rendering no longer has; never touches a file it did
    not write (raises ``OwnershipError``). Does not talk to any daemon. Honours ``ctx.dry_run``.
``apply(ctx) -> Changes``
    Brings the running system to the model for ``ctx.node`` (persistently if the backend is
    persistent), then checks it. Raises ``SystemAccessError`` (exit 3) when the system cannot be
    changed at all (service absent, not root) and ``ApplyFailed`` (exit 1) when it was changed
    but did not verify (after restoring the previous state, unless ``ctx.rollback`` is False).
``remove(ctx) -> Changes``
    Deletes what this backend created for grebond (files, connections, devices), and nothing
    else. Same errors as ``apply``.

Backends are found through the ``grebond.backends`` entry-point group (see ``registry``).
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TextIO

from grebond.errors import UsageError
from grebond.model import Config
from grebond.renderer import Rendering


@dataclass(frozen=True)
class Context:
    """Everything a backend call may depend on; built by the CLI (or a test) once per call."""

    config: Config
    node: str
    root: Path = Path("/")
    dry_run: bool = False
    write_only: bool = False          # persist files/keyfiles under root but leave the running system alone
    rollback: bool = True
    target_systemd: int = 252
    target_nm: str | None = None      # NetworkManager version to render for (None: the running one, or 1.42)
    timeout_s: float = 30.0
    out: TextIO = field(default=sys.stdout, compare=False)

    @property
    def offline(self) -> bool:
        """True when only files are written (an image, a test root, or an install hook)."""
        return self.write_only or self.root != Path("/")

    def say(self, text: str) -> None:
        print(text, file=self.out)


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str


@dataclass
class Changes:
    """What a write/apply/remove did (or, with --dry-run, would do)."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    def lines(self, dry_run: bool = False) -> list[str]:
        verb = "would " if dry_run else ""
        out = [f"{verb}write {x}" if dry_run else f"wrote {x}" for x in self.written]
        out += [f"{verb}remove {x}" if dry_run else f"removed {x}" for x in self.removed]
        out += [f"{verb}recreate {x}" if dry_run else f"recreated {x}" for x in self.recreated]
        out += [f"{verb}{x}" for x in self.actions]
        if not out:
            out.append("nothing to change")
        return out


class Backend(ABC):
    """One way of realising the model on a host. Subclass it and register an entry point."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    persistent: ClassVar[bool] = True

    @abstractmethod
    def render(self, ctx: Context) -> Rendering:
        """Pure: the files (and data) this backend would install for ``ctx.node``."""

    def available(self) -> Availability:
        return Availability(True, "no service needed")

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        raise UsageError(f"backend '{self.name}' has no files to install; use 'grebond render' or 'apply'")

    def apply(self, ctx: Context) -> Changes:
        raise UsageError(f"backend '{self.name}' cannot apply to a running system")

    def remove(self, ctx: Context) -> Changes:
        raise UsageError(f"backend '{self.name}' cannot remove anything")


REQUIRED_METHODS = ("render", "available", "write", "apply", "remove")
