"""Read a YAML config into plain values that remember their line numbers.

PyYAML's constructors forget where values came from, and libyaml's composer recurses in C
(a file of 100 000 ``[`` crashes the interpreter). So the text is first scanned as an event
stream (iterative) to bound nesting depth and node count, then composed, then walked with an
expansion budget so an alias bomb ("billion laughs") fails fast and small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grebond.errors import ConfigError, Problem

MAX_BYTES = 1 << 20          # a config for even hundreds of links is a few hundred KiB
MAX_DEPTH = 32               # the format nests 6 deep
MAX_NODES = 200_000          # after alias expansion

try:  # libyaml is several times faster; PyYAML's pure loader gives the same nodes and marks
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class LocatedMap(dict[str, Any]):
    """A mapping that remembers the line of itself, of each key and of each value."""

    line: int
    key_lines: dict[str, int]
    value_lines: dict[str, int]


class LocatedList(list[Any]):
    """A sequence that remembers its line and the line of each item."""

    line: int
    item_lines: list[int]


class _TooBig(Exception):
    pass


def load_file(path: Path) -> Any:
    """Read and parse ``path``; raise ConfigError naming the file and line on any problem."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([Problem(name, None, "", "file not found",
                                   "create it (see /usr/share/doc/grebond/examples) or pass -c FILE")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(name, None, "", "is a directory", "pass the YAML file with -c FILE")]) from None
    except PermissionError:
        raise ConfigError([Problem(name, None, "", "permission denied", "run as root or make the file readable")]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read: {exc.strerror}", "check the path")]) from None
    return load_text(data, name)


def load_text(data: bytes | str, name: str = "<config>") -> Any:
    """Parse YAML text (bytes must be UTF-8) into Located containers and scalars."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise ConfigError([Problem(name, None, "", f"file is larger than {MAX_BYTES} bytes",
                                       "a grebond config is a few KiB; check you passed the right file")])
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ConfigError([Problem(name, 1, "", "the file is UTF-16 text",
                                       "save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")])
        if b"\x00" in data:
            line = data[: data.index(b"\x00")].count(b"\n") + 1
            raise ConfigError([Problem(name, line, "", "binary data (NUL byte) in the file",
                                       "a config is UTF-8 YAML text")])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError([Problem(name, line, "", f"not UTF-8 (byte 0x{data[exc.start]:02x})",
                                       "save the file as UTF-8")]) from None
    else:
        text = data
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            # only reachable through the API (files arrive as bytes): a lone surrogate is no text
            line = text[: exc.start].count("\n") + 1
            raise ConfigError([Problem(name, line, "", f"character {_codepoint(text[exc.start])} is not valid "
                                       "Unicode text", "remove it; a config is UTF-8 text")]) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise ConfigError([Problem(name, None, "", "the file is empty",
                                   "start with 'version: 1' and a 'links:' mapping")])
    try:
        _check_shape(text, name)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where: int | None = mark.line + 1 if mark else None
        what = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if "nesting depth" in what:
            # libyaml's own flow-level guard fires before our event scan sees the structure
            raise ConfigError([Problem(name, where, "", f"nested more than {MAX_DEPTH} levels deep",
                                       "a grebond config nests at most 6 levels")]) from None
        raise ConfigError([Problem(name, where, "", f"YAML syntax error: {what}",
                                   "fix the indentation or quoting on that line")]) from None
    except yaml.reader.ReaderError as exc:
        # raised before any mark exists; its position is a character offset into the text
        line = text[: exc.position].count("\n") + 1
        raise ConfigError([Problem(name, line, "", f"character {_codepoint(exc.character)} is not allowed in YAML "
                                   f"({exc.reason})", "remove it; a config is plain text")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, None, "", f"YAML error: {' '.join(str(exc).split())}",
                                   "check the file is YAML")]) from None
    if node is None:
        raise ConfigError([Problem(name, None, "", "the file holds no YAML document",
                                   "start with 'version: 1' and a 'links:' mapping")])
    try:
        # Aliases share node objects, so the expanded size is counted once per distinct node:
        # a billion-laughs file is refused in microseconds, before anything is built.
        _expanded_size(node, {}, 0)
        return _convert(node, name, [MAX_NODES], 0)
    except _TooBig as exc:
        raise ConfigError([Problem(name, int(str(exc)), "", "the file expands to too many values "
                                   "(aliases repeated many times?)", "write the config without nested aliases")]) from None


def _codepoint(char: int | str) -> str:
    return f"U+{char if isinstance(char, int) else ord(char):04X}"


def _line_of(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _check_shape(text: str, name: str) -> None:
    """Bound depth and size on the event stream, before libyaml's recursive composer runs."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=_Loader), start=1):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError([Problem(name, _line_of(event), "",
                                           f"nested more than {MAX_DEPTH} levels deep",
                                           "a grebond config nests at most 6 levels")])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if count > MAX_NODES:
            raise ConfigError([Problem(name, _line_of(event), "", "too many values in the file",
                                       "check you passed the right file")])


