"""Check a parsed config and build the model, collecting every problem before raising once.

Each check says what is wrong and what would be right, with the file, line and the path in
the file (``links.bond0.tunnels.gre2.key``). Warnings are for legal but risky choices.
The sections are read by their own modules: ``link`` (a link, its ends and MTU), ``tunnels``,
``bond`` (monitor and options, by what each mode allows), ``across`` (rules over all links),
with the typed readers in ``reader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grebond import model
from grebond.errors import ConfigError, Problem
from grebond.source import load_file, load_text
from grebond.validation.across import check_across_links
from grebond.validation.link import link_of
from grebond.validation.names import SUPPORTED_VERSION, TOP_KEYS
from grebond.validation.reader import MISSING, Checker, describe, is_int


def load_config(path: Path | str) -> tuple[model.Config, list[Problem]]:
    """Read, check and build the model for the file at ``path``; return it with its warnings."""
    return build_config(load_file(Path(path)), str(path))


def parse_config(text: str | bytes, name: str = "<config>") -> tuple[model.Config, list[Problem]]:
    """Like load_config, for text already in memory (tests, stdin)."""
    return build_config(load_text(text, name), name)


def build_config(tree: Any, file: str) -> tuple[model.Config, list[Problem]]:
    """Check the Located tree from ``grebond.source`` and build the model.

    Raises ConfigError listing every error; returns the warnings otherwise.
    """
    c = Checker(file)
    top = c.mapping(tree, "", getattr(tree, "line", 1), TOP_KEYS, "with 'version' and 'links'")
    links: list[model.Link] = []
    if top is not None:
        if "version" not in top:
            c.missing(top.line, "version", "add 'version: 1' at the top of the file")
        elif not is_int(top["version"]):
            c.add(c.line(top, "version"), "version", f"must be a number, not {describe(top['version'])}",
                  f"write 'version: {SUPPORTED_VERSION}'"
                  + (" (without quotes)" if isinstance(top["version"], str) else ""))
        elif top["version"] != SUPPORTED_VERSION:
            c.add(c.line(top, "version"), "version", f"unsupported version {top['version']}",
                  f"this grebond reads version {SUPPORTED_VERSION}; write 'version: {SUPPORTED_VERSION}'")
        raw_links = top.get("links", MISSING)
        if raw_links is MISSING:
            c.missing(top.line, "links", "add a 'links:' mapping with one entry per bond")
        elif raw_links is None:
            c.add(c.line(top, "links"), "links", "is empty", "describe at least one bond under 'links:'")
        elif (lm := c.mapping(raw_links, "links", c.line(top, "links"), None, "bond name -> link")) is not None:
            if not lm:
                c.add(lm.line, "links", "is empty", "describe at least one bond under 'links:'")
            for name, raw in lm.items():
                link = link_of(c, name, raw, lm)
                if link is not None:
                    links.append(link)
    if not [p for p in c.problems if not p.warning]:
        check_across_links(c, links, tree)
    errors = [p for p in c.problems if not p.warning]
    if errors:
        raise ConfigError(errors)
    return (model.Config(links=tuple(links), source=file, lines=tuple(sorted(c.lines.items()))),
            [p for p in c.problems if p.warning])


def located(problems: list[Problem], config: model.Config) -> list[Problem]:
    """Problems found after validation (a backend that cannot express a value), given the line of
    the key responsible (or of its nearest enclosing key) in the file the config came from."""
    from dataclasses import replace

    return [p if p.line is not None else replace(p, line=config.line_of(p.path), file=config.source)
            for p in problems]


__all__ = ["ConfigError", "build_config", "load_config", "parse_config"]
