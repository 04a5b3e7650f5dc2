"""What a set of grebond's networkd files makes: which netdevs, which bond each tunnel joins, which
offloads. Read back from the files themselves, not from the model, because the backend also
restores a previous set of files whose model is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grebond.renderer.ini import parse_ini
from grebond.renderer.networkd import LINK_OFFLOAD_KEYS


@dataclass(frozen=True)
class Netdev:
    """What a .netdev file makes: its interface name and kind, and every setting (comments ignored:
    the header names the config path, which may move)."""

    name: str
    kind: str
    sections: dict[str, dict[str, list[str]]]


@dataclass(frozen=True)
class FileSet:
    netdevs: dict[str, Netdev] = field(default_factory=dict)      # file name -> what it makes
    bonds: dict[str, list[str]] = field(default_factory=dict)     # bond -> its tunnels (from the .network files)
    offloads: dict[str, bool] = field(default_factory=dict)       # interface -> offloads on/off (.link files)

    def is_bond(self, name: str) -> bool:
        return any(nd.name == name and nd.kind == "bond" for nd in self.netdevs.values())


def read_files(files: dict[str, bytes]) -> FileSet:
    """Parse grebond's files (a file that does not parse is skipped: it cannot be grebond's)."""
    out = FileSet()
    for name, content in sorted(files.items()):
        try:
            sections = parse_ini(content.decode())
        except (ValueError, UnicodeDecodeError):
            continue
        if name.endswith(".netdev"):
            netdev = sections.get("NetDev", {})
            ifname, kind = netdev.get("Name", [""])[-1], netdev.get("Kind", [""])[-1]
            if ifname:
                out.netdevs[name] = Netdev(ifname, kind, sections)
        elif name.endswith(".network"):
            bond = sections.get("Network", {}).get("Bond", [""])[-1]
            match = sections.get("Match", {}).get("Name", [""])[-1]
            if bond and match:
                out.bonds.setdefault(bond, []).append(match)
        elif name.endswith(".link"):
            ifname = sections.get("Match", {}).get("OriginalName", [""])[-1]
            value = sections.get("Link", {}).get(LINK_OFFLOAD_KEYS[0], [""])[-1]
            if ifname and value in ("true", "false"):
                out.offloads[ifname] = value == "true"
    return out
