"""Seed-shaped configs for tests: the all-defaults link, and a variant with a mode, a keyed tunnel and extras."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping

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

SEED_TUNNELS = (("gre1", "10.65.0.2", "10.65.0.6"), ("gre2", "10.65.0.14", "10.65.0.10"))
"""(name, r2's underlay address, r1's) of the seed's two paths."""


def seed_link(mode: str = "balance-rr", tunnels: Iterable[tuple[str, str, str]] = SEED_TUNNELS,
              keys: Mapping[str, int] | None = None, link_lines: str = "") -> str:
    """The seed link bond0 between r2 and r1: ``tunnels`` as (name, r2 address, r1 address), a GRE key
    per tunnel name in ``keys``, then ``link_lines``: link-level YAML, indented for you."""
    out = ["version: 1", "links:", "  bond0:", f"    mode: {mode}", "    ends:",
           "      r2: {addresses: [10.67.0.1/24]}", "      r1: {addresses: [10.67.0.2/24]}", "    tunnels:"]
    for name, r2, r1 in tunnels:
        out += [f"      {name}:", f"        ends: {{r2: {r2}, r1: {r1}}}"]
        if keys and name in keys:
            out.append(f"        key: {keys[name]}")
    return "\n".join(out) + "\n" + textwrap.indent(textwrap.dedent(link_lines), "    ")


def base(mode: str = "balance-rr", extra: str = "") -> str:
    """The seed link with ``mode``, gre2 keyed; ``extra`` holds link-level YAML lines (indented for you)."""
    return seed_link(mode, keys={"gre2": 7}, link_lines="underlay-mtu: 1440\n") + \
        textwrap.indent(textwrap.dedent(extra), "    ") + "\n"
