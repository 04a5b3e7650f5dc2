"""What a set of grebond's networkd files makes: which netdevs, which bond each tunnel joins, which
offloads and delays. Read back from the files themselves, not from the model, because the backend also
restores a previous set of files whose model is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grebond.model import parse_delay
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
    macs: dict[str, str] = field(default_factory=dict)            # bond -> its MACAddress= (lower case)
    delays: dict[str, int | None] = field(default_factory=dict)
    """Each bond port -> its [NetworkEmulator] DelaySec= in microseconds, None without one."""

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
                mac = netdev.get("MACAddress", [""])[-1].lower()
                if kind == "bond" and mac and mac != "none":
                    out.macs[ifname] = mac
        elif name.endswith(".network"):
            bond = sections.get("Network", {}).get("Bond", [""])[-1]
            match = sections.get("Match", {}).get("Name", [""])[-1]
            if bond and match:
                out.bonds.setdefault(bond, []).append(match)
                delay = sections.get("NetworkEmulator", {}).get("DelaySec", [""])[-1]
                out.delays[match] = parse_delay(delay) if delay else None
        elif name.endswith(".link"):
            ifname = sections.get("Match", {}).get("OriginalName", [""])[-1]
            value = sections.get("Link", {}).get(LINK_OFFLOAD_KEYS[0], [""])[-1]
            if ifname and value in ("true", "false"):
                out.offloads[ifname] = value == "true"
    return out


SEARCH_DIRS = ("/etc/systemd/network", "/run/systemd/network", "/usr/local/lib/systemd/network",
               "/usr/lib/systemd/network")
"""networkd's search path, highest priority first (systemd.network(5)); one name in a higher
directory hides the same name in a lower one."""


def shadowing(ours: dict[str, bytes], others: dict[str, bytes]) -> list[str]:
    """Files not grebond's (path -> content) that define one of grebond's interfaces: a .netdev with
    the same Name= (networkd creates one netdev per name), or a .network matching the name that
    sorts before grebond's (networkd uses the first .network that matches a link). One warning each."""
    mine = read_files(ours)
    names = {nd.name for nd in mine.netdevs.values()}
    our_network = {match: file for file, content in ours.items() if file.endswith(".network")
                   for match in parse_ini(content.decode()).get("Match", {}).get("Name", [])}
    out = []
    for path, content in sorted(others.items(), key=lambda item: item[0].rsplit("/", 1)[-1]):
        file = path.rsplit("/", 1)[-1]
        try:
            sections = parse_ini(content.decode())
        except (ValueError, UnicodeDecodeError):
            continue
        if file.endswith(".netdev"):
            name = sections.get("NetDev", {}).get("Name", [""])[-1]
            if name in names:
                out.append(f"warning: {path} also defines {name}: systemd-networkd creates {name} from one of "
                           "the two; remove or rename it")
        elif file.endswith(".network"):
            for match in " ".join(sections.get("Match", {}).get("Name", [])).split():
                if match in our_network and file < our_network[match]:
                    out.append(f"warning: {path} matches {match} and sorts before {our_network[match]}: "
                               f"systemd-networkd configures {match} from it, not from grebond's file")
    return out
