"""Finding backends through the ``grebond.backends`` entry-point group.

A plugin that fails to import or does not implement ``Backend`` is reported by name and
skipped; it never breaks the other backends or ``grebond --help``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib.metadata import entry_points

from grebond.backends.base import Backend, REQUIRED_METHODS
from grebond.errors import UsageError

GROUP = "grebond.backends"


@dataclass(frozen=True)
class Entry:
    """One discovered backend: its class, or the reason it cannot be used."""

    name: str
    target: str
    backend: type[Backend] | None
    error: str = ""


def discover() -> dict[str, Entry]:
    """Every installed backend by name, loaded; broken ones carry their error."""
    found: dict[str, Entry] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in found:
            found[ep.name] = Entry(ep.name, ep.value, None,
                                   f"registered twice ({found[ep.name].target} and {ep.value}); uninstall one")
            continue
        found[ep.name] = _load(ep.name, ep.value, ep.load)
    return found


def _load(name: str, target: str, loader) -> Entry:  # type: ignore[no-untyped-def]
    try:
        obj = loader()
    except Exception as exc:  # a plugin's import error must not take grebond down
        return Entry(name, target, None, f"cannot be imported: {type(exc).__name__}: {exc}")
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        missing = [m for m in REQUIRED_METHODS if not callable(getattr(obj, m, None))]
        why = f"lacks {', '.join(missing)}" if missing else "is not a subclass of grebond.backends.base.Backend"
        return Entry(name, target, None, f"does not implement the backend interface ({why})")
    abstract = sorted(getattr(obj, "__abstractmethods__", ()))
    if abstract:
        return Entry(name, target, None, f"does not implement the backend interface (lacks {', '.join(abstract)})")
    return Entry(name, target, obj)


def get(name: str) -> Backend:
    """An instance of the backend called ``name``; UsageError naming the choices otherwise."""
    entries = discover()
    entry = entries.get(name)
    if entry is None:
        usable = ", ".join(sorted(n for n, e in entries.items() if e.backend)) or "none"
        raise UsageError(f"unknown backend '{name}'; installed backends: {usable} (see 'grebond backends')")
    if entry.backend is None:
        raise UsageError(f"backend '{name}' ({entry.target}) {entry.error}")
    return entry.backend()


def choose_auto() -> tuple[Backend, str]:
    """The backend that manages this host: networkd if running, else NetworkManager, else kernel."""
    for name in ("networkd", "networkmanager"):
        try:
            backend = get(name)
        except UsageError:
            continue
        availability = backend.available()
        if availability.ok:
            return backend, f"chose backend '{name}': {availability.reason}"
    return get("kernel"), "chose backend 'kernel': neither systemd-networkd nor NetworkManager is running " \
        "(the kernel backend is not persistent across reboots)"


def which(program: str) -> str | None:
    return shutil.which(program)
