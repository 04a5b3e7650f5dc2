"""An INI writer for systemd and NetworkManager keyfiles, built on configparser.

Plain configparser lower-cases keys, interpolates '%', writes 'key = value' and keeps one
value per key. systemd files need case-sensitive keys, 'Key=value', and repeated keys
(``Address=`` twice). A value given as a list is written as one line per item.
"""

from __future__ import annotations

import configparser
import io
from collections.abc import Iterable, Sequence

Value = str | int | Sequence[str] | None
Section = tuple[str, Sequence[tuple[str, Value]]]


class _Parser(configparser.RawConfigParser):
    """Case-sensitive, no interpolation, 'key=value', list values as repeated keys."""

    def __init__(self) -> None:
        super().__init__(interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"), strict=False)
        self.optionxform = str  # type: ignore[assignment,method-assign]

    def _write_section(self, fp, section_name, section_items, delimiter, *args):  # type: ignore[no-untyped-def]
        fp.write(f"[{section_name}]\n")
        for key, value in section_items:
            for item in value if isinstance(value, list) else [value]:
                fp.write(f"{key}={item}\n")
        fp.write("\n")


def render_ini(sections: Iterable[Section], comments: Sequence[str] = ()) -> bytes:
    """Serialise ordered sections; keys and their order are kept exactly; comments go on top."""
    parser = _Parser()
    for name, items in sections:
        if parser.has_section(name):
            raise ValueError(f"section [{name}] given twice; merge it")
        parser.add_section(name)
        for key, value in items:
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                parser.set(name, key, [str(v) for v in value])  # type: ignore[arg-type]
            else:
                parser.set(name, key, str(value))
    buf = io.StringIO()
    for line in comments:
        buf.write(f"# {line}\n")
    if comments:
        buf.write("\n")
    parser.write(buf, space_around_delimiters=False)
    return buf.getvalue().rstrip("\n").encode() + b"\n"


def parse_ini(text: str) -> dict[str, dict[str, list[str]]]:
    """Read a file back as section -> key -> every value (repeated keys kept), for tests and diffs."""
    result: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = result.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if section is None or not sep:
            raise ValueError(f"not an INI line: {raw!r}")
        section.setdefault(key.strip(), []).append(value.strip())
    return result
