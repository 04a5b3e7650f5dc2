"""One grebond change at a time: an flock on /run/lock/grebond.lock, released by the kernel on exit.

flock (not a pid file) so a kill -9 never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grebond.errors import LockBusy, SystemAccessError

LOCK_PATH = Path(os.environ.get("GREBOND_LOCK", "/run/lock/grebond.lock"))


@contextmanager
def exclusive(wait_s: float = 10.0, path: Path = LOCK_PATH) -> Iterator[None]:
    """Hold the lock; wait up to ``wait_s`` for another grebond, then refuse with its pid."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise SystemAccessError(f"cannot take grebond's lock {path}: {exc.strerror or exc}; run as root, or set "
                                "GREBOND_LOCK to a writable path") from exc
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise LockBusy(f"another grebond (pid {holder}) is changing the system and holds "
                                            f"{path}; waited {wait_s:.0f} s. Try again when it has finished") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
