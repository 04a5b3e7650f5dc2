"""pyroute2 without its package's eager imports.

``import pyroute2`` runs pyroute2/__init__.py, which imports every family pyroute2 has (IPDB,
NDB, conntrack, nl80211, IPVS, plan9...): about 60 % of pyroute2's import time, the largest part
of a cold ``grebond verify``, and seconds per command on a slow machine. grebond needs three
names. ``install()`` puts a stand-in for the package in ``sys.modules`` whose attributes resolve
lazily: those three from the submodules that define them (the same in pyroute2 0.7.x and 0.9.x),
anything else by running the real __init__.py into it once. Code that imports pyroute2 after
this, grebond's or anyone's, sees the same package either way.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types
from typing import Any, cast

# name -> the submodule that defines it, in every pyroute2 grebond supports (0.7.2 to 0.9.x)
HOMES = {
    "IPRoute": "pyroute2.iproute.linux",
    "NetlinkError": "pyroute2.netlink.exceptions",
    "WireGuard": "pyroute2.netlink.generic.wireguard",
}


class _Finder:   # a meta path finder by protocol: importlib.abc costs 10 ms to import
    """Answers the first ``import pyroute2`` with the stand-in, then steps aside."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "pyroute2":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        spec = importlib.util.find_spec("pyroute2")
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return None                 # not installed: the import error comes where it is used
        return importlib.util.spec_from_loader("pyroute2", cast(Any, _Loader(spec)), is_package=True)


class _Loader:
    def __init__(self, real: importlib.machinery.ModuleSpec) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _stand_in(self.real)

    def exec_module(self, module: types.ModuleType) -> None:
        pass                            # the stand-in is complete; the real __init__ runs only on demand


def install() -> None:
    """Make the next ``import pyroute2`` give the lazy stand-in; nothing is imported until then."""
    if "pyroute2" in sys.modules or os.environ.get("GREBOND_FULL_PYROUTE2"):
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def _stand_in(spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
    assert spec.loader is not None and spec.submodule_search_locations is not None
    package = types.ModuleType("pyroute2")
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__path__ = list(spec.submodule_search_locations)
    package.__package__ = "pyroute2"
    loader = spec.loader
    state = {"full": False}

    def full() -> None:
        if not state["full"]:
            state["full"] = True
            loader.exec_module(package)   # the real __init__.py, into this module: every name it defines

    def getattr_(name: str) -> Any:
        home = HOMES.get(name)
        if home is not None:
            value = getattr(importlib.import_module(home), name)
            setattr(package, name, value)
            return value
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")   # a submodule: no need for the rest
        full()
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    package.__getattr__ = getattr_  # type: ignore[method-assign]
    return package
