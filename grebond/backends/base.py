"""The interface every backend implements (built-in or third-party plugin).

A backend knows how one router's end of the model becomes real on a host. The sequence that
changes a running system (lock, preconditions, snapshot, change, verify with retries, restore,
keep) is written once, in ``grebond.apply``; a backend supplies the steps, method by method:

``render(ctx) -> Rendering``
    Pure. Reads only ``ctx.config``, ``ctx.node`` and the target versions; returns the files
    (name -> bytes) it would install. Touches nothing, imports no system library. Raises
    ``ConfigError`` for a model this backend cannot express.
``available() -> Availability``
    Cheap, read-only probe: is the service this backend drives present and running here?
    Never raises; says why not in ``reason``.
``write(rendering, ctx) -> Changes``
    Offline: makes grebond's files under ``ctx.root`` exactly the rendering (install hooks,
    images); never touches a file it did not write (``OwnershipError``). Honours ``ctx.dry_run``.
``snapshot(ctx) -> Snapshot``
    Before anything changes: reads what ``restore`` will need to put the system back. Its
    ``to_json()`` must round-trip through ``snapshot_from_json``: a pending ``grebond try`` is
    rolled back by another process.
``change(ctx, snapshot) -> Changes``
    Brings the running system to the model. With ``ctx.dry_run`` it changes nothing and says
    what it would do, with ``Changes.diff``. Raises ``SystemAccessError`` when the system could
    not be reached (daemon gone) and ``ApplyFailed`` when it refused the change; the
    transaction then calls ``restore``.
``restore(ctx, snapshot) -> str``
    Puts back what ``snapshot`` saw: persistent configuration and running state. Returns one
    sentence saying what it did; raises nothing it can report instead.
``commit(ctx, snapshot)``
    Optional: the change is kept (NetworkManager drops its checkpoint here).
``remove(ctx) -> Changes``
    Deletes what this backend created for grebond (files, connections, devices), nothing else.

Verification is not a backend's job: the transaction runs the verifier on the kernel after
``change``, the same for every backend. Backends are found through the ``grebond.backends``
entry-point group (``grebond.backends.registry``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from grebond.changes import Changes
from grebond.errors import SystemAccessError, UsageError
from grebond.model import Config
from grebond.renderer import Rendering

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Context:
    """Everything a backend call may depend on; built by the CLI (or a test) once per call."""

    config: Config
    node: str
    root: Path = Path("/")
    dry_run: bool = False
    write_only: bool = False          # persist files/keyfiles under root but leave the running system alone
    target_systemd: int = 257
    target_nm: str | None = None      # NetworkManager version to render for (None: the running one, else the default)
    timeout_s: float = DEFAULT_TIMEOUT_S
    hold_s: float | None = None
    """How long a change may stay unconfirmed (``grebond try``); None for a plain apply. NetworkManager
    sizes its checkpoint's own rollback timeout from it."""
    snapshot_grew: Callable[[Snapshot], None] | None = None
    """Told when ``change`` adds to its snapshot something a rollback needs (NetworkManager's
    checkpoint): ``try`` records it at once, for a guardian that rolls back a change left half-made."""

    @property
    def offline(self) -> bool:
        """True when only files are written (an image, a test root, or an install hook)."""
        return self.write_only or self.root != Path("/")


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str


class Snapshot:
    """What a backend saw before a change; subclasses add their fields and keep ``to_json`` JSON-able."""

    def to_json(self) -> dict[str, Any]:
        return {}


class Backend(ABC):
    """One way of realising the model on a host. Subclass it and register an entry point."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""

    @abstractmethod
    def render(self, ctx: Context) -> Rendering:
        """Pure: the files this backend would install for ``ctx.node``."""

    def available(self) -> Availability:
        return Availability(True, "no service needed")

    def ready(self, ctx: Context) -> None:
        """Refuse (SystemAccessError) before anything changes when the running system cannot take a
        live change; the default asks ``available()``."""
        availability = self.available()
        if not availability.ok:
            raise SystemAccessError(f"{availability.reason}; or write the persistent configuration only "
                                    "with --write-only or --root")

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        raise UsageError(f"backend '{self.name}' changes the running system and has no files to write with --root "
                         "or --write-only; use the networkd or networkmanager backend for persistent files, or "
                         "'grebond render --backend iproute2' for a script")

    def snapshot(self, ctx: Context) -> Snapshot:
        raise UsageError(f"backend '{self.name}' cannot change a running system; use 'grebond render' or "
                         "'apply --root DIR'")

    def snapshot_from_json(self, data: dict[str, Any]) -> Snapshot:
        return Snapshot()

    def change(self, ctx: Context, snapshot: Snapshot) -> Changes:
        raise UsageError(f"backend '{self.name}' cannot change a running system")

    def restore(self, ctx: Context, snapshot: Snapshot) -> str:
        return "nothing to restore"

    def commit(self, ctx: Context, snapshot: Snapshot) -> None:
        return None

    def remove(self, ctx: Context) -> Changes:
        raise UsageError(f"backend '{self.name}' cannot remove anything")


REQUIRED_METHODS = ("render", "available", "write", "snapshot", "change", "restore", "remove")
