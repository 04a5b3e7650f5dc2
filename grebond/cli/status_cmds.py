"""``grebond status`` beyond the one-shot text and JSON: --format prometheus, --output, --watch, --rtt.

Kept out of kernel_cmds so that the one-shot status stays as it was; kernel_cmds registers these
options and hands over when one of them is used.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from grebond.errors import EXIT_OK, GrebondError, UsageError

if TYPE_CHECKING:
    from grebond.model import Config
    from grebond.snapshot import Snapshot

FORMATS = ("text", "json", "prometheus")
DEFAULT_WATCH_S = 2.0
MIN_WATCH_S = 0.1
TEXTFILE_NAME = "grebond.prom"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not MIN_WATCH_S <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text}: give between {MIN_WATCH_S:g} and 86400 seconds")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="text (the default), json (as --json), or prometheus: the text exposition format")
    p.add_argument("--watch", nargs="?", const=DEFAULT_WATCH_S, default=None, type=_seconds, metavar="SECONDS",
                   help=f"refresh every SECONDS (default {DEFAULT_WATCH_S:g}) until Ctrl-C: a live view of each "
                        "tunnel's rates and share on a terminal, plain lines otherwise; with json or "
                        "prometheus, one output (or --output rewrite) per refresh")
    p.add_argument("--output", metavar="PATH",
                   help=f"with --format prometheus: write the exposition atomically to PATH, a .prom file or a "
                        f"directory (then PATH/{TEXTFILE_NAME}), for node_exporter's textfile collector "
                        f"({TEXTFILE_DIR} on Debian)")
    p.add_argument("--rtt", action="store_true",
                   help="also measure each underlay path's round trip (ICMP echo, 3 probes, 0.3 s each at most)")


def extended(args: argparse.Namespace) -> bool:
    """True when an option of this module is used (the one-shot text/JSON status is kernel_cmds')."""
    return (args.format not in (None, "text", "json") or args.watch is not None or args.output is not None
            or args.rtt)


def output_format(args: argparse.Namespace) -> str:
    """The format asked for; --json is --format json. A contradiction or a misplaced --output: exit 2."""
    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        raise UsageError(f"--json and --format {fmt} disagree; give one of them")
    if args.output is not None and fmt != "prometheus":
        raise UsageError("--output writes the Prometheus exposition; add --format prometheus")
    return fmt


def textfile_path(given: str) -> Path:
    """The file --output names: PATH itself, or PATH/grebond.prom for a directory."""
    path = Path(given)
    if path.is_dir() or given.endswith("/"):
        return path / TEXTFILE_NAME
    if path.suffix != ".prom":
        raise UsageError(f"--output {given}: node_exporter's textfile collector reads only *.prom files; "
                         f"name the file {path.stem}.prom, or give its directory")
    return path


def run(args: argparse.Namespace, config_and_nodes: Callable[[], tuple[Config, list[str]]]) -> int:
    fmt = output_format(args)
    target = textfile_path(args.output) if args.output is not None else None
    if fmt == "prometheus":
        return _prometheus(args, config_and_nodes, target)
    config, nodes = config_and_nodes()
    take = _taker(config, nodes, args.rtt)
    if fmt == "text":
        if args.watch is None:
            from grebond import status

            for line in status.lines(take().bonds):
                print(line)
            return EXIT_OK
        from grebond import watch

        return watch.run(take, args.watch, sys.stdout)
    import json

    from grebond import status

    if args.watch is None:
        print(json.dumps(status.as_dict(take().bonds), indent=2))
        return EXIT_OK
    return _repeat(args.watch, lambda: print(json.dumps(status.as_dict(take().bonds)), flush=True))


def _taker(config: Config, nodes: list[str], rtt: bool) -> Callable[[], Snapshot]:
    from grebond.snapshot import take

    return lambda: take(config, nodes, measure_rtt=rtt)


def _prometheus(args: argparse.Namespace, config_and_nodes: Callable[[], tuple[Config, list[str]]],
                target: Path | None) -> int:
    """Exposition to stdout or ``target``. A failed read still writes one (success 0), then exits 2 or 3."""
    from grebond import metrics

    started = time.monotonic()
    try:
        config, nodes = config_and_nodes()
    except GrebondError:
        _emit(metrics.failed(args.config, (), time.monotonic() - started), target)
        raise
    take = _taker(config, nodes, args.rtt)

    def once(raise_errors: bool) -> None:
        begun = time.monotonic()
        try:
            text = metrics.exposition(take())
        except GrebondError as exc:
            _emit(metrics.failed(config.source, nodes, time.monotonic() - begun), target)
            if raise_errors:
                raise
            print(f"grebond: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
            return
        _emit(text, target)

    if args.watch is None:
        once(True)
        return EXIT_OK
    return _repeat(args.watch, lambda: once(False))


def _emit(text: str, target: Path | None) -> None:
    if target is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from grebond.files import write_atomic

    try:
        write_atomic(target, text.encode())
    except GrebondError:
        raise
    except OSError as exc:
        from grebond.errors import SystemAccessError

        raise SystemAccessError(f"{target}: cannot write the metrics: {exc.strerror or exc}") from exc


def _repeat(interval_s: float, step: Callable[[], None]) -> int:
    """``step`` every ``interval_s`` on a steady beat until Ctrl-C or SIGTERM (exit 0)."""
    import signal

    from grebond.watch import stop_on_signal

    old = signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        next_at = time.monotonic()
        while True:
            step()
            next_at = max(next_at + interval_s, time.monotonic())   # late: the next beat from now, no burst
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, old)
