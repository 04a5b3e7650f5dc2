"""One transaction for every change to a running system, whatever the backend.

lock -> preconditions -> ``backend.snapshot`` -> ``backend.change`` -> verify (retried while the
system settles) -> ``backend.restore`` on any failure, or keep. Written once, here (nmstate's
netapplier does the same): a backend supplies only those steps. ``grebond apply`` keeps the change
as soon as it verifies; ``grebond try`` (``grebond.trial``) holds it, snapshot and all, until it is
confirmed or its deadline passes.

A dry run goes through the same preconditions and asks the backend what it would change; it
then refuses with the status the real apply would have (an insecure config, a daemon that is not
running, a plaintext underlay), after the caller has shown the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from grebond.backends.base import Backend, Context, Snapshot
from grebond.changes import Changes
from grebond.errors import ApplyFailed, GrebondError, RolledBack, SystemAccessError
from grebond.kernel import modules
from grebond.lock import exclusive
from grebond.pending import refuse_if_pending, save_applied
from grebond.security import check_config_permissions
from grebond.verifier import Report, verify


@dataclass
class Outcome:
    """What a transaction did: the changes, the verifier's report, and the snapshot to restore from."""

    changes: Changes
    report: Report | None = None
    snapshot: Snapshot | None = None
    refusal: GrebondError | None = None
    """A dry run only: the refusal the real run would have met (raised once the diff is shown)."""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"changed": self.changes.changed, "changes": self.changes.lines(dry_run=False),
                               "diff": "\n".join(self.changes.diff)}
        if self.report is not None:
            out["verify"] = self.report.as_dict()
        return out


@dataclass
class Transaction:
    """``with Transaction(backend, ctx, config_path) as tx: outcome = tx.run(); tx.keep()``."""

    backend: Backend
    ctx: Context
    config_path: Path
    rollback: bool = True
    action: str = "apply"
    before_change: Callable[[Snapshot], None] | None = None
    """Called with the snapshot just before the change (not in a dry run): ``try`` records it there, so
    that a process killed during the change is still rolled back."""
    _lock: Any = field(default=None, init=False, repr=False)
    _snapshot: Snapshot | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> Transaction:
        if not self.ctx.dry_run:
            if not self.ctx.offline and os.geteuid() != 0:
                raise self._not_root()      # before the lock, which only root may take
            self._lock = exclusive()
            self._lock.__enter__()
        return self

    def _not_root(self) -> SystemAccessError:
        return SystemAccessError(f"'grebond {self.action}' changes the network and must run as root (try sudo)")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._lock is not None:
            self._lock.__exit__(kind, exc, tb)
            self._lock = None

    def refusals(self, underlay: bool = True) -> list[GrebondError]:
        """Every precondition that fails, in the order a real run checks them."""
        found: list[GrebondError] = []
        live = not self.ctx.offline
        if live and os.geteuid() != 0:
            found.append(self._not_root())
        try:
            check_config_permissions(self.config_path)
            if self.ctx.root == Path("/"):      # a pending try is this host's; an image is not concerned
                refuse_if_pending()
        except GrebondError as exc:
            found.append(exc)
        if live and underlay:
            try:
                from grebond.probe import require_encrypted_underlay  # reads routes: live changes only

                require_encrypted_underlay(self.ctx.config.bonds_of(self.ctx.node))
            except GrebondError as exc:
                found.append(exc)
        if live:
            try:
                self.backend.ready(self.ctx)
            except GrebondError as exc:
                found.append(exc)
        if live and self.action != "remove":
            lacking = modules.refusal(modules.needed(self.ctx.config.bonds_of(self.ctx.node)))
            if lacking:
                found.append(SystemAccessError(lacking))
        return found

    def run(self) -> Outcome:
        """Change the system and verify it; on failure put the snapshot back and raise."""
        refusals = self.refusals()
        if refusals and not self.ctx.dry_run:
            raise refusals[0]
        if self.ctx.offline:
            changes = self.backend.write(self.backend.render(self.ctx), self.ctx)
            return Outcome(changes, refusal=refusals[0] if refusals else None)
        snapshot = self._snapshot = self.backend.snapshot(self.ctx)
        if self.ctx.dry_run:
            return Outcome(self.backend.change(self.ctx, snapshot), snapshot=snapshot,
                           refusal=refusals[0] if refusals else None)
        if self.before_change is not None:
            self.before_change(snapshot)
        try:
            changes = self.backend.change(self.ctx, snapshot)
        except (SystemAccessError, ApplyFailed) as exc:
            if not self.rollback:
                raise
            note = self.backend.restore(self.ctx, snapshot)
            kind = SystemAccessError if isinstance(exc, SystemAccessError) else RolledBack
            raise kind(f"{exc}; {note}") from exc
        report = _verify(self.ctx)
        if not report.ok:
            lines = [c.line() for c in report.failures]
            if not self.rollback:
                self.backend.commit(self.ctx, snapshot)
                raise ApplyFailed("the new state did not verify (kept: --no-rollback):\n" + "\n".join(lines))
            note = self.backend.restore(self.ctx, snapshot)
            raise RolledBack(f"the new state did not verify (waited {self.ctx.timeout_s:g} s); {note}:\n"
                             + "\n".join(lines))
        return Outcome(changes, report, snapshot)

    def keep(self) -> None:
        """The change stays (a plain apply, or a confirmed try)."""
        if self._snapshot is not None and not self.ctx.dry_run:
            self.backend.commit(self.ctx, self._snapshot)

    def restore(self) -> str:
        """Undo a change that ``run`` made and verified (a try that was not confirmed)."""
        assert self._snapshot is not None
        return self.backend.restore(self.ctx, self._snapshot)


def _verify(ctx: Context) -> Report:
    """The verifier on the kernel, retried for up to ``ctx.timeout_s`` while links come up."""
    return verify(ctx.config, ctx.node, settle_s=ctx.timeout_s)


def apply(backend: Backend, ctx: Context, config_path: Path, config_text: str, *,
          rollback: bool = True) -> Outcome:
    """The whole of ``grebond apply``: change, verify, keep (or restore and raise), and record the
    model now running, which a later ``grebond try`` restores and verifies if it is not confirmed."""
    with Transaction(backend, ctx, config_path, rollback=rollback) as tx:
        outcome = tx.run()
        if outcome.refusal is None and not ctx.dry_run:
            tx.keep()
            if not ctx.offline:
                try:
                    save_applied(ctx.node, backend.name, config_text)
                except SystemAccessError as exc:     # the change itself is done and verified
                    outcome.changes.notes.append(f"note: {exc}; a later 'grebond try' cannot verify its "
                                                 "rollback against this model")
        return outcome


def remove(backend: Backend, ctx: Context, config_path: Path) -> Changes:
    """``grebond remove``: grebond's files, profiles and devices for this end, nothing else."""
    with Transaction(backend, ctx, config_path, action="remove") as tx:
        refusals = tx.refusals(underlay=False)
        if refusals and not ctx.dry_run:
            raise refusals[0]
        return backend.remove(ctx)
