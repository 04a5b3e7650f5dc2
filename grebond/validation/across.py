"""Rules that need every link at once: interface names per node, GRE demultiplexing, ARP targets."""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Address
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
            for ifname, what, line in [(link.name, lpath, link_line)] + [
                    (t.name, f"{lpath}.tunnels.{t.name}", raw_tunnels.key_lines.get(t.name)) for t in link.tunnels]:
                if ifname in used:
                    clash(line, what, "name", end.node, f"the interface name '{ifname}' is already used "
                          f"by {used[ifname]} on {{nodes}}")
                else:
                    used[ifname] = what
            for t in link.tunnels:
                flow = (end.node, t.address_of(end.node), t.address_of(link.peer_of(end.node).node), t.key)
                tpath = f"{lpath}.tunnels.{t.name}"
                if flow in flows:
                    pair = sorted(map(str, flow[1:3]))
                    clash(raw_tunnels[t.name].value_lines.get("ends"), tpath, "flow", end.node,
                          f"has the same underlay address pair ({pair[0]} and {pair[1]}) and "
                          f"{f'the same key {t.key}' if t.key is not None else 'no key'} as {flows[flow]}, "
                          "so the kernel on {nodes} cannot tell their packets apart")
                else:
                    flows[flow] = tpath
        if link.monitor.type is model.MonitorType.ARP:
            for end in link.ends:
                if not _peer_arp_targets(link, end.node):
                    raw_link = lm[link.name]
                    line = raw_link.key_lines.get("monitor", link_line)
                    c.add(line, f"{lpath}.monitor",
                          f"ARP monitoring needs an IPv4 address on {link.peer_of(end.node).node}'s bond to probe",
                          "add an IPv4 bond address to both ends, or set monitor.targets")
    fixes = {"name": "give each bond and tunnel of a node its own name",
             "flow": "use another underlay address pair, or give the tunnels distinct 'key:' values"}
    for (where, kind), (line, nodes, text) in clashes.items():
        c.add(line, where, text.replace("{nodes}", " and ".join(sorted(nodes))), fixes[kind])


def _peer_arp_targets(link: model.Link, node: str) -> tuple[IPv4Address, ...]:
    """The ARP targets ``node`` would probe (explicit ones, or the peer's IPv4 bond addresses)."""
    return model.LocalBond.of(link, node).arp_targets
