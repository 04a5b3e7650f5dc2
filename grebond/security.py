"""Refuse to act on a config that a non-root user could have changed (like sshd's StrictModes).

grebond runs as root at install and boot time; a config writable by someone else would let
them rewire the router.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from grebond.errors import InsecureConfigError


def check_config_permissions(path: Path) -> None:
    """Raise InsecureConfigError if ``path`` or its directory is unsafe for root to trust."""
    if os.geteuid() != 0:
        return  # only root's actions are at stake; a user may apply their own file to a --root image
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return  # loading reports a missing file with its own message
    if st.st_uid != 0:
        raise InsecureConfigError(f"{path}: owned by uid {st.st_uid}, not root; grebond will not apply a config "
                                  f"another user controls. Fix: chown root:root {path}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecureConfigError(f"{path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                                  f"grebond will not apply it. Fix: chmod go-w {path}")
    parent = path.resolve().parent
    pst = parent.stat()
    sticky = bool(pst.st_mode & stat.S_ISVTX)
    if pst.st_uid != 0 or (pst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky):
        raise InsecureConfigError(f"{parent}: the config's directory is owned or writable by a non-root user, "
                                  f"who could replace {path.name}. Fix: chown root:root {parent} && chmod go-w {parent}")