_SCALARS = yaml.SafeLoader.__new__(yaml.SafeLoader)
_Y = "tag:yaml.org,2002:"
# Only the core types: any other tag is refused rather than silently read as plain data, so a
# file written for another tool (``!!python/object``, ``!vault``) never half-works.
_PLAIN_TAGS = {yaml.MappingNode: {_Y + "map"}, yaml.SequenceNode: {_Y + "seq"},
               yaml.ScalarNode: {_Y + t for t in ("str", "int", "float", "bool", "null", "timestamp",
                                                   "binary")}}


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_Y):] if tag.startswith(_Y) else tag
yaml.constructor.SafeConstructor.__init__(_SCALARS)


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int) -> int:
    """Number of values ``node`` becomes once aliases are expanded; _TooBig past the limits."""
    if depth > MAX_DEPTH:
        raise _TooBig(str(node.start_mark.line + 1))
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            size += _expanded_size(key_node, memo, depth + 1) + _expanded_size(value_node, memo, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo, depth + 1)
    if size > MAX_NODES:
        raise _TooBig(str(node.start_mark.line + 1))
    memo[id(node)] = size
    return size


def _convert(node: yaml.Node, name: str, budget: list[int], depth: int) -> Any:
    """Turn a composed node into Located containers; aliases count against the budget."""
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooBig(str(node.start_mark.line + 1))
    line = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS.get(type(node), ()) and node.tag != _Y + "merge":
        raise ConfigError([Problem(name, line, "", f"the YAML tag '{_short_tag(node.tag)}' is not supported",
                                   "remove the tag; grebond reads plain mappings, lists and values")])
    if isinstance(node, yaml.MappingNode):
        result = LocatedMap()
        result.line, result.key_lines, result.value_lines = line, {}, {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError([Problem(name, key_node.start_mark.line + 1, "",
                                           "YAML merge keys ('<<') are not supported", "write the keys out")])
            key = _convert(key_node, name, budget, depth + 1)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ConfigError([Problem(name, key_node.start_mark.line + 1, "",
                                           "a mapping key must be a plain name", "use a name like 'bond0'")])
            # Keys are names: keep them as written ('yes' stays 'yes', '0x10' stays '0x10'),
            # not as YAML 1.1 would read them (True, 16).
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key)
            if key in result:
                raise ConfigError([Problem(name, key_node.start_mark.line + 1, "", f"duplicate key {key!r}",
                                           f"remove one of the two (the first is on line {result.key_lines[key]})")])
            result[key] = _convert(value_node, name, budget, depth + 1)
            result.key_lines[key] = key_node.start_mark.line + 1
            result.value_lines[key] = value_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        seq = LocatedList()
        seq.line, seq.item_lines = line, []
        for item in node.value:
            seq.append(_convert(item, name, budget, depth + 1))
            seq.item_lines.append(item.start_mark.line + 1)
        return seq
    try:
        return _SCALARS.construct_object(node)
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError([Problem(name, line, "", f"cannot read value: {' '.join(str(exc.problem).split())}",
                                   "quote it as a string")]) from None
    except (ValueError, OverflowError):
        shown = str(node.value)[:40]
        raise ConfigError([Problem(name, line, "", f"cannot read the value '{shown}'",
                                   f"quote it as a string ('\"{shown}\"') or correct it")]) from None
