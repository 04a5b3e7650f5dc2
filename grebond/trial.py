"""``grebond try``: apply, then keep the change only if it is confirmed before a deadline.

The change is the apply transaction's (``grebond.apply``), stopped before ``commit``: it is
verified on this end, and its snapshot is written to disk with the deadline (``grebond.pending``).
From then on the rollback does not depend on the process that made the change. A guardian
outlives it: a transient systemd service where systemd is PID 1 (it survives the SSH session
and logind's clean-up of it), otherwise a detached process in a session of its own (a hung-up
terminal or a killed ``try`` does not reach it). The guardian waits; at the deadline it rolls
the change back — persistent configuration and running state — and verifies the previous model.
With ``--ping`` it confirms by itself as soon as every address answers across the bond, which is
what an unattended change uses. NetworkManager also gets a checkpoint whose own rollback fires a
little after the deadline, in case the guardian dies too.

``confirm`` (Enter in the ``try`` terminal, or ``grebond confirm`` from any shell) keeps the
change; ``rollback`` undoes it at once.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from grebond.apply import Outcome, Transaction
from grebond.backends.base import Backend, Context, Snapshot
from grebond.backends.registry import get as get_backend
from grebond.errors import GrebondError, LockBusy, SystemAccessError, UsageError
from grebond.lock import exclusive
from grebond.model import Config
from grebond.pending import Pending, amend_last, applied, clear, discard, load, save, save_applied, state_dir
from grebond.validation import parse_config
from grebond.verifier import Report, verify

DEFAULT_TIMEOUT_S = 120.0
GUARD_POLL_S = 0.5
UNVERIFIED_MARGIN_S = 30.0
PING_EVERY_S = 1.0


def begin(backend: Backend, ctx: Context, config_path: Path, timeout_s: float, ping: list[str],
          config_text: str, deadline: float | None = None) -> tuple[Outcome, Pending | None]:
    """Apply and verify; leave the change pending with a guardian. Nothing changed: nothing pending.

    The record and its guardian exist before the change starts (``Transaction.before_change``): a
    ``try`` killed or hung up during the change, or while it verifies, is rolled back at once. The
    deadline is ``timeout_s`` after the change is verified, or ``deadline`` itself (seconds since the
    epoch) when given: one moment for a whole fleet, whatever each host's apply took."""
    if deadline is not None:
        timeout_s = deadline - time.time()
        if timeout_s <= 0:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(deadline))
            raise UsageError(f"--deadline {deadline:.0f} ({when}) has passed; give a moment in the future")
    if timeout_s <= 0:
        raise UsageError(f"--timeout {timeout_s:g}: must be more than 0 seconds")
    ctx = replace(ctx, hold_s=timeout_s)
    record = _Record(Pending(id=secrets.token_hex(4), node=ctx.node, backend=backend.name, config=str(config_path),
                             root=str(ctx.root), created=0.0, deadline=0.0, timeout_s=ctx.timeout_s, snapshot={},
                             ping=ping, config_text=config_text, owner=os.getpid()), timeout_s)
    ctx = replace(ctx, snapshot_grew=record.grew)
    with Transaction(backend, ctx, config_path, action="try", before_change=record.start) as tx:
        try:
            outcome = tx.run()
        except GrebondError:
            record.abandon()       # the transaction put the previous state back itself
            raise
        if ctx.dry_run or outcome.refusal is not None:
            return outcome, None
        if not outcome.changes.changed:
            tx.keep()
            record.abandon()
            save_applied(ctx.node, backend.name, config_text)
            return outcome, None
        assert outcome.snapshot is not None
        pending = record.pending
        pending.snapshot = outcome.snapshot.to_json()      # what the change added to it (a checkpoint)
        pending.deadline = deadline if deadline is not None else time.time() + timeout_s
        pending.changes = outcome.changes.lines()
        pending.owner = 0                                  # verified
        save(pending)
    return outcome, pending


class _Record:
    """The pending record of one ``try``, from just before its change: written with its guardian
    started (``start``), kept up to date while the change grows its snapshot (``grew``), or
    forgotten with its guardian stopped when nothing is left pending (``abandon``)."""

    def __init__(self, pending: Pending, timeout_s: float) -> None:
        self.pending, self.timeout_s, self.saved = pending, timeout_s, False

    def start(self, snapshot: Snapshot) -> None:
        pending = self.pending
        pending.created = time.time()
        # until verified the guardian acts once this process ends; this deadline is only a backstop,
        # past any apply and verification (each bounded by the settle time)
        pending.deadline = pending.created + self.timeout_s + 2 * pending.timeout_s + UNVERIFIED_MARGIN_S
        pending.snapshot = snapshot.to_json()
        pending.previous_config = applied(pending.node)
        with _hang_ups_held():     # the record never stands without its guardian
            save(pending)
            try:
                pending.guardian = start_guardian(pending)
            except GrebondError:
                discard(pending.id)
                raise
            save(pending)
        self.saved = True

    def grew(self, snapshot: Snapshot) -> None:
        if self.saved:
            self.pending.snapshot = snapshot.to_json()
            save(self.pending)

    def abandon(self) -> None:
        if self.saved:
            discard(self.pending.id)
            _stop_guardian(self.pending)


