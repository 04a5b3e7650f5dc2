"""Commands that change the system through a backend: apply, remove; and 'backends'."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grebond.backends import registry
from grebond.backends.base import DEFAULT_TIMEOUT_S
from grebond.cli import add_config_arg, add_json_arg, add_node_arg, add_target_args, targets_for
from grebond.cli.config_cmds import load
from grebond.errors import UsageError

if TYPE_CHECKING:
    from grebond.apply import Outcome
    from grebond.backends.base import Backend, Context
    from grebond.model import Config


def add_change_args(p: argparse.ArgumentParser, *, verify_timeout: bool = True) -> None:
    """The options every command that changes the system takes (apply, try, remove)."""
    add_config_arg(p)
    add_node_arg(p, "the end whose underlay addresses are on this host")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="auto (default: the service managing this host), networkd, networkmanager, kernel, "
                        "iproute2, or a plugin")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would change (a diff) and change nothing; exits as the real run would refuse")
    add_target_args(p)
    if verify_timeout:
        p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                       help=f"how long to wait for the links to come up and verify (default {DEFAULT_TIMEOUT_S:g})")
    add_json_arg(p)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, func, text in (("apply", cmd_apply, "make the system match the model for this end"),
                             ("remove", cmd_remove, "remove what grebond created for this end")):
        p = sub.add_parser(name, help=text)
        add_change_args(p)
        p.add_argument("--root", metavar="DIR", type=Path,
                       help="write files into an image or test tree instead of the running system")
        p.add_argument("--write-only", action="store_true",
                       help="only write the persistent configuration (files, keyfiles); leave the running "
                            "system alone (install hooks, images)")
        if name == "apply":
            p.add_argument("--no-rollback", action="store_true",
                           help="keep the new state even when it does not verify")
        p.set_defaults(func=func)

    p = sub.add_parser("backends", help="list the installed backends and whether each can run here")
    add_json_arg(p)
    p.set_defaults(func=cmd_backends)


def context(args: argparse.Namespace, config: Config, timeout_s: float) -> Context:
    from grebond.backends.base import Context
    from grebond.nodes import resolve_node

    root: Path | None = getattr(args, "root", None)
    write_only = bool(getattr(args, "write_only", False))
    on_this_host = root is None or root.resolve() == Path("/")
    offline = write_only or not on_this_host
    local = None
    if on_this_host and args.node is None:   # --write-only on this host still knows its addresses
        from grebond.kernel.reader import local_addresses
        local = local_addresses
    node = resolve_node(config, args.node, local)
    # offline, the tree's installed versions; live, the running networkd's, and NM says its own over D-Bus
    targets = targets_for(args, root or Path("/"))
    systemd = targets.systemd
    if not offline and args.target_systemd is None:
        from grebond.systemd import version
        systemd = version() or systemd
    return Context(config=config, node=node, root=root or Path("/"), dry_run=args.dry_run, write_only=write_only,
                   target_systemd=systemd, target_nm=targets.nm if offline else args.target_nm,
                   timeout_s=timeout_s)


def backend_of(args: argparse.Namespace) -> Backend:
    if args.backend == "auto":
        if getattr(args, "root", None) is not None or getattr(args, "write_only", False):
            raise UsageError("--backend auto chooses the service that runs this host; with --root or "
                             "--write-only name the backend (networkd or networkmanager)")
        backend, why = registry.choose_auto()
        if not args.json:
            print(why)
        return backend
    return registry.get(args.backend)


def load_canonical(args: argparse.Namespace) -> tuple[Config, Path, str]:
    """The config, its resolved path and its text. The files grebond writes name the config by its
    resolved path, so ``-c ./x.yaml`` after ``-c x.yaml`` is the same apply, not a rewrite of every file."""
    config = load(args)
    path = Path(args.config).resolve()
    return replace(config, source=str(path)), path, path.read_text(errors="replace")


def show(outcome: Outcome, args: argparse.Namespace, extra: dict[str, Any] | None = None) -> None:
    """What a change did: its diff first in a dry run, then one line per change (or one JSON object)."""
    if args.json:     # printed by main() once the command ends, with its error if it ends in one
        args.json_result = {**outcome.as_json(), **(extra or {})}
        return
    if args.dry_run and outcome.changes.diff:
        print("\n".join(outcome.changes.diff))
    for line in outcome.changes.lines(args.dry_run):
        print(line)


def cmd_apply(args: argparse.Namespace) -> int:
    from grebond import apply as transaction

    backend = backend_of(args)
    config, path, text = load_canonical(args)
    ctx = context(args, config, args.timeout)
    outcome = transaction.apply(backend, ctx, path, text, rollback=not args.no_rollback)
    show(outcome, args)
    if outcome.refusal is not None:
        raise outcome.refusal
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from grebond import apply as transaction
    from grebond.apply import Outcome

    backend = backend_of(args)
    config, path, _text = load_canonical(args)
    ctx = context(args, config, args.timeout)
    show(Outcome(transaction.remove(backend, ctx, path)), args)
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    rows = []
    for name, entry in registry.discover().items():
        if entry.backend is None:
            rows.append({"name": name, "target": entry.target, "usable": False, "available": False,
                         "reason": entry.error, "summary": ""})
            continue
        availability = entry.backend().available()
        rows.append({"name": name, "target": entry.target, "usable": True, "available": availability.ok,
                     "reason": availability.reason, "summary": entry.backend.summary})
    if args.json:
        import json  # only --json output needs it; a cold render must not load it

        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = "available" if r["available"] else ("BROKEN" if not r["usable"] else "unavailable")
        print(f"{r['name']:<16} {state:<12} {r['summary'] or r['target']}")
        print(f"{'':<16} {'':<12} {r['reason']}")
    return 0
