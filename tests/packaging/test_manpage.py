"""grebond(8) documents every subcommand and option, the exit codes and the files, and renders cleanly."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from grebond.cli import build_parser

from needs import need

MAN = Path(__file__).resolve().parents[2] / "packaging" / "grebond.8"


def source() -> str:
    return MAN.read_text()


def rendered() -> str:
    need(shutil.which("man"), "man (man-db) is not installed")
    env = dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    done = subprocess.run(["man", "--warnings", "-l", str(MAN)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", f"groff warnings: {done.stderr}"
    return done.stdout


def subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_renders_without_warnings() -> None:
    text = rendered()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "CONFIGURATION", "EXIT STATUS", "FILES"):
        assert re.search(rf"^{section}$", text, re.M), section


@pytest.mark.parametrize("command", sorted(n for n in subparsers() if not n.startswith("_")))
def test_every_subcommand_and_option_is_documented(command: str) -> None:
    text = source()
    assert re.search(rf"^\.B grebond {re.escape(command.replace('-', chr(92) + '-'))}$", text, re.M), \
        f"no synopsis line for 'grebond {command}'"
    assert re.search(rf"^\.B {re.escape(command.replace('-', chr(92) + '-'))}$", text, re.M), \
        f"'{command}' has no entry under COMMANDS"
    for action in subparsers()[command]._actions:
        for opt in action.option_strings:
            if opt in ("-h", "--help"):
                continue
            assert opt.replace("-", "\\-") in text, f"'grebond {command} {opt}' is not in {MAN}"


def test_exit_codes_and_files() -> None:
    text = rendered()
    # justified text may double the spaces between words
    status = re.sub(r"(?<=\S) +(?=\S)", " ", text.split("EXIT STATUS", 1)[1].split("FILES", 1)[0])
    for code, word in (("0", "Success"), ("1", "Drift"), ("2", "Bad configuration or usage"), ("3", "System error")):
        assert re.search(rf"^\s+{code}\s+{word}", status, re.M), code
    files = text.split("\nFILES", 1)[1]
    for path in ("/etc/grebond/grebond.yaml", "/etc/default/grebond", "/etc/systemd/network/40-grebond-*",
                 "/etc/NetworkManager/system-connections/", "/usr/share/doc/grebond/examples/"):
        assert path in files, path


def test_version_matches_package() -> None:
    from grebond import __version__

    assert f'"grebond {__version__}"' in source().splitlines()[0]


def test_every_tunnel_key_is_documented() -> None:
    """The tunnel keys validation accepts (weight and delay included) are in CONFIGURATION or the
    section it points to, with the backends' way of setting a delay and its latency cost."""
    from grebond.validation.names import TUNNEL_KEYS

    text = re.sub(r"\s+", " ", rendered())
    config = text.split("CONFIGURATION", 1)[1].split("NS MONITOR", 1)[0]
    for key in TUNNEL_KEYS:
        assert key in config, key
    unequal = text.rsplit("UNEQUAL PATHS", 1)[1].split("METRICS", 1)[0]     # the section, not the pointers
    for fact in ("weight: N", "delay: D", "[NetworkEmulator] DelaySec= and PacketLimit=",
                 "tc qdisc replace dev TUNNEL root netem delay D limit 10000", "networkmanager refuses a delay",
                 "takes the slowest path's round trip"):
        assert fact in unequal, fact
