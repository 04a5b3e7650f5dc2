"""What to do to NetworkManager's profiles: add, update, delete, or leave each one. Pure.

Profiles are matched by UUID (grebond's are stable: ``LocalBond.uuid``); a profile the model no
longer has is deleted only when it carries grebond's marker, so nobody else's is ever touched.
The settings each changed profile had before are kept in the plan: NetworkManager 1.42's
checkpoint rollback fails for a profile updated in place, and grebond then writes them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grebond.backends.networkmanager.compare import (
    differences,
    ifname_of,
    is_bond,
    is_grebonds,
    name_of,
    plain_from_json,
    plain_to_json,
)
from grebond.renderer.networkmanager import Plain


@dataclass
class Plan:
    """What to do to NM's profiles; each list holds (uuid, connection id)."""

    add: list[tuple[str, str]] = field(default_factory=list)
    update: list[tuple[str, str, list[str]]] = field(default_factory=list)   # + which properties differ
    delete: list[tuple[str, str]] = field(default_factory=list)
    same: list[tuple[str, str]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)                     # uuid -> NM object path
    ifnames: dict[str, str] = field(default_factory=dict)                   # uuid -> interface name
    bonds: set[str] = field(default_factory=set)                            # uuids of bond profiles
    previous: dict[str, Plain] = field(default_factory=dict)                # uuid -> settings before the change

    @property
    def empty(self) -> bool:
        return not (self.add or self.update or self.delete)

    def lines(self) -> list[str]:
        out = [f"add connection {n} ({u})" for u, n in self.add]
        out += [f"update connection {n} ({u}): {', '.join(d)}" for u, n, d in self.update]
        out += [f"delete connection {n} ({u})" for u, n in self.delete]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"add": self.add, "update": self.update, "delete": self.delete, "same": self.same,
                "paths": self.paths, "ifnames": self.ifnames, "bonds": sorted(self.bonds),
                "previous": {u: plain_to_json(p) for u, p in self.previous.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(add=[(u, n) for u, n in data.get("add", [])],
                   update=[(u, n, list(d)) for u, n, d in data.get("update", [])],
                   delete=[(u, n) for u, n in data.get("delete", [])],
                   same=[(u, n) for u, n in data.get("same", [])],
                   paths=dict(data.get("paths", {})), ifnames=dict(data.get("ifnames", {})),
                   bonds=set(data.get("bonds", [])),
                   previous={u: plain_from_json(p) for u, p in data.get("previous", {}).items()})


def plan_profiles(desired: dict[str, Plain], existing: dict[str, tuple[str, Plain]]) -> Plan:
    """From NM's profiles (uuid -> (object path, settings)) to ``desired`` (uuid -> settings)."""
    plan = Plan()
    for uuid, want in desired.items():
        plan.ifnames[uuid] = ifname_of(want)
        if is_bond(want):
            plan.bonds.add(uuid)
        if uuid not in existing:
            plan.add.append((uuid, name_of(want)))
            continue
        path, have = existing[uuid]
        plan.paths[uuid] = path
        plan.previous[uuid] = have
        diff = differences(want, have)
        (plan.update.append((uuid, name_of(want), diff)) if diff else plan.same.append((uuid, name_of(want))))
    for uuid, (path, have) in existing.items():
        if uuid not in desired and is_grebonds(have):
            plan.delete.append((uuid, name_of(have)))
            plan.paths[uuid] = path
            plan.previous[uuid] = have
            plan.ifnames[uuid] = ifname_of(have)
            if is_bond(have):
                plan.bonds.add(uuid)
    return plan
