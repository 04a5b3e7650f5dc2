"""grebond's keyfiles in NetworkManager's system-connections directory (offline installs, and the
restore when NetworkManager stopped in the middle of a change).

A keyfile is grebond's when it carries the generated-by header, or, once NetworkManager has
rewritten it over D-Bus (without comments), grebond's user-data marker, which NM keeps.
Keyfiles are root's and 0600: NetworkManager ignores any other as insecure.
"""

from __future__ import annotations

import os
from pathlib import Path

from grebond.files import is_generated, under_root
from grebond.managed import ManagedDirectory
from grebond.renderer import networkmanager as renderer
from grebond.renderer.ini import parse_ini


def has_marker(path: Path) -> bool:
    try:
        sections = parse_ini(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return False
    return renderer.USER_KEY in sections.get("user", {})


def is_our_keyfile(path: Path) -> bool:
    return is_generated(path) or has_marker(path)


def keyfile_directory(root: Path) -> ManagedDirectory:
    return ManagedDirectory(under_root(root, renderer.KEYFILE_DIR), mode=renderer.KEYFILE_MODE,
                            owner=0 if os.geteuid() == 0 else None, ours=is_our_keyfile)
