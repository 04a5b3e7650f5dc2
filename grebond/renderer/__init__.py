"""Pure renderers: model in, file bytes (and, for D-Bus, plain settings) out; no I/O, no system libraries.

Importing this package must stay cheap: it never imports pyroute2 or dbus-next.
"""

from __future__ import annotations

from dataclasses import dataclass

from grebond.generated import GENERATED_MARKER, header_lines

__all__ = ["GENERATED_MARKER", "RenderedFile", "Rendering", "header_lines"]


@dataclass(frozen=True)
class RenderedFile:
    """One file a backend would write, by name relative to the backend's directory, or to
    ``directory`` (absolute) for the few that belong elsewhere (networkd's udev rule)."""

    name: str
    content: bytes
    mode: int = 0o644
    directory: str = ""


@dataclass(frozen=True)
class Rendering:
    """What a backend renders for one node: the files it would install, by name."""

    backend: str
    node: str
    files: tuple[RenderedFile, ...] = ()
