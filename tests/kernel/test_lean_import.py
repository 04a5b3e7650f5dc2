"""pyroute2 imported lean (grebond.kernel.lean_import): what grebond uses loads without the package's
eager imports, and the package still behaves as itself for any other name, for both pyroute2 versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYROUTE2_072 = REPO / ".lab" / "pyroute2-0.7.2"

CHECK = """
import sys
import grebond.kernel.netlink                      # installs the stand-in
from pyroute2 import IPRoute, NetlinkError
assert "pyroute2.ndb.main" not in sys.modules and "pyroute2.ipdb" not in sys.modules, "eager imports ran"
with IPRoute() as ip:
    assert ip.get_links(), "no links read"
try:
    with IPRoute() as ip:
        ip.link("get", ifname="no-such-link0")
except NetlinkError as exc:
    assert exc.code == 19
import pyroute2
assert "pyroute2.ndb.main" not in sys.modules
version = pyroute2.__version__          # any other name: the real package's __init__, loaded now
assert "pyroute2.ndb.main" in sys.modules, "the real __init__ did not run"
from pyroute2 import NDB, IPRoute as again
assert again is IPRoute and NDB.__module__ == "pyroute2.ndb.main"
import importlib.metadata
print(importlib.metadata.version("pyroute2"), version)
"""


@pytest.mark.parametrize("pythonpath", ["installed", pytest.param("0.7.2", marks=pytest.mark.pinned)])
def test_lean_pyroute2_reads_links_and_stays_the_real_package(pythonpath: str) -> None:
    env_path = [str(REPO)] + ([str(PYROUTE2_072)] if pythonpath == "0.7.2" else [])
    if pythonpath == "0.7.2" and not (PYROUTE2_072 / "pyroute2").is_dir():
        from needs import need

        need(False, "pyroute2 0.7.2 in .lab/pyroute2-0.7.2 (./setup --test puts it there)")
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          env={"PYTHONPATH": ":".join(env_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("0.7.2" if pythonpath == "0.7.2" else "0.")
