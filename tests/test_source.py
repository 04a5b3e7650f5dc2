"""The YAML loader: line numbers kept, hostile input refused fast, small and in one line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from grebond.errors import ConfigError
from grebond.source import MAX_BYTES, LocatedList, LocatedMap, load_file, load_text
from grebond.validation import KNOWN_KEYS


def problems(data: bytes | str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(data, "f.yaml")
    return [str(p) for p in info.value.problems]


def one(data: bytes | str) -> str:
    lines = problems(data)
    assert len(lines) == 1, lines
    return lines[0]


def test_lines_of_keys_values_and_items() -> None:
    tree = load_text("version: 1\nlinks:\n  bond0:\n    ends:\n      - a\n      - b\n", "f.yaml")
    assert isinstance(tree, LocatedMap) and tree.key_lines == {"version": 1, "links": 2}
    ends = tree["links"]["bond0"]["ends"]
    assert isinstance(ends, LocatedList) and ends.item_lines == [5, 6] and ends == ["a", "b"]


def test_keys_stay_as_written() -> None:
    """'yes', '0x10' and '1.0' are names here, not YAML 1.1's True, 16 and 1.0."""
    assert list(load_text("yes: 1\n0x10: 2\n1.0: 3\n", "f.yaml")) == ["yes", "0x10", "1.0"]


def test_billion_laughs_fails_fast_in_one_line() -> None:
    bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    start = time.perf_counter()
    line = one(bomb)
    assert time.perf_counter() - start < 1.0
    assert "expands to too many values" in line and line.startswith("f.yaml:")


def test_alias_nesting_beyond_depth_is_refused() -> None:
    text = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [[*a{i - 1}]]\n" for i in range(1, 30))
    assert "too many values" in one(text)


def test_small_aliases_are_fine() -> None:
    tree = load_text("a: &x [1, 2]\nb: *x\n", "f.yaml")
    assert tree["b"] == [1, 2]


