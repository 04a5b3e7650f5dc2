"""Finding backends through the ``grebond.backends`` entry-point group.

A plugin that fails to import or does not implement ``Backend`` is reported by name and
skipped; it never breaks the other backends or ``grebond --help``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from grebond.backends.base import REQUIRED_METHODS, Backend
from grebond.errors import UsageError

GROUP = "grebond.backends"

# The built-ins, exactly as pyproject.toml registers them. Resolving these names directly
# skips the entry-point scan (importlib.metadata is a large part of a cold
# render). A plugin may not take a built-in's name; discover() reports such a clash.
BUILTINS = {
    "iproute2": "grebond.backends.iproute2:Iproute2Backend",
    "kernel": "grebond.backends.kernel:KernelBackend",
    "networkd": "grebond.backends.networkd:NetworkdBackend",
    "networkmanager": "grebond.backends.networkmanager:NetworkManagerBackend",
}


@dataclass(frozen=True)
class Entry:
    """One discovered backend: its class, or the reason it cannot be used."""

    name: str
    target: str
    backend: type[Backend] | None
    error: str = ""


def discover() -> dict[str, Entry]:
    """Every installed backend by name, loaded; broken ones carry their error."""
    from importlib.metadata import entry_points

    found: dict[str, Entry] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in BUILTINS and ep.value != BUILTINS[ep.name]:
            found[ep.name] = Entry(ep.name, ep.value, None, f"takes the name of a built-in backend "
                                   f"({BUILTINS[ep.name]}); rename the plugin's entry point")
            continue
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


def _import_target(target: str) -> object:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def get(name: str) -> Backend:
    """An instance of the backend called ``name``; UsageError naming the choices otherwise."""
    if name in BUILTINS:
        entry = _load(name, BUILTINS[name], lambda: _import_target(BUILTINS[name]))
        if entry.backend is None:
            raise UsageError(f"backend '{name}' ({entry.target}) {entry.error}")
        return entry.backend()
    entries = discover()
    found = entries.get(name)
    if found is None:
        usable = ", ".join(sorted(n for n, e in entries.items() if e.backend)) or "none"
        raise UsageError(f"unknown backend '{name}'; installed backends: {usable} (see 'grebond backends')")
    if found.backend is None:
        raise UsageError(f"backend '{name}' ({found.target}) {found.error}")
    return found.backend()


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
    return get("kernel"), ("chose backend 'kernel': neither systemd-networkd nor NetworkManager is running "
                           "(the kernel backend is not persistent across reboots)")