@contextmanager
def _hang_ups_held() -> Iterator[None]:
    """SIGHUP, SIGINT and SIGTERM wait until the block ends (SIGKILL cannot; the guardian's
    deadline still comes)."""
    held = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def confirm(pending_id: str | None = None) -> Pending:
    """Keep the pending change (NetworkManager's checkpoint is destroyed); NothingPending when none
    (or, given ``pending_id``, when that try is not the one pending: a fleet confirms its own)."""
    with exclusive():
        pending = _pending("confirm", pending_id)
        if not pending.verified:
            raise UsageError(f"try {pending.id} was never verified: the process making it (pid {pending.owner}) ended "
                             "during the change, and it is being rolled back; check with 'grebond status'")
        backend, ctx = _rebuild(pending)
        backend.commit(ctx, backend.snapshot_from_json(pending.snapshot))
        save_applied(pending.node, pending.backend, pending.config_text)
        clear("confirmed")
    _stop_guardian(pending)
    return pending


def _pending(verb: str, pending_id: str | None) -> Pending:
    pending = load()
    if pending is None:
        raise NothingPending(f"nothing to {verb}: no 'grebond try' is pending")
    if pending_id is not None and pending.id != pending_id:
        raise NothingPending(f"nothing to {verb}: try {pending_id} is not pending (try {pending.id} is)")
    return pending


def roll_back(reason: str, pending_id: str | None = None,
              log: Callable[[str], None] | None = None) -> tuple[Pending, str, Report | None]:
    """Undo the pending change now: the snapshot's state back, then verified against the previous model.

    The record is cleared as soon as the state is back, before the verification (which may wait for
    the monitor to settle): nothing is pending any more, whatever the verdict. ``log`` (the
    guardian's) hears when the state is back."""
    with exclusive(wait_s=60.0):
        pending = _pending("roll back", pending_id)
        backend, ctx = _rebuild(pending)
        started = time.monotonic()
        try:
            note = backend.restore(ctx, backend.snapshot_from_json(pending.snapshot))
        except GrebondError as exc:
            note = f"rolling back failed: {exc}"
        except Exception as exc:     # a bug must not leave the try pending for ever: say it, and end it
            note = f"rolling back failed: {type(exc).__name__}: {exc}"
        outcome = f"rolled back ({reason}): {note}"
        clear(outcome)
        if log is not None:
            log(f"try {pending.id}: the previous state is back after {time.monotonic() - started:.1f} s; verifying it")
        report = _verify_previous(pending, ctx)
        if report is not None:
            outcome += "; the previous model verifies" if report.ok else (
                "; the previous model does NOT verify: " + "; ".join(c.line() for c in report.failures))
            amend_last(outcome)
    _stop_guardian(pending)
    return pending, outcome, report


class NothingPending(UsageError):
    """``confirm`` or ``rollback`` with no try pending (exit 1: a question answered 'no')."""

    exit_status = 1


def _rebuild(pending: Pending) -> tuple[Backend, Context]:
    """The backend and context of the pending change, from the record alone (another process made it)."""
    config = _config(pending.config_text, pending.config)
    return get_backend(pending.backend), Context(config=config, node=pending.node, root=Path(pending.root),
                                                 timeout_s=pending.timeout_s)


def _config(text: str, name: str) -> Config:
    return parse_config(text, name)[0]


def _verify_previous(pending: Pending, ctx: Context) -> Report | None:
    """After a rollback: the previous model must verify again (None when there was none to verify)."""
    if pending.previous_config is None:
        return None
    try:
        previous = _config(pending.previous_config, pending.config)
    except GrebondError:
        return None
    if pending.node not in previous.nodes:
        return None
    return verify(previous, pending.node, settle_s=pending.timeout_s)


# ----------------------------------------------------------------------------- the guardian

def start_guardian(pending: Pending) -> str:
    """Start what rolls the change back at the deadline without this process; says what it started."""
    argv = [sys.executable, "-m", "grebond", "_guard", pending.id]
    env = {k: v for k, v in os.environ.items() if k.startswith("GREBOND_") or k in ("PATH", "LANG")}
    # the same grebond as this process, wherever it was imported from
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                         *filter(None, [os.environ.get("PYTHONPATH")])])
    # systemd runs a unit in the host's network namespace: a try inside another one keeps its guardian there
    if Path("/run/systemd/system").is_dir() and shutil.which("systemd-run") and _in_init_netns():
        import subprocess

        unit = f"grebond-try-{pending.id}"
        done = subprocess.run(["systemd-run", "--quiet", "--collect", f"--unit={unit}",
                               f"--description=grebond try {pending.id}: roll back unless confirmed",
                               *(f"--setenv={k}={v}" for k, v in env.items()), *argv],
                              capture_output=True, text=True)
        if done.returncode == 0:
            return f"unit:{unit}"
    return f"pid:{_detach(argv, env)}"


def _in_init_netns() -> bool:
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return False


