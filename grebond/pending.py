"""The record of a change waiting for confirmation (``grebond try``), kept on disk so that another
process can confirm it, roll it back, or report it, and so that no other change starts meanwhile.

One pending change per host. The record holds everything a rollback needs without the process
that made the change: the backend's snapshot, the node, the deadline, and the previously applied
model to verify the rollback against. It lives in grebond's state directory (``/var/lib/grebond``;
``GREBOND_STATE_DIR`` for tests and images) and is written atomically, with grebond's header.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grebond.errors import PendingChangeError, SystemAccessError
from grebond.files import remove_generated, write_atomic
from grebond.generated import GENERATED_MARKER

HEADER_KEY = "generated-by"


STALE_AFTER_S = 30.0     # a rollback takes seconds: a record this far past its deadline lost its guardian


def state_dir() -> Path:
    return Path(os.environ.get("GREBOND_STATE_DIR", "/var/lib/grebond"))


def pending_path() -> Path:
    return state_dir() / "pending.json"


def last_path() -> Path:
    return state_dir() / "last-try.json"


@dataclass
class Pending:
    """A try: applied and verified on this end, kept only if confirmed before ``deadline``."""

    id: str
    node: str
    backend: str
    config: str
    root: str
    created: float
    deadline: float
    timeout_s: float
    snapshot: dict[str, Any]
    ping: list[str] = field(default_factory=list)
    previous_config: str | None = None     # the model applied before, whose state a rollback restores
    config_text: str = ""                  # the model tried, as it was then (the file may be edited meanwhile)
    guardian: str = ""                     # how the rollback outlives this process: a unit name or a pid
    changes: list[str] = field(default_factory=list)
    owner: int = 0
    """The pid of the ``try`` making the change, from just before it until it verified; 0 after."""

    @property
    def verified(self) -> bool:
        return self.owner == 0

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.deadline - time.time())

    def describe(self) -> str:
        if not self.verified:
            return (f"a 'grebond try' of {self.config} for node {self.node} (backend {self.backend}) is being applied "
                    f"(pid {self.owner})")
        until = time.strftime("%H:%M:%S", time.localtime(self.deadline))
        return (f"a 'grebond try' of {self.config} for node {self.node} (backend {self.backend}) is waiting for "
                f"confirmation until {until} ({self.remaining_s:.0f} s left)")


def _write(path: Path, data: dict[str, Any]) -> None:
    body = json.dumps({HEADER_KEY: f"{GENERATED_MARKER}; do not edit", **data}, separators=(",", ":"))
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, (body + "\n").encode(), 0o600)
    except OSError as exc:
        raise SystemAccessError(f"cannot record the pending change in {path}: {exc.strerror or exc}; "
                                "set GREBOND_STATE_DIR to a writable directory") from exc


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SystemAccessError(f"{path}: cannot read the pending change ({exc}); if no 'grebond try' is "
                                "running, remove the file") from exc
    if not isinstance(data, dict):
        raise SystemAccessError(f"{path}: not a pending change grebond wrote")
    data.pop(HEADER_KEY, None)
    return data


def save(pending: Pending) -> None:
    _write(pending_path(), asdict(pending))


def load() -> Pending | None:
    data = _read(pending_path())
    return Pending(**data) if data is not None else None


def clear(outcome: str) -> None:
    """The pending change ended (confirmed, rolled back): record how, for ``status``, and forget it."""
    pending = load()
    if pending is not None:
        _write(last_path(), {"id": pending.id, "node": pending.node, "backend": pending.backend,
                             "config": pending.config, "ended": time.time(), "outcome": outcome})
    remove_generated(pending_path())


def discard(pending_id: str) -> None:
    """Forget a try that changed nothing (or whose transaction already restored the state)."""
    pending = load()
    if pending is not None and pending.id == pending_id:
        remove_generated(pending_path())


def amend_last(outcome: str) -> None:
    """Say more about how the last try ended (the verdict of a rollback's verification)."""
    record = _read(last_path())
    if record is not None:
        _write(last_path(), {**record, "outcome": outcome})


def last() -> dict[str, Any] | None:
    """How the last try ended, or None."""
    return _read(last_path())


def refuse_if_pending() -> None:
    """No change while a try waits for confirmation (exit 2, naming it)."""
    pending = load()
    if pending is None:
        return
    if time.time() - pending.deadline > STALE_AFTER_S:
        until = time.strftime("%H:%M:%S", time.localtime(pending.deadline))
        raise PendingChangeError(f"a 'grebond try' of {pending.config} for node {pending.node} (backend "
                                 f"{pending.backend}) passed its deadline {until} and nothing rolled it back (see "
                                 f"{state_dir() / 'guardian.log'}); roll it back ('grebond rollback') or keep it "
                                 "('grebond confirm') first")
    raise PendingChangeError(f"{pending.describe()}; confirm it ('grebond confirm') or roll it back "
                             "('grebond rollback') first")


# ----------------------------------------------------------------------------- the applied model

def applied_path(node: str) -> Path:
    return state_dir() / f"applied-{node}.yaml"


def save_applied(node: str, backend: str, config_text: str) -> None:
    """The model this node now runs (after an apply, or a confirmed try): what a later try's rollback
    verifies against. YAML comments first, so the record reads as a config and says it is generated."""
    header = f"# {GENERATED_MARKER}: the model node {node} runs (backend {backend}); do not edit.\n"
    path = applied_path(node)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, (header + config_text).encode(), 0o600)
    except OSError as exc:
        raise SystemAccessError(f"cannot record the applied model in {path}: {exc.strerror or exc}; set "
                                "GREBOND_STATE_DIR to a writable directory") from exc


def applied(node: str) -> str | None:
    try:
        return applied_path(node).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SystemAccessError(f"cannot read {applied_path(node)}: {exc.strerror or exc}") from exc
