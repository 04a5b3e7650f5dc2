"""Writing and removing generated files safely.

Every write is atomic (temp file in the same directory, fsync, rename, fsync of the directory),
so a crash leaves the old or the new version, never a partial one. grebond only replaces or
deletes files whose first line (after a #! line) carries its generated-by marker.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from grebond.errors import OwnershipError
from grebond.generated import GENERATED_MARKER

TEMP_SUFFIX = ".grebond-tmp"   # hidden and without a .netdev/.network/.nmconnection suffix: daemons ignore it


def is_generated(path: Path) -> bool:
    """True when ``path`` is a regular file grebond wrote: the marker is on its first line
    (its second, after a ``#!`` interpreter line)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            first = fh.readline(512)
            if first.startswith(b"#!"):
                first = fh.readline(512)
    except OSError:
        return False
    return GENERATED_MARKER.encode() in first


def check_writable(path: Path) -> None:
    """Raise OwnershipError if ``path`` exists and grebond did not write it."""
    if (path.exists() or path.is_symlink()) and not is_generated(path):
        raise OwnershipError(path)


def write_atomic(path: Path, content: bytes, mode: int = 0o644, uid: int | None = None,
                 gid: int | None = None) -> bool:
    """Write ``content`` to ``path`` atomically with ``mode``; return False if it was already so."""
    check_writable(path)
    try:
        st = path.stat()
        if (path.read_bytes() == content and (st.st_mode & 0o7777) == mode
                and (uid is None or st.st_uid == uid) and (gid is None or st.st_gid == gid)):
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):   # left by a killed run
        stale.unlink(missing_ok=True)
    fd, tmp = _new_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if uid is not None or gid is not None:
                os.fchown(fh.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
    return True


def _new_temp(path: Path) -> tuple[int, Path]:
    """A new, exclusive temporary file next to ``path`` (mode 0600 until chmod).

    Not ``tempfile``: importing it (random, shutil...) would slow every CLI start (docs/performance.md). O_EXCL and
    O_NOFOLLOW make a name collision or a planted symlink fail instead of being followed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for attempt in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}.{time.monotonic_ns() % 10**9}.{attempt}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {path}")


def remove_generated(path: Path) -> bool:
    """Delete ``path`` if grebond wrote it; never touch anything else. Return True if deleted."""
    if not is_generated(path):
        return False
    path.unlink()
    fsync_dir(path.parent)
    return True


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def generated_files(directory: Path, prefix: str = "") -> list[Path]:
    """grebond's files in ``directory`` whose names start with ``prefix``, sorted."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(prefix) and is_generated(p))


def under_root(root: Path, absolute: str) -> Path:
    """``absolute`` (e.g. /etc/systemd/network) inside an image or test root."""
    return root / absolute.lstrip("/")
