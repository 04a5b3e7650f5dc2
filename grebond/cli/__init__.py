"""Command-line entry point: builds the parser, runs a command, maps errors to exit codes.

Exit codes: 0 ok, 1 drift / apply rolled back, 2 bad config or usage, 3 system not readable or
changeable. This is the only place that turns exceptions into exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grebond import __version__
from grebond.errors import EXIT_SYSTEM, ConfigError, GrebondError

if TYPE_CHECKING:
    from grebond.targets import Targets

DEFAULT_CONFIG = "/etc/grebond/grebond.yaml"


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized to the terminal without importing shutil.

    argparse builds a formatter for every ``add_argument`` and each one imports shutil just to
    read the terminal width: paid on every cold start, for help that is rarely printed.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """$COLUMNS, else the width of stdout's terminal, else 80: what shutil.get_terminal_size does."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        stdout = sys.__stdout__
        return os.get_terminal_size(stdout.fileno()).columns if stdout is not None else 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-command parsers share the formatter above."""

    def __init__(self, *args: object, formatter_class: type[argparse.HelpFormatter] = _HelpFormatter,
                 **kwargs: object) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)  # type: ignore[arg-type,misc]


def build_parser() -> argparse.ArgumentParser:
    from grebond.cli import backend_cmds, config_cmds, kernel_cmds, path_cmds, try_cmds

    parser = _Parser(
        prog="grebond",
        description="Bond GRETAP tunnels over an encrypted underlay, from one model for both ends.",
        epilog="Exit status: 0 ok, 1 drift or apply rolled back, 2 bad config or usage, 3 system error.",
    )
    parser.add_argument("--version", action="version", version=f"grebond {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (config_cmds, backend_cmds, try_cmds, kernel_cmds, path_cmds):
        module.register(sub)
    return parser


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"the link model (default {DEFAULT_CONFIG})")


def add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-systemd", type=int, default=None, metavar="N",
                   help="the systemd version networkd files are for (default: the one installed, else Debian 13's 257)")
    p.add_argument("--target-nm", default=None, metavar="VERSION",
                   help="the NetworkManager version to render for (default: the running one, else the one "
                        "installed, else Debian 13's 1.52)")


def targets_for(args: argparse.Namespace, root: Path = Path("/")) -> Targets:
    """--target-systemd/--target-nm, else what is installed under ``root``; says so when it had to assume."""
    from grebond.targets import Targets, detect

    found = detect(root)
    chosen = Targets(args.target_systemd if args.target_systemd is not None else found.systemd,
                     args.target_nm or found.nm, found.source, found.assumed)
    if found.assumed and (args.target_systemd is None or args.target_nm is None) and not getattr(args, "json", False):
        print(f"grebond: no systemd or NetworkManager installed to read here: rendering for {chosen.describe()}; "
              "use --target-systemd and --target-nm for another target", file=sys.stderr)
    return chosen


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (errors too: {\"error\": ..., \"exit_status\": N})")


def add_node_arg(p: argparse.ArgumentParser, detect: str = "") -> None:
    p.add_argument("--node", metavar="NAME", help="the end to act for" + (f" (default: {detect})" if detect else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        _json_result(args)
        return status
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
            for line in problem.excerpt:
                print(f"    {line}", file=sys.stderr)
        _json_error(args, exc, [str(p) for p in exc.problems])
        return exc.exit_status
    except GrebondError as exc:
        lines = str(exc).splitlines() or [type(exc).__name__]
        for line in lines:
            print(f"grebond: {line}", file=sys.stderr)
        _json_error(args, exc, lines)
        return exc.exit_status
    except KeyboardInterrupt:
        print("grebond: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # a system's refusal that no command turned into its own message: still one line, no traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"grebond: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_SYSTEM
    except BrokenPipeError:
        return 0


def _json_result(args: argparse.Namespace, error: dict[str, object] | None = None) -> None:
    """Print the one JSON object a command built (``args.json_result``), with the error if it ended in one."""
    result = getattr(args, "json_result", None)
    if result is None and error is None:
        return
    import json

    print(json.dumps({**(result or {}), **(error or {})}, indent=2 if result else None))


def _json_error(args: argparse.Namespace, exc: GrebondError, lines: list[str]) -> None:
    """With --json, an error is a JSON object on stdout too (a script reads one place): the command's
    own object when it had built one (a refused dry run, a rolled-back try), with the error's fields."""
    if getattr(args, "json", False):
        _json_result(args, {"error": lines[0] if len(lines) == 1 else "; ".join(lines), "lines": lines,
                            "exit_status": exc.exit_status})
