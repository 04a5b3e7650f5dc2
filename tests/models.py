"""Seed-shaped configs for tests: the all-defaults link, and a variant with a mode, a keyed tunnel and extras."""

from __future__ import annotations

import textwrap

MINIMAL = """version: 1
links:
  bond0:
    ends:
      r2: {addresses: [10.67.0.1/24]}
      r1: {addresses: [10.67.0.2/24]}
    tunnels:
      gre1:
        ends: {r2: 10.65.0.2, r1: 10.65.0.6}
      gre2:
        ends: {r2: 10.65.0.14, r1: 10.65.0.10}
"""
"""The seed link with every default: what validation tests mutate one line of."""

BASE = """\
version: 1
links:
  bond0:
    mode: {mode}
    ends:
      r2: {{addresses: [10.67.0.1/24]}}
      r1: {{addresses: [10.67.0.2/24]}}
    tunnels:
      gre1:
        ends: {{r2: 10.65.0.2, r1: 10.65.0.6}}
      gre2:
        ends: {{r2: 10.65.0.14, r1: 10.65.0.10}}
        key: 7
    underlay-mtu: 1440
{extra}
"""


def base(mode: str = "balance-rr", extra: str = "") -> str:
    """The seed link with ``mode``; ``extra`` holds link-level YAML lines (indented for you)."""
    return BASE.format(mode=mode, extra=textwrap.indent(textwrap.dedent(extra), "    "))
