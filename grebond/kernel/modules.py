"""Can this kernel make bonds and GRE tunnels at all? Asked before anything is changed.

A kernel without the bonding or ip_gre modules answers the first netlink request with "Operation
not supported", after grebond may already have changed other things; and the verifier would
then only report missing devices. The same holds for sch_netem, which a tunnel's ``delay`` needs
("Specified qdisc kind is unknown", after the tunnels exist). Loaded modules show in /sys/module; a module not loaded yet is
fine if the kernel can load it (it does so by itself on the first request, "rtnl-link-gretap"),
which modules.dep or modules.builtin of the running kernel say.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from grebond.model import LocalBond

MODULES = {"bond": "bonding", "gretap": "ip_gre", "ip6gretap": "ip6_gre", "netem": "sch_netem"}
"""Device kind (or ``netem``, the qdisc of a tunnel with a ``delay``) -> the module that provides it."""
SYS_MODULE = Path("/sys/module")
LIB_MODULES = Path("/lib/modules")


def missing(kinds: list[str]) -> list[tuple[str, str]]:
    """(kind, module) for each of ``kinds`` this kernel can neither run nor load."""
    release = os.uname().release
    known = _listed(LIB_MODULES / release / "modules.dep") | _listed(LIB_MODULES / release / "modules.builtin")
    out = []
    for kind in dict.fromkeys(kinds):
        module = MODULES[kind]
        if not (SYS_MODULE / module).is_dir() and module not in known:
            out.append((kind, module))
    return out


def _listed(index: Path) -> set[str]:
    """Module names in modules.dep / modules.builtin ("kernel/net/ipv4/ip_gre.ko.xz: ..." -> ip_gre)."""
    try:
        text = index.read_text(errors="replace")
    except OSError:
        return set()
    names = set()
    for line in text.splitlines():
        path = line.split(":", 1)[0]
        name = path.rsplit("/", 1)[-1].split(".ko", 1)[0]
        names.add(name.replace("-", "_"))
    return names


def needed(bonds: Sequence[LocalBond]) -> list[str]:
    """The kinds of device (and qdisc: a ``delay`` is netem) these bonds need from the kernel."""
    if not bonds:
        return []
    delayed = any(t.delay_us for b in bonds for t in b.tunnels)
    return ["bond", *(t.kind for b in bonds for t in b.tunnels), *(["netem"] if delayed else [])]


def refusal(kinds: list[str]) -> str | None:
    """One line saying what this kernel lacks and how to load it, or None."""
    gone = missing(kinds)
    if not gone:
        return None
    what = " / ".join(f"{kind} (modprobe {module})" for kind, module in gone)
    return f"this kernel has no {what}; load the module, or run grebond on a kernel that has it"
