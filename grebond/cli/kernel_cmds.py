"""Commands that read the running kernel: verify (does it match the model?) and status."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from grebond.cli import add_config_arg, add_node_arg, status_cmds
from grebond.cli.config_cmds import load
from grebond.errors import EXIT_DEGRADED, EXIT_DRIFT, EXIT_OK, SystemAccessError
from grebond.kernel import modules

if TYPE_CHECKING:
    from grebond.model import Config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("verify", help="compare the running kernel with the model, field by field",
                       epilog="Exit status: 0 matches, 1 drift, 2 bad config or usage, 3 kernel not readable.")
    add_config_arg(p)
    add_node_arg(p, "the end whose underlay addresses are on this host")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--settle", type=float, default=0.0, metavar="S",
                   help="retry for up to S seconds while the kernel settles (default 0)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("status", help="per-tunnel state, monitor status and traffic share of grebond's bonds")
    add_config_arg(p)
    add_node_arg(p, "every end whose bond exists on this host, else the end whose underlay addresses are here")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    status_cmds.add_arguments(p)
    p.set_defaults(func=cmd_status)


def _local_addresses() -> list[str]:
    from grebond.kernel.reader import local_addresses
    return local_addresses()


def cmd_verify(args: argparse.Namespace) -> int:
    from grebond.nodes import resolve_node
    from grebond.verifier import verify

    config = load(args)
    node = resolve_node(config, args.node, _local_addresses)
    report = verify(config, node, settle_s=args.settle)
    lacking = None if report.ok else modules.refusal(modules.needed(config.bonds_of(node)))
    if args.json:
        import json

        print(json.dumps({**report.as_dict(), "kernel": lacking}, indent=2))
    else:
        for line in report.lines():
            print(line)
        if lacking:
            print(f"note: {lacking}")
    if report.drift:
        return EXIT_DRIFT
    return EXIT_DEGRADED if report.degraded else EXIT_OK



def cmd_status(args: argparse.Namespace) -> int:
    if status_cmds.extended(args):
        return status_cmds.run(args, lambda: _status_nodes(args))
    status_cmds.output_format(args)

    from grebond import pending, status
    from grebond.kernel.reader import read_state
    from grebond.verifier import remotes_of

    config, nodes = _status_nodes(args)
    if not nodes:
        print(f"none of the bonds of {args.config} exists on this host (nodes {', '.join(config.nodes)}); "
              "run 'grebond apply', or name an end with --node")
        return EXIT_OK
    remotes = [r for n in nodes for r in remotes_of(config, n)]
    bonds = status.collect(config, nodes, read_state(remotes))
    try_ = pending.load()
    if args.json or args.format == "json":
        import json

        rows = status.as_dict(bonds)
        for row in rows:     # a pending try is the host's, shown with each bond of its node
            row["pending_try"] = None if try_ is None or try_.node != row["node"] else {
                "id": try_.id, "deadline": try_.deadline, "backend": try_.backend, "config": try_.config,
                "remaining_s": round(try_.remaining_s, 1), "ping": try_.ping}
        print(json.dumps(rows, indent=2))
    else:
        if try_ is not None:
            print(f"pending: {try_.describe()}; 'grebond confirm' keeps it, 'grebond rollback' undoes it")
        for line in status.lines(bonds):
            print(line)
    return EXIT_OK


def _status_nodes(args: argparse.Namespace) -> tuple[Config, list[str]]:
    """The config, and the ends whose status to show: --node, else every end whose bond exists here,
    else the one end whose underlay is here (its bond shown absent); none when that is ambiguous."""
    from grebond.kernel.reader import read_state
    from grebond.nodes import resolve_node

    config = load(args)
    if args.node is not None:
        return config, [resolve_node(config, args.node)]
    # every end whose bond exists here (both ends may live on one lab host, in one namespace)
    try:
        present = set(read_state().links)
    except OSError as exc:
        raise SystemAccessError(f"cannot read the kernel: {exc}") from exc
    with_bond = [n for n in config.nodes if any(e.name in present for e in config.bonds_of(n))]
    # both ends usually name the bond alike: keep the ends whose underlay addresses are here
    local = {a.split("%")[0] for a in _local_addresses()}
    nodes = [n for n in with_bond
             if any(str(t.local) in local for e in config.bonds_of(n) for t in e.tunnels)] or with_bond
    if not nodes:
        mine = [n for n in config.nodes if any(str(t.local) in local for e in config.bonds_of(n)
                                               for t in e.tunnels)]
        nodes = mine if len(mine) == 1 else []
    return config, nodes