def _detach(argv: list[str], env: dict[str, str]) -> int:
    """A process in a session of its own, not a child of this one (double fork): a hang-up of the
    terminal, a killed ``try`` or a closed SSH session does not reach it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:        # child: new session, then fork the guardian itself and leave
        try:
            os.close(read)
            # the caller holds hang-ups meanwhile: one sent to its process group (a terminal that went
            # away, a Ctrl-C) is pending here too, and ignoring it discards it before this child leaves
            # the group; the guardian keeps SIGHUP ignored (it has no terminal), not SIGINT
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.setsid()
            grandchild = os.fork()
            if grandchild:
                os.write(write, str(grandchild).encode())
                os._exit(0)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            log = state_dir() / "guardian.log"
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.closerange(3, 1 << 16)
            os.chdir("/")
            os.execve(argv[0], argv, env)
        except BaseException:
            os._exit(127)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as fh:
        text = fh.read()
    if not text:
        raise SystemAccessError("could not start the process that rolls the change back; nothing is pending")
    return int(text)


def _stop_guardian(pending: Pending) -> None:
    """The guardian ends by itself once the record is gone; a systemd unit is stopped to be tidy."""
    if pending.guardian.startswith("unit:"):
        import subprocess

        subprocess.run(["systemctl", "stop", pending.guardian.removeprefix("unit:")], capture_output=True)


def guard(pending_id: str) -> int:
    """The guardian's loop: confirm once every --ping address answers, roll back at the deadline.

    It writes what it does to guardian.log in the state directory (its stdout), with the time."""
    from grebond.kernel.echo import echo_rtts  # the guardian alone sends echo requests

    _log(f"guarding try {pending_id}")
    _warm_up(pending_id)
    last_ping = 0.0
    while True:
        try:
            pending = load()
        except GrebondError as exc:
            _log(f"cannot read the pending change: {exc}")
            return 1
        if pending is None or pending.id != pending_id:
            _log(f"try {pending_id} ended without me (confirmed or rolled back)")
            return 0
        now = time.time()
        reason = None
        if not pending.verified and not _alive(pending.owner):
            reason = "the try ended before its change was verified"
        elif now >= pending.deadline:
            reason = "not confirmed in time"
        if reason is not None:
            _log(f"try {pending_id}: {reason}: rolling back")
            try:
                _pending, outcome, _report = roll_back(reason, pending_id, log=_log)
            except LockBusy as exc:      # a grebond still at work (the try, verifying): wait for it
                _log(f"{exc}; trying again")
                continue
            except GrebondError as exc:
                _log(f"rolling back failed: {exc}")
                return 1
            _log(outcome)
            return 0
        if pending.ping and pending.verified and now - last_ping >= PING_EVERY_S:
            last_ping = now
            pairs = _ping_pairs(pending)
            answers = echo_rtts(pairs, probes=1, timeout_s=min(1.0, max(0.1, pending.deadline - now)))
            if pairs and all(rtt is not None for rtt, _error in answers.values()):
                try:
                    confirm(pending_id)
                except NothingPending:
                    pass
                _log(f"try {pending_id} confirmed: {', '.join(pending.ping)} answered across the bond")
                return 0
        time.sleep(GUARD_POLL_S)


def _alive(pid: int) -> bool:
    """Whether the try's process still runs (a zombie has ended: its parent merely has not reaped it)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _warm_up(pending_id: str) -> None:
    """Import now what the rollback will run, so that at the deadline only the work itself is left:
    a cold interpreter spends seconds importing the backend, pyroute2 and the verifier on a slow
    router (and in the lab's emulated VM), all of which would otherwise delay the rollback.
    A SIGTERM (systemctl stop, a test's clean-up) first writes where the guardian was to its log."""
    import faulthandler
    import importlib
    import signal

    faulthandler.register(signal.SIGTERM, file=sys.stdout, all_threads=True, chain=True)
    try:
        pending = load()
        if pending is None or pending.id != pending_id:
            return
        backend, _ctx = _rebuild(pending)
        backend.snapshot_from_json(pending.snapshot)
        for module in ("grebond.kernel.reader", "grebond.kernel.execute", "grebond.kernel.netlink"):
            importlib.import_module(module)
        from pyroute2 import IPRoute  # noqa: F401  (the lean stand-in loads it on first use)
        if pending.backend == "networkmanager":
            importlib.import_module("dbus_next.aio")
    except (GrebondError, ImportError) as exc:
        _log(f"warming up for the rollback: {exc} (the rollback will try anyway)")


def _log(line: str) -> None:
    """A line of the guardian's log (its stdout is guardian.log)."""
    print(time.strftime("%Y-%m-%d %H:%M:%S"), line, flush=True)


def _ping_pairs(pending: Pending) -> list[tuple[str, str]]:
    """(this end's bond address of the target's family, target) for each --ping address."""
    from ipaddress import ip_address

    config = _config(pending.config_text, pending.config)
    mine = [a.ip for bond in config.bonds_of(pending.node) for a in bond.addresses]
    pairs = []
    for target in pending.ping:
        family = ip_address(target).version
        local = next((str(a) for a in mine if a.version == family), "0.0.0.0" if family == 4 else "::")
        pairs.append((local, target))
    return pairs
