"""The bash completion offers every subcommand and every option of grebond's real parser."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from grebond.cli import build_parser

from needs import need

COMPLETION = Path(__file__).resolve().parents[2] / "packaging" / "bash-completion" / "grebond"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed.yaml"


@pytest.fixture(autouse=True)
def bash() -> None:
    need(shutil.which("bash"), "bash is not installed")


def complete(*words: str, script: Path = COMPLETION) -> list[str]:
    """Run the completion function the way bash does for the command line ``words`` (last = current)."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in ("grebond", *words))
    code = (f"source '{script}'; COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; "
            "_grebond; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    return [line for line in done.stdout.splitlines() if line]


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("grebond's parser has no subcommands")


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def test_every_subcommand_is_offered() -> None:
    # names starting with "_" are grebond's own (the guardian of a pending try), not a user's
    assert set(complete("")) == {name for name in subparsers() if not name.startswith("_")}


def test_top_level_options() -> None:
    assert options(build_parser()) <= set(complete("-"))


@pytest.mark.parametrize("command", sorted(n for n in subparsers() if not n.startswith("_")))
def test_every_option_of_each_subcommand_is_offered(command: str) -> None:
    parser = subparsers()[command]
    offered = set(complete(command, "-"))
    missing = options(parser) - offered
    assert not missing, f"'grebond {command}' options missing from {COMPLETION}: {sorted(missing)}"
    stale = set(offered - options(parser))
    assert not stale, f"{COMPLETION} offers options 'grebond {command}' does not have: {sorted(stale)}"


def test_prefix_completes_subcommand() -> None:
    assert complete("ap") == ["apply"]


def test_backend_values() -> None:
    assert {"auto", "networkd", "networkmanager", "kernel"} <= set(complete("apply", "--backend", ""))
    assert "auto" not in complete("render", "--backend", "")


def test_node_names_come_from_the_given_config() -> None:
    assert complete("verify", "-c", str(EXAMPLE), "--node", "") == ["r1", "r2"]


def test_node_names_from_a_block_style_config(tmp_path: Path) -> None:
    block = tmp_path / "block.yaml"
    block.write_text("version: 1\nlinks:\n  bond0:\n    ends:\n      hub:\n        addresses: [10.67.0.1/24]\n"
                     "      spoke-1:\n        addresses:\n          - 10.67.0.2/24\n    tunnels:\n      gre1:\n"
                     "        ends:\n          hub: 10.65.0.1\n          spoke-1: 10.65.0.2\n")
    assert complete("verify", "-c", str(block), "--node", "") == ["hub", "spoke-1"]


def test_config_completes_files(tmp_path: Path) -> None:
    (tmp_path / "grebond.yaml").write_text("version: 1\n")
    assert complete("validate", "-c", str(tmp_path / "greb")) == [str(tmp_path / "grebond.yaml")]
