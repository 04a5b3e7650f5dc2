"""Allow ``python -m grebond``."""

import sys

from grebond.cli import main

sys.exit(main())
