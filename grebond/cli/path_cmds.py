"""Command: check-paths — are this end's tunnels distinct, encrypted paths of similar delay?

Thin: argument parsing and exit codes here, everything else in ``grebond.paths``.
Exit 0 no warnings, 1 warnings, 2 bad config or usage, 3 the kernel cannot be read.
"""

from __future__ import annotations

import argparse

from grebond.cli import add_config_arg, add_node_arg
from grebond.errors import UsageError

# The help text names grebond.paths.DEFAULT_RTT_THRESHOLD_MS without importing that module at
# every start (tests/test_cli.py keeps the two equal).
RTT_THRESHOLD_HELP = "largest round-trip difference tolerated with balance-rr (default 5 ms)"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "check-paths",
        help="check that each tunnel has its own encrypted underlay path, and that delays suit the mode",
        description="For each tunnel of this end: the underlay device and next hop its remote is routed "
                    "through, and the path's round-trip time (ICMP echo from the tunnel's local address). "
                    "Warns when tunnels share a device or next hop (a tunnel's weight copies share its path "
                    "on purpose), when a path is not WireGuard, and when delays differ too much for a mode that "
                    "reorders (balance-rr), counting the model's delays; then prints the per-tunnel delays that "
                    "would even the round trips out, to put in the model. "
                    "Exit 0 no warnings, 1 warnings, 2 bad config, 3 cannot read the kernel.")
    add_config_arg(p)
    add_node_arg(p, "the end whose underlay addresses are on this host")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--rtt-threshold", type=float, default=None, metavar="MS", help=RTT_THRESHOLD_HELP)
    p.add_argument("--no-rtt", action="store_true", help="skip the round-trip measurement (routes only)")
    p.set_defaults(func=cmd_check_paths)


def cmd_check_paths(args: argparse.Namespace) -> int:
    from grebond import paths, probe
    from grebond.cli.config_cmds import load
    from grebond.kernel.reader import local_addresses
    from grebond.nodes import resolve_node

    threshold = paths.DEFAULT_RTT_THRESHOLD_MS if args.rtt_threshold is None else args.rtt_threshold
    if threshold < 0:
        raise UsageError(f"--rtt-threshold {threshold:g}: must be 0 or more milliseconds")
    config = load(args)
    node = resolve_node(config, args.node, local_addresses if args.node is None else None)
    ends = config.bonds_of(node)
    reports = probe.check(ends, threshold, measure_rtt=not args.no_rtt)
    for end, report in zip(ends, reports):
        report.suggested_delays = paths.suggested(end, report.paths, threshold)
    if args.json:
        import json

        print(json.dumps(paths.as_json(reports), indent=2))
    else:
        print(paths.render_text(reports), end="")
    return paths.exit_status(reports)
