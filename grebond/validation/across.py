"""Rules that need every link at once: interface names per node, GRE demultiplexing, ARP targets."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from grebond import model
from grebond.source import LocatedMap
from grebond.validation.reader import Checker


def check_across_links(c: Checker, links: list[model.Link], tree: LocatedMap) -> None:
    """Checks that need every link: names per node, GRE demultiplexing, ARP targets.

    Each clash is reported once, at the later definition, naming every node it affects: the
    same mistake seen from both ends is one thing to fix, not two.
    """
    lm = tree["links"]
    names: dict[str, dict[str, str]] = defaultdict(dict)       # node -> ifname -> where first used
    flows: dict[tuple[str, Any, Any, Any], str] = {}
    clashes: dict[tuple[str, str], tuple[int | None, list[str], str]] = {}   # (path, kind) -> line, nodes, text

    def clash(line: int | None, where: str, kind: str, node: str, text: str) -> None:
        entry = clashes.setdefault((where, kind), (line, [], text))
        if node not in entry[1]:
            entry[1].append(node)

    for link in links:
        lpath = f"links.{link.name}"
        raw_tunnels = lm[link.name]["tunnels"]
        link_line = lm.key_lines.get(link.name)
        for end in link.ends:
            used = names[end.node]
            for ifname, what, line, label in [(link.name, lpath, link_line, lpath)] + [
                    (t.name, _where(lpath, t), _line(raw_tunnels, t), _named(lpath, t)) for t in link.tunnels]:
                if ifname in used:
                    clash(line, what, "name", end.node, f"the interface name '{ifname}' is already used "
                          f"by {used[ifname]} on {{nodes}}")
                else:
                    used[ifname] = label
            for t in link.tunnels:
                flow = (end.node, t.address_of(end.node), t.address_of(link.peer_of(end.node).node), t.key)
                tpath = _where(lpath, t)
                if flow in flows:
                    pair = sorted(map(str, flow[1:3]))
                    line = _line(raw_tunnels, t) if t.copy_of else raw_tunnels[t.name].value_lines.get("ends")
                    clash(line, tpath, "flow", end.node,
                          (f"its copy {t.name} (key {t.key}) " if t.copy_of else "") +
                          f"has the same underlay address pair ({pair[0]} and {pair[1]}) and "
                          f"{f'the same key {t.key}' if t.key is not None else 'no key'} as {flows[flow]}, "
                          "so the kernel on {nodes} cannot tell their packets apart")
                else:
                    flows[flow] = _named(lpath, t)
        if link.monitor.type is model.MonitorType.ARP:
            for end in link.ends:
                bond = model.LocalBond.of(link, end.node)
                raw_link = lm[link.name]
                line = raw_link.key_lines.get("monitor", link_line)
                if not bond.arp_targets and not bond.ns_targets:
                    c.add(line, f"{lpath}.monitor",
                          f"the ARP/NS monitor needs an address of {link.peer_of(end.node).node}'s bond to probe",
                          "give both ends' bonds an IPv4 or IPv6 address, or set monitor.targets")
                families = {a.version for a in end.addresses}
                for family, targets in ((4, bond.arp_targets), (6, bond.ns_targets)):
                    if targets and family not in families:
                        c.add(raw_link["monitor"].value_lines.get("targets", line)
                              if isinstance(raw_link.get("monitor"), LocatedMap) else line,
                              f"{lpath}.monitor.targets",
                              f"{end.node}'s bond has no IPv{family} address to send its probes of "
                              f"{', '.join(map(str, targets))} from",
                              f"give {end.node}'s bond an IPv{family} address, or probe the other family")
    fixes = {"name": "give each bond and tunnel of a node its own name",
             "flow": "use another underlay address pair, or give the tunnels distinct 'key:' values"}
    for (where, kind), (line, nodes, text) in clashes.items():
        c.add(line, where, text.replace("{nodes}", " and ".join(sorted(nodes))), fixes[kind])



def _where(lpath: str, t: model.Tunnel) -> str:
    """Where a tunnel is written: a copy made by ``weight`` is at its tunnel's ``weight`` key."""
    return f"{lpath}.tunnels.{t.copy_of}.weight" if t.copy_of else f"{lpath}.tunnels.{t.name}"


def _named(lpath: str, t: model.Tunnel) -> str:
    """A tunnel as a message names it: a copy by its tunnel and its own name and key."""
    return f"{lpath}.tunnels.{t.copy_of}'s copy {t.name} (key {t.key})" if t.copy_of else f"{lpath}.tunnels.{t.name}"


def _line(raw_tunnels: LocatedMap, t: model.Tunnel) -> int | None:
    if t.copy_of:
        raw = raw_tunnels[t.copy_of]
        line: int | None = raw.key_lines.get("weight", raw_tunnels.key_lines.get(t.copy_of))
        return line
    return raw_tunnels.key_lines.get(t.name)
