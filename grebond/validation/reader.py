"""Reading typed values out of the located YAML tree, collecting every problem on the way.

Each reader says what is wrong and what would be right, with the file, the line and the path
in the file (``links.bond0.tunnels.gre2.key``); nothing is raised until the whole file is read.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from grebond.errors import Problem
from grebond.source import LocatedList, LocatedMap

D = TypeVar("D")
MISSING: Any = object()
"""A key absent from the file (distinct from a key given as null)."""
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s)\s*$")
_DELAY = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*(ms|us)\s*$")
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s\s*$")


class Checker:
    """Collects problems and reads typed values out of Located containers."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        # keys offered as "did you mean": their absence is the same mistake, so it is not reported again
        self.suggested: set[str] = set()
        self.lines: dict[str, int] = {}     # path in the file -> line of its key

    def missing(self, line: int | None, path: str, fix: str, what: str = "missing") -> None:
        """Report a required key as absent, unless a misspelling of it was already reported."""
        if path not in self.suggested:
            self.add(line, path, what, fix)

    def add(self, line: int | None, path: str, message: str, fix: str = "", warning: bool = False) -> None:
        self.problems.append(Problem(self.file, line, path, message, fix, warning))

    @staticmethod
    def line(container: Any, key: str | None = None) -> int | None:
        if key is not None and isinstance(container, LocatedMap) and key in container.value_lines:
            return container.value_lines[key]
        return getattr(container, "line", None)

    def mapping(self, value: Any, path: str, line: int | None, allowed: tuple[str, ...] | None,
                what: str) -> LocatedMap | None:
        """Check ``value`` is a mapping and has no unknown keys (with a 'did you mean')."""
        if not isinstance(value, LocatedMap):
            fix = (f"write it as '{path.rsplit('.', 1)[-1]}:' followed by indented keys" if path
                   else "start the file with 'version: 1' and a 'links:' mapping (see examples/seed.yaml)")
            self.add(line, path, f"must be a mapping ({what}), not {describe(value)}", fix)
            return None
        for key in value:
            self.lines.setdefault(join(path, key), value.key_lines[key])
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    close = close_matches(key, allowed, 0.6)
                    fix = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
                    if close:
                        self.suggested.add(join(path, close[0]))
                    self.add(value.key_lines[key], join(path, key), f"unknown key '{key}'", fix)
        return value

    def integer(self, m: LocatedMap, key: str, path: str, lo: int, hi: int, default: D,
                hint: str = "") -> int | D | None:
        """A whole number in [lo, hi]; ``default`` when absent, None (reported) when wrong."""
        if key not in m:
            return default
        value = m[key]
        where = join(path, key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(self.line(m, key), where, f"must be a whole number, not {describe(value)}",
                     hint or f"use a number from {lo} to {hi}")
            return None
        if not lo <= value <= hi:
            self.add(self.line(m, key), where, f"{value} is out of range", hint or f"use {lo} to {hi}")
            return None
        return value

    def choice(self, m: LocatedMap, key: str, path: str, choices: tuple[str, ...], default: D,
               normalise: Callable[[str], str] = lambda s: s, numbered: bool = False) -> str | D | None:
        """One of ``choices``; ``numbered`` choices may be written as the kernel's number by habit."""
        if key not in m:
            return default
        value = m[key]
        where = join(path, key)
        if not isinstance(value, str) or normalise(value) not in choices:
            shown = f"'{value}'" if isinstance(value, str) else describe(value)
            close = close_matches(value, choices, 0.5) if isinstance(value, str) else []
            if close:
                fix = f"did you mean '{close[0]}'?"
            elif numbered and is_int(value) and 0 <= value < len(choices):
                fix = f"write the name: {value} is '{choices[value]}'"
            else:
                fix = f"use one of: {', '.join(choices)}"
            self.add(self.line(m, key), where, f"{shown} is not a valid value", fix)
            return None
        return normalise(value)

    def duration_ms(self, m: LocatedMap, key: str, path: str, lo_ms: int, hi_ms: int,
                    default: D) -> int | D | None:
        """A duration written with its unit (``100ms``, ``2s``), in milliseconds."""
        if key not in m:
            return default
        value = m[key]
        where = join(path, key)
        match = _DURATION.match(value) if isinstance(value, str) else None
        if not match:
            shown = f"'{value}'" if isinstance(value, str) or is_int(value) else describe(value)
            example = f"{value}ms" if is_int(value) else "100ms"
            self.add(self.line(m, key), where, f"{shown} is not a duration with a unit",
                     f"write it with a unit, like '{example}' (a bare number would be ambiguous: "
                     "networkd reads it as seconds)")
            return None
        ms = int(match.group(1)) * (1000 if match.group(2) == "s" else 1)
        if not lo_ms <= ms <= hi_ms:
            self.add(self.line(m, key), where, f"{value} is out of range", f"use {lo_ms}ms to {hi_ms}ms")
            return None
        return ms

    def delay_us(self, m: LocatedMap, key: str, path: str, hi_us: int) -> int | None:
        """A delay with its unit and up to microsecond precision (``9.5ms``, ``9500us``), in
        microseconds; 0 and absent are None (no delay). Reported (and None) when wrong."""
        if key not in m:
            return None
        value = m[key]
        where = join(path, key)
        match = _DELAY.match(value) if isinstance(value, str) else None
        if match and match.group(2) is not None and (match.group(3) == "us" or len(match.group(2)) > 3):
            self.add(self.line(m, key), where, f"'{value}' is finer than a microsecond",
                     "write milliseconds with at most 3 decimals or whole microseconds, like '9.5ms' or '9500us'")
            return None
        seconds = _SECONDS.match(value) if isinstance(value, str) and not match else None
        if seconds:
            self.add(self.line(m, key), where, f"'{value}' is in seconds; a delay is written in ms or us",
                     f"write '{float(seconds.group(1)) * 1000:g}ms'")
            return None
        if not match:
            shown = f"'{value}'" if isinstance(value, str) or is_int(value) else describe(value)
            example = f"{value}ms" if is_int(value) or isinstance(value, float) else "9.5ms"
            self.add(self.line(m, key), where, f"{shown} is not a delay with a unit",
                     f"write milliseconds with at most 3 decimals or whole microseconds, like '{example}' "
                     "or '9500us'")
            return None
        whole, frac, unit = match.groups()
        us = int(whole) * 1000 + int((frac or "").ljust(3, "0")) if unit == "ms" else int(whole)
        if us > hi_us:
            self.add(self.line(m, key), where, f"{value} is out of range", f"use 0ms to {hi_us // 1000}ms")
            return None
        return us or None

    def boolean(self, m: LocatedMap, key: str, path: str, default: bool) -> bool:
        if key not in m:
            return default
        if not isinstance(m[key], bool):
            self.add(self.line(m, key), join(path, key), f"must be true or false, not {describe(m[key])}",
                     "write true or false")
            return default
        return bool(m[key])


def is_int(value: Any) -> bool:
    """A YAML integer (bool is an int subclass in Python, but never a number in a config)."""
    return isinstance(value, int) and not isinstance(value, bool)


def close_matches(word: str, choices: Iterable[str], cutoff: float) -> list[str]:
    """The best 'did you mean' for ``word``; difflib is imported only when a mistake needs it."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, LocatedMap):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value}"
    return f"a {type(value).__name__}"
