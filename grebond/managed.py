"""A directory where grebond keeps its own files: make them exactly a wanted set, and nothing else.

One class for every backend that writes files (networkd's .netdev/.network/.link files,
NetworkManager's keyfiles, the iproute2 script), so the ownership rules live in one place:
a file is grebond's when ``ours(path)`` says so (by default: its name has the prefix and its
first line the generated-by header); only grebond's files are ever replaced or removed; a name
held by someone else's file is refused before anything is written. Every write is atomic
(``grebond.files``), so a crash leaves each file old or new.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from grebond.changes import Changes
from grebond.errors import OwnershipError, SystemAccessError
from grebond.files import fsync_dir, is_generated, write_atomic


class ManagedDirectory:
    def __init__(self, directory: Path, *, prefix: str = "", mode: int = 0o644, owner: int | None = None,
                 ours: Callable[[Path], bool] | None = None) -> None:
        self.directory = directory
        self.prefix = prefix
        self.mode = mode
        self.owner = owner
        self._ours = ours

    def ours(self, path: Path) -> bool:
        # hidden names are grebond's own temporary files (a killed write leaves one; the next write
        # of that file removes it), never a daemon's configuration
        if path.name.startswith(".") or path.is_symlink() or not path.is_file() or not path.name.startswith(self.prefix):
            return False
        return self._ours(path) if self._ours is not None else is_generated(path)

    def current(self) -> dict[str, bytes]:
        """grebond's files in the directory, by name."""
        if not self.directory.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(self.directory.iterdir()) if self.ours(p)}

    def check(self, names: list[str]) -> None:
        """Refuse before anything changes: a name outside grebond's prefix, or held by someone else's file."""
        for name in names:
            if not name.startswith(self.prefix):
                raise SystemAccessError(f"refusing to write {name}: grebond's files here start with {self.prefix}")
            path = self.directory / name
            if (path.exists() or path.is_symlink()) and not self.ours(path):
                raise OwnershipError(path)

    def same(self, name: str, content: bytes, current: dict[str, bytes]) -> bool:
        if current.get(name) != content:
            return False
        st = (self.directory / name).stat()
        return (st.st_mode & 0o7777) == self.mode and (self.owner is None or st.st_uid == self.owner)

    def sync(self, desired: dict[str, bytes], dry_run: bool = False) -> Changes:
        """Write each desired file that differs, remove grebond's files that are not desired."""
        self.check(sorted(desired))
        current = self.current()
        changes = Changes()
        for name, content in sorted(desired.items()):
            path = self.directory / name
            if self.same(name, content, current):
                changes.unchanged.append(str(path))
                continue
            if not dry_run:
                self._write(path, content)
            changes.written.append(str(path))
        for name in sorted(set(current) - set(desired)):
            path = self.directory / name
            if not dry_run:
                path.unlink(missing_ok=True)
                fsync_dir(path.parent)
            changes.removed.append(str(path))
        if dry_run:
            changes.diff = self.diff(desired, current)
        return changes

    def _write(self, path: Path, content: bytes) -> None:
        if path.exists() and not is_generated(path):
            # ours by another mark (a keyfile NetworkManager rewrote without grebond's header):
            # write_atomic refuses to replace it, so write beside it and rename over it
            tmp = path.with_name(f".{path.name}.grebond-new")
            write_atomic(tmp, content, self.mode, self.owner, self.owner)
            os.replace(tmp, path)
            fsync_dir(path.parent)
        else:
            write_atomic(path, content, self.mode, self.owner, self.owner)

    def diff(self, desired: dict[str, bytes], current: dict[str, bytes] | None = None) -> list[str]:
        """A unified diff from grebond's files on disk to ``desired``, file by file."""
        import difflib  # only a dry run shows a diff; a plain apply does not pay for the import

        current = self.current() if current is None else current
        out: list[str] = []
        for name in sorted(set(current) | set(desired)):
            old, new = current.get(name), desired.get(name)
            if old == new:
                continue
            path = str(self.directory / name)
            out += difflib.unified_diff(_lines(old), _lines(new), "/dev/null" if old is None else path,
                                        "/dev/null" if new is None else path, lineterm="")
        return out


def _lines(content: bytes | None) -> list[str]:
    return [] if content is None else content.decode(errors="replace").splitlines()
