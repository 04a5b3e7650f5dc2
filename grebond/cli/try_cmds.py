"""Commands of a safe change from afar: try (apply, keep only if confirmed), confirm, rollback."""

from __future__ import annotations

import argparse
import select
import sys
import time
from typing import Any

from grebond.backends.base import DEFAULT_TIMEOUT_S
from grebond.cli import add_json_arg
from grebond.cli.backend_cmds import add_change_args, backend_of, context, load_canonical, show
from grebond.errors import RolledBack, UsageError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("try", help="apply, then roll back unless confirmed within the timeout",
                       description="Apply exactly like 'apply' (same checks, same verification), then keep the change "
                                   "only if it is confirmed in time: press Enter here, or run 'grebond confirm' from "
                                   "any shell on this host. Otherwise the previous configuration and running state "
                                   "come back, even if this process, its terminal or the SSH session is gone.")
    add_change_args(p, verify_timeout=False)
    when = p.add_mutually_exclusive_group()
    when.add_argument("--timeout", type=float, default=120.0, metavar="S",
                      help="seconds to confirm in, counted once the change is verified, before it is rolled back "
                           "(default 120)")
    when.add_argument("--deadline", type=float, metavar="EPOCH",
                      help="roll back at this moment instead (seconds since the epoch, e.g. $(date -d '+5 min' +%%s)): "
                           "one deadline for many hosts, whatever each one's apply takes")
    p.add_argument("--settle", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"how long to wait for the links to come up and verify (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--ping", metavar="ADDR[,ADDR]", default="",
                   help="confirm by itself once every address answers across the bond (e.g. the peer's bond "
                        "address); else roll back at the timeout")
    p.add_argument("--no-wait", action="store_true",
                   help="return once applied; the change stays pending until 'grebond confirm', 'grebond rollback' "
                        "or the timeout (scripts, Ansible)")
    p.set_defaults(func=cmd_try)

    p = sub.add_parser("confirm", help="keep the change a 'grebond try' made")
    _add_id_arg(p)
    p.set_defaults(func=cmd_confirm)
    p = sub.add_parser("rollback", help="undo the change a 'grebond try' made, now")
    _add_id_arg(p)
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser("_guard")          # the detached guardian of a pending try (not for users)
    p.add_argument("id")
    p.set_defaults(func=cmd_guard)


def _add_id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", metavar="ID", help="only if the pending try is this one (the id 'try --json' printed); "
                                              "else exit 1 and change nothing")
    add_json_arg(p)


def _ping_targets(text: str) -> list[str]:
    from ipaddress import ip_address

    targets = [t.strip() for t in text.split(",") if t.strip()]
    for t in targets:
        try:
            ip_address(t)
        except ValueError:
            raise UsageError(f"--ping {text}: '{t}' is not an IP address") from None
    return targets


def cmd_try(args: argparse.Namespace) -> int:
    from grebond import trial

    ping = _ping_targets(args.ping)
    backend = backend_of(args)
    config, path, text = load_canonical(args)
    ctx = context(args, config, args.settle)
    outcome, pending = trial.begin(backend, ctx, path, args.timeout, ping, text, deadline=args.deadline)
    pending_json: dict[str, Any] | None = None
    if pending is not None:
        pending_json = {"id": pending.id, "deadline": pending.deadline, "node": pending.node,
                        "backend": pending.backend}
    show(outcome, args, {"pending": pending_json})
    if outcome.refusal is not None:
        raise outcome.refusal
    if pending is None:
        return 0
    if not args.json:
        how = "press Enter, or run 'grebond confirm'" if sys.stdin.isatty() and not args.no_wait \
            else "run 'grebond confirm'"
        auto = f"; it confirms by itself once {', '.join(ping)} answer" if ping else ""
        print(f"applied and verified on {pending.node}; confirm within {pending.remaining_s:.0f} s ({how}), or it is "
              f"rolled back{auto}", flush=True)
    if args.no_wait:
        return 0
    return _wait(args, pending.id, pending.deadline)


def _wait(args: argparse.Namespace, pending_id: str, deadline: float) -> int:
    """Until the change is confirmed (Enter in this terminal, 'grebond confirm', --ping) or rolled back."""
    from grebond import pending as record
    from grebond import trial

    interactive = sys.stdin.isatty() and not args.json
    try:
        while True:
            current = record.load()
            if current is None or current.id != pending_id:
                return _ended(args, pending_id)
            if interactive:
                ready, _w, _x = select.select([sys.stdin], [], [], 0.5)
                if ready:
                    if sys.stdin.readline() == "":
                        interactive = False      # the terminal went away: the guardian decides
                        continue
                    trial.confirm(pending_id)
                    return _confirmed(args)
            else:
                time.sleep(0.5)
            if time.time() > deadline + 300:     # the guardian must have acted long ago
                raise RolledBack(f"the guardian did not end the try by its deadline; run 'grebond rollback' "
                                 f"(see {record.state_dir() / 'guardian.log'})")
    except KeyboardInterrupt:
        _pending, outcome, _report = trial.roll_back("interrupted", pending_id)
        _outcome(args, outcome)
        raise RolledBack(outcome) from None


def _ended(args: argparse.Namespace, pending_id: str) -> int:
    from grebond import pending as record
    from grebond.lock import exclusive

    with exclusive(wait_s=120.0):   # a rollback clears the record first, then verifies: wait for its verdict
        last = record.last()
    outcome = str(last.get("outcome", "")) if last and last.get("id") == pending_id else "ended"
    if outcome == "confirmed":
        return _confirmed(args)
    _outcome(args, outcome)
    raise RolledBack(outcome)


def _confirmed(args: argparse.Namespace) -> int:
    if args.json:
        _outcome(args, "confirmed")
    else:
        print("confirmed: the change is kept")
    return 0


def _outcome(args: argparse.Namespace, outcome: str) -> None:
    """How a waited-for try ended, in its one JSON object (``pending`` is then null: nothing is)."""
    if args.json and isinstance(getattr(args, "json_result", None), dict):
        args.json_result.update(outcome=outcome, pending=None)


def cmd_confirm(args: argparse.Namespace) -> int:
    from grebond import trial

    pending = trial.confirm(args.id)
    if args.json:
        args.json_result = {"changed": True, "confirmed": pending.id, "node": pending.node}
    else:
        print(f"confirmed: the change to {pending.node} ({pending.config}) is kept")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from grebond import trial

    pending, outcome, report = trial.roll_back("asked for", args.id)
    if args.json:
        args.json_result = {"changed": True, "rolled_back": pending.id, "outcome": outcome,
                            "verify": report.as_dict() if report is not None else None}
    if report is not None and not report.ok:     # rolled back, but the previous model does not verify: exit 1
        raise RolledBack(outcome)
    if not args.json:
        print(outcome)
    return 0


def cmd_guard(args: argparse.Namespace) -> int:
    from grebond import trial

    return trial.guard(args.id)
