"""No module imports from a layer above it, and the pure layers import no I/O.

Read from the source with ``ast`` (function-local imports included), so a new import that
breaks the layering fails here, naming the module, the line and the two layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grebond"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("grebond", "grebond.__init__", "grebond.errors", "grebond.generated", "grebond.model",
                     "grebond.mtu", "grebond.source", "grebond.changes", "grebond.procs")),
    ("config and host utilities", ("grebond.validation", "grebond.files", "grebond.lock", "grebond.security",
                                   "grebond.nodes", "grebond.systemd")),
    ("pure renderers and kernel state", ("grebond.renderer", "grebond.kernel.state", "grebond.kernel.desired",
                                         "grebond.paths")),
    ("kernel adapter and managed files", ("grebond.kernel", "grebond.managed", "grebond.pending")),
    ("verifier and observers", ("grebond.verifier", "grebond.status", "grebond.probe", "grebond.snapshot",
                                "grebond.metrics", "grebond.watch")),
    ("backends", ("grebond.backends",)),
    ("transaction", ("grebond.apply", "grebond.trial")),
    ("command line", ("grebond.cli", "grebond.__main__")),
]
PURE = ("grebond.model", "grebond.mtu", "grebond.generated", "grebond.changes", "grebond.validation",
        "grebond.renderer", "grebond.kernel.state", "grebond.kernel.desired", "grebond.kernel.plan", "grebond.paths",
        "grebond.backends.networkmanager.compare", "grebond.backends.networkmanager.plan",
        "grebond.backends.networkd.files")
IO = ("grebond.files", "grebond.lock", "grebond.procs", "grebond.managed", "grebond.pending", "grebond.kernel.netlink",
      "grebond.kernel.reader", "grebond.kernel.ethtool", "grebond.kernel.qdisc", "grebond.kernel.echo", "grebond.kernel.execute",
      "subprocess", "socket", "fcntl", "pyroute2", "dbus_next", "asyncio")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The most specific (longest) prefix in the table decides."""
    best, rank = -1, -1
    for i, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{module} is in no layer of tests/test_layers.py: add it"
    return rank


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.append((node.lineno, base))
            # `from grebond import apply` imports the module grebond.apply
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                    if (PACKAGE.parent / f"{base}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
                    or (PACKAGE.parent / f"{base}.{alias.name}".replace(".", "/")).is_dir()]
    return out


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=module_name)
def test_no_import_from_a_layer_above(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    wrong = []
    for line, target in imports(path):
        if target.startswith("grebond") and not (me == target or me.startswith(target + ".")):
            if layer_of(target) > mine:
                wrong.append(f"{path.name}:{line}: {me} ({LAYERS[mine][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]}), a layer above it")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", [p for p in SOURCES if module_name(p).startswith(PURE)], ids=module_name)
def test_pure_modules_import_no_io(path: Path) -> None:
    me = module_name(path)
    found = [f"{path.name}:{line}: {me} is pure but imports {target}" for line, target in imports(path)
             if any(target == io or target.startswith(io + ".") for io in IO)]
    assert not found, "\n".join(found)