@pytest.mark.parametrize("text", ["[" * 100_000, "{" * 100_000, "".join(" " * i + "a:\n" for i in range(300))],
                         ids=["flow-sequences", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_refused(text: str) -> None:
    assert "nested more than 32 levels deep" in one(text)


def test_deep_nesting_does_not_crash_the_interpreter(tmp_path: Path) -> None:
    """libyaml's composer recurses in C; a crash would kill the process with a signal, not exit 2."""
    config = tmp_path / "deep.yaml"
    config.write_text("[" * 100_000 + "]" * 100_000)
    done = subprocess.run([sys.executable, "-m", "grebond", "validate", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nested more than 32 levels deep" in done.stderr
    assert "Traceback" not in done.stderr


def test_huge_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(50 * MAX_BYTES)      # sparse: 50 MiB of NULs, no disk used
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_file(big)
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == (f"{big}: file is larger than {MAX_BYTES} bytes; a grebond config is a few KiB; "
                               "check you passed the right file")


@pytest.mark.parametrize(("data", "expected"), [
    (b"version: 1\nlinks: {}\x00\n", "f.yaml:2: binary data (NUL byte) in the file; a config is UTF-8 YAML text"),
    (b"version: 1\n\nlinks: caf\xe9\n", "f.yaml:3: not UTF-8 (byte 0xe9); save the file as UTF-8"),
    ("version: 1\n".encode("utf-16"), "f.yaml:1: the file is UTF-16 text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)"),
    (b"", "f.yaml: the file is empty; start with 'version: 1' and a 'links:' mapping"),
    (b"  \n\n", "f.yaml: the file is empty; start with 'version: 1' and a 'links:' mapping"),
    (b"# only a comment\n", "f.yaml: the file holds no YAML document; start with 'version: 1' and a 'links:' mapping"),
    (b"a: 1\nb: \x07\n", "f.yaml:2: character U+0007 is not allowed in YAML (control characters are not allowed); "
                         "remove it; a config is plain text"),
], ids=["nul-byte", "non-utf8", "utf16", "empty", "whitespace-only", "comment-only", "control-character"])
def test_junk(data: bytes, expected: str) -> None:
    assert one(data) == expected


@pytest.mark.parametrize("data", [b"\xef\xbb\xbfversion: 1\n", "\ufeffversion: 1\n"], ids=["bytes", "text"])
def test_utf8_bom_is_accepted(data: bytes | str) -> None:
    assert load_text(data, "f.yaml") == {"version": 1}


def test_crlf_line_endings_are_accepted() -> None:
    assert load_text(b"version: 1\r\nlinks: {}\r\n", "f.yaml") == {"version": 1, "links": {}}


def test_merge_keys_are_refused() -> None:
    assert one("d: &d {ttl: 64}\nlink:\n  <<: *d\n") == \
        "f.yaml:3: YAML merge keys ('<<') are not supported; write the keys out"


def test_duplicate_keys_name_both_lines() -> None:
    assert one("version: 1\nlinks: {}\nversion: 2\n") == \
        "f.yaml:3: duplicate key 'version'; remove one of the two (the first is on line 1)"


@pytest.mark.parametrize(("text", "tag"), [
    ("a: !!python/object:os.system {}\n", "!!python/object:os.system"),
    ("a: !!python/object/apply:os.system ['touch /tmp/grebond-pwned']\n", "!!python/object/apply:os.system"),
    ("a: !!python/name:os.system\n", "!!python/name:os.system"),
    ("a: !vault secret\n", "!vault"),
    ("a: !!set {x, y}\n", "!!set"),
], ids=["python-object", "python-apply", "python-name", "custom-scalar", "set"])
def test_tags_are_refused_not_constructed(text: str, tag: str, tmp_path: Path) -> None:
    assert one(text) == (f"f.yaml:1: the YAML tag '{tag}' is not supported; remove the tag; "
                         "grebond reads plain mappings, lists and values")
    assert not Path("/tmp/grebond-pwned").exists()


@pytest.mark.parametrize(("text", "fragment"), [
    ("a: [1, 2\nb: 3\n", "f.yaml:2:2: YAML syntax error: did not find expected ',' or ']'"),
    ("a:\n\tb: 1\n", "f.yaml:2:1: tabs are not allowed for indentation in YAML; indent with spaces"),
    ("a: 1\n---\nb: 2\n", "f.yaml:2:1: YAML syntax error: but found another document"),
    ("a: *nowhere\n", "f.yaml:1:4: YAML syntax error: found undefined alias"),
    ("[a]: 1\n", "f.yaml:1: a mapping key must be a plain name; use a name like 'bond0'"),
    ("a: 2001-13-45\n", "f.yaml:1: cannot read the value '2001-13-45'; quote it as a string"),
], ids=["unclosed-flow", "tab", "two-documents", "undefined-alias", "list-as-key", "impossible-date"])
def test_syntax_errors_are_one_located_line(text: str, fragment: str) -> None:
    assert one(text).startswith(fragment)


@pytest.mark.parametrize(("setup", "expected"), [
    ("missing", "file not found; create it (see /usr/share/doc/grebond/examples) or pass -c FILE"),
    ("directory", "is a directory; pass the YAML file with -c FILE"),
], ids=["missing", "directory"])
def test_unreadable_paths(setup: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "grebond.yaml"
    if setup == "directory":
        path.mkdir()
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert str(info.value) == f"{path}: {expected}"


def test_lone_surrogate_in_text_is_a_config_error() -> None:
    assert one("a: 1\nb: \ud800\n") == "f.yaml:2: character U+D800 is not valid Unicode text; remove it; a config is UTF-8 text"


SEED = (Path(__file__).resolve().parents[1] / "examples" / "seed.yaml").read_text()


def _edit(line: int, delta: int) -> str:
    lines = SEED.split("\n")
    lines[line - 1] = lines[line - 1][-delta:] if delta < 0 else " " * delta + lines[line - 1]
    return "\n".join(lines)


@pytest.mark.parametrize(("line", "delta", "blamed", "says"), [
    (14, -2, 14, "line 19, after its block, is indented 4"),          # 'tunnels:' dedented: the parser stops 5 lines on
    (11, -2, 11, "line 14, after its block, is indented 4"),
    (15, -1, 15, "line 17, after its block, is indented 6"),          # a tunnel name dedented
    (21, -1, 21, "indented 3 spaces, which matches no level above it"),
])
def test_a_wrong_indentation_is_blamed_where_it_went_wrong(line: int, delta: int, blamed: int, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(_edit(line, delta), "seed.yaml", KNOWN_KEYS)
    [problem] = info.value.problems
    assert problem.line == blamed and says in problem.message, str(problem)
    source, caret = problem.excerpt
    assert source == _edit(line, delta).split("\n")[blamed - 1] and caret == " " * (problem.column - 1) + "^"


def test_a_tab_is_named_with_its_column_and_a_caret() -> None:
    with pytest.raises(ConfigError) as info:
        load_text("version: 1\nlinks:\n  bond0:\n  \tmode: balance-rr\n", "f.yaml")
    [problem] = info.value.problems
    assert str(problem) == "f.yaml:4:3: tabs are not allowed for indentation in YAML; indent with spaces, two per level"
    assert problem.excerpt == ("   mode: balance-rr", "  ^")
