#!/usr/bin/env python3
"""Cold `grebond render` wall time for the seed example (target: under 60 ms).

Each run is a fresh interpreter, as a user or an install hook would start it. Prints the
median and spread of N runs per backend. The development venv installs grebond in editable
mode, whose import hook costs every start ~8 ms that no user pays; so the networkd render is
also timed from an "installed layout": a throwaway venv whose site-packages holds grebond and
PyYAML as plain packages (symlinks), as pip or the .deb would place them. grebond's bytecode
is compiled first, as pip and the .deb's py3compile do at install: with PYTHONDONTWRITEBYTECODE
set (as in this workplace) a stale .pyc would otherwise cost a recompile on every run.

    .venv/bin/python benchmarks/render_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "examples" / "seed.yaml"
TARGET_MS = 60.0


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def installed_layout(tmp: Path) -> Path:
    """A venv with grebond and yaml as plain directories in site-packages; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp)], check=True)
    site = Path(subprocess.run([str(tmp / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    import yaml
    for pkg in (REPO / "grebond", Path(yaml.__file__).parent):
        os.symlink(pkg, site / pkg.name)
    for ext in Path(sysconfig.get_paths()["platlib"]).glob("_yaml*"):   # libyaml binding, if any
        os.symlink(ext, site / ext.name)
    return tmp / "bin" / "python"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "grebond")], check=True)
    grebond = [sys.executable, "-m", "grebond"]
    baseline = [sys.executable, "-c", "pass"]
    rows = [("python -c pass (interpreter start)", baseline)]
    for backend in ("networkd", "networkmanager", "iproute2"):
        rows.append((f"grebond render --backend {backend}",
                     [*grebond, "render", "--backend", backend, "-c", str(SEED)]))
    rows.append(("grebond validate", [*grebond, "validate", "-c", str(SEED)]))
    tmp = Path(tempfile.mkdtemp(prefix="grebond-bench-"))
    installed = installed_layout(tmp / "venv")
    rows.append(("render --backend networkd (installed layout)",
                 [str(installed), "-m", "grebond", "render", "--backend", "networkd", "-c", str(SEED)]))
    rows.append(("python -c pass (installed layout)", [str(installed), "-c", "pass"]))
    print(f"{'command':<44} {'median ms':>9} {'min':>6} {'max':>6}   (runs={args.runs}, target < {TARGET_MS:.0f} ms)")
    for label, argv in rows:
        time_once(argv)  # warm the page cache, not the interpreter
        samples = [time_once(argv) for _ in range(args.runs)]
        print(f"{label:<44} {statistics.median(samples):9.1f} {min(samples):6.1f} {max(samples):6.1f}")
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
