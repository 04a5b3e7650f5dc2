"""Every malformed config in tests/corpus: exit 2, one located line per problem with its fix, nothing written.

The expected path and message fragment of each file are in tests/corpus/expected.tsv
(regenerate the corpus with tests/corpus/make_corpus.py). Big inputs are generated here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from grebond.cli import main

CORPUS = Path(__file__).resolve().parent / "corpus"


def _expected() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (CORPUS / "expected.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, path, fragment = line.split("\t")
            rows[name] = (path, fragment)
    return rows


EXPECTED = _expected()
GENERATED: dict[str, tuple[bytes, str]] = {
    # name -> (content, fragment); made at test time, too big to commit
    "deep-nesting.yaml": (b"[" * 100_000, "nested more than 32 levels deep"),
    "deep-nesting-block.yaml": ("".join(" " * i + "a:\n" for i in range(200)).encode(), "nested more than"),
    "huge.yaml": (b"version: 1\n" + b"# padding\n" * 120_000, "larger than"),
    "many-values.yaml": (b"version: 1\nlinks: [" + b"1, " * 250_000 + b"1]\n", "too many values"),
    "long-line-junk.yaml": (b"version: 1\nlinks: {" + b"x" * 900_000 + b"\n", "YAML syntax error"),
}


def test_corpus_is_large_enough() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.suffix in (".yaml", ".bin")}
    assert files == set(EXPECTED), "every corpus file needs a row in expected.tsv, and every row a file"
    assert len(files) + len(GENERATED) >= 60


def _check_stderr(err: str, config: Path, path: str, fragment: str) -> None:
    """Each line is 'FILE:LINE: ...' (or 'FILE: ...'), names the path, and gives a fix after ';'."""
    assert "Traceback" not in err
    # a YAML syntax error shows the offending text and a caret under it, indented, below its line
    lines = [line for line in err.splitlines() if not line.startswith("    ")]
    assert lines, "no message at all"
    pattern = re.compile(rf"^{re.escape(str(config))}(:\d+(:\d+)?)?: (.+); (.+)$")
    for line in lines:
        assert pattern.match(line), f"not 'FILE:LINE: what; fix': {line!r}"
    assert any(fragment in line for line in lines), f"{fragment!r} not in {err!r}"
    if path:
        assert any(f": {path}: " in line for line in lines), f"path {path!r} not in {err!r}"


def _run_both(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """validate and render -o DIR in-process; both must exit 2 and render must write nothing."""
    assert main(["validate", "-c", str(config)]) == 2
    validate_err = capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    assert main(["render", "--backend", "iproute2", "-o", str(out), "-c", str(config)]) == 2
    render_err = capsys.readouterr().err
    assert list(out.iterdir()) == [], "render wrote files for an invalid config"
    return validate_err, render_err


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, fragment = EXPECTED[name]
    config = CORPUS / name
    validate_err, render_err = _run_both(config, tmp_path, capsys)
    _check_stderr(validate_err, config, path, fragment)
    assert render_err == validate_err


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_big_input(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, fragment = GENERATED[name]
    config = tmp_path / name
    config.write_bytes(content)
    validate_err, _ = _run_both(config, tmp_path, capsys)
    _check_stderr(validate_err, config, "", fragment)
    assert len([line for line in validate_err.splitlines() if not line.startswith("    ")]) == 1


# A handful through a real process: exit status, no traceback, nothing written, and for the
# deep nesting one, proof that the interpreter survives (a C-level recursion would kill it).
SUBPROCESS_CASES = ["alias-bomb.yaml", "binary-junk.bin", "tunnel-key-zero.yaml", "gre-as-bond-slave.yaml",
                    "syntax-tab-indent.yaml", "deep-nesting.yaml"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_corpus_in_a_subprocess(name: str, tmp_path: Path) -> None:
    if name in GENERATED:
        config = tmp_path / name
        config.write_bytes(GENERATED[name][0])
        path, fragment = "", GENERATED[name][1]
    else:
        config = CORPUS / name
        path, fragment = EXPECTED[name]
    out = tmp_path / "out"
    for args in (["validate"], ["render", "--backend", "iproute2", "-o", str(out)]):
        done = subprocess.run([sys.executable, "-m", "grebond", *args, "-c", str(config)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        _check_stderr(done.stderr, config, path, fragment)
    assert not out.exists() or list(out.iterdir()) == []
