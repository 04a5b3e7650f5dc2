"""Commands that change the system through a backend: apply, remove; and 'backends'."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from grebond.backends import registry
from grebond.backends.base import DEFAULT_TIMEOUT_S
from grebond.cli import add_config_arg, add_node_arg
from grebond.cli.config_cmds import load
from grebond.errors import SystemAccessError

if TYPE_CHECKING:
    from grebond.backends.base import Backend, Context
    from grebond.model import Config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, func, text in (("apply", cmd_apply, "make the system match the model for this end"),
                             ("remove", cmd_remove, "remove what grebond created for this end")):
        p = sub.add_parser(name, help=text)
        add_config_arg(p)
        add_node_arg(p, "the end whose underlay addresses are on this host")
        p.add_argument("--backend", default="auto", metavar="NAME",
                       help="auto (default: the service managing this host), networkd, networkmanager, kernel, "
                            "or a plugin")
        p.add_argument("--root", metavar="DIR", type=Path,
                       help="write files into an image or test tree instead of the running system")
        p.add_argument("--dry-run", action="store_true", help="print what would change and change nothing")
        p.add_argument("--write-only", action="store_true",
                       help="only write the persistent configuration (files, keyfiles); leave the running "
                            "system alone (install hooks, images)")
        if name == "apply":
            p.add_argument("--no-rollback", action="store_true",
                           help="keep the new state even when it does not verify")
            p.add_argument("--target-systemd", type=int, default=None, metavar="N",
                           help="systemd version of the target (default: detected, or 252 offline)")
            p.add_argument("--target-nm", default=None, metavar="VERSION",
                           help="NetworkManager version to render for (default: the running one, or 1.42 offline)")
            p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                           help="how long to wait for the links to come up and verify (default 30)")
        p.set_defaults(func=func)

    p = sub.add_parser("backends", help="list the installed backends and whether each can run here")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_backends)


def _context(args: argparse.Namespace, config: Config, backend: Backend) -> Context:
    from grebond.backends.base import Context
    from grebond.nodes import resolve_node

    offline = args.write_only or (args.root is not None and args.root.resolve() != Path("/"))
    local = None
    on_this_host = args.root is None or args.root.resolve() == Path("/")
    if on_this_host and args.node is None:   # --write-only on this host still knows its addresses
        from grebond.kernel.reader import local_addresses
        local = local_addresses
    node = resolve_node(config, args.node, local)
    target = getattr(args, "target_systemd", None)
    if target is None:
        target = 252 if offline else _running_systemd_version()
    return Context(config=config, node=node, root=args.root or Path("/"), dry_run=args.dry_run,
                   write_only=args.write_only, target_systemd=target, target_nm=getattr(args, "target_nm", None),
                   timeout_s=getattr(args, "timeout", DEFAULT_TIMEOUT_S))


def _running_systemd_version() -> int:
    from grebond.systemd import version
    return version() or 252


def _backend(args: argparse.Namespace) -> Backend:
    if args.backend == "auto":
        if args.root is not None or args.write_only:
            raise SystemAccessError("--backend auto needs a running system; with --root name the backend "
                                    "(networkd or networkmanager)")
        backend, why = registry.choose_auto()
        print(why)
        return backend
    return registry.get(args.backend)


def _run(args: argparse.Namespace, action: str) -> int:
    from grebond import apply as transaction

    backend = _backend(args)
    config = load(args)
    ctx = _context(args, config, backend)
    path = Path(args.config)
    if action == "remove":
        changes = transaction.remove(backend, ctx, path)
        for line in changes.lines(ctx.dry_run):
            print(line)
        return 0
    outcome = transaction.apply(backend, ctx, path, rollback=not getattr(args, "no_rollback", False))
    if ctx.dry_run and outcome.changes.diff:
        print("\n".join(outcome.changes.diff))
    for line in outcome.changes.lines(ctx.dry_run):
        print(line)
    if outcome.refusal is not None:
        raise outcome.refusal
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    return _run(args, "apply")


def cmd_remove(args: argparse.Namespace) -> int:
    return _run(args, "remove")


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
        import json

        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = "available" if r["available"] else ("BROKEN" if not r["usable"] else "unavailable")
        print(f"{r['name']:<16} {state:<12} {r['summary'] or r['target']}")
        print(f"{'':<16} {'':<12} {r['reason']}")
    return 0
