"""Stand-in for the get-pip bootstrap script ansible-test downloads from its own file server.

Why: ansible-test creates each sanity test's virtual environment without pip and fetches a
get-pip script from a host this project's machines cannot reach (only PyPI and Debian are).
The script's whole job is to put pip into that environment; ensurepip does that from the
interpreter's own wheel, and pip then installs the pinned versions ansible-test asked for
from PyPI as usual. ansible-test runs it as __main__ with pip's install options as argv.
"""

import ensurepip
import os
import runpy
import sys

saved = dict(os.environ)
ensurepip.bootstrap()
os.environ.clear()          # ensurepip points PIP_CONFIG_FILE at /dev/null, for good: give pip its config back
os.environ.update(saved)
options = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", *options]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
