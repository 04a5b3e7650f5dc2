"""Prometheus text exposition of a ``Snapshot``: per-tunnel and per-bond health of grebond's bonds.

Why grebond exports its own: node_exporter's bonding collector has two numbers per bond (slaves,
active), nothing per slave, and nothing knows which underlay path a tunnel takes, whether two
tunnels share one, or whether the path's WireGuard peer is alive. A bond that silently runs on
one tunnel stays "up" everywhere else.

Pure: snapshot in, text out (golden-tested, checked by ``promtool check metrics``). Conventions
(prometheus.io/docs/practices/naming): base units (``_seconds``, ``_bytes``), ``_total`` on
counters, ``_info`` gauges of value 1 carrying text as labels. Counters are the kernel's own,
copied as read and never reset by grebond; a counter the kernel does not have (a tunnel that is
absent, or not enslaved) is left out rather than sent as 0, which Prometheus would take for a
reset. The first line is grebond's generated-by comment: the text format ignores comments
other than HELP and TYPE (promtool and node_exporter's textfile parser both accept it), and
grebond only ever rewrites a file that carries it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from grebond.renderer import GENERATED_MARKER
from grebond.snapshot import Snapshot
from grebond.status import BondStatus, TunnelStatus

PREFIX = "grebond_"
CONTENT_TYPE = "text/plain; version=0.0.4"


@dataclass
class Family:
    """One metric family: its HELP and TYPE lines, then its samples (labels, value)."""

    name: str
    kind: str                       # gauge | counter
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float) -> None:
        self.samples.append((labels, value))

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        out += [f"{self.name}{_labels(labels)} {_value(value)}" for labels, value in self.samples]
        return out


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _value(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    if v == int(v) and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def header(source: str, nodes: Iterable[str]) -> str:
    """The generated-by comment: what wrote the file and from which model."""
    names = ", ".join(nodes) or "none"
    source = source.replace("\r", "\\r").replace("\n", "\\n")    # a comment is one line
    return (f"# {GENERATED_MARKER} from {source} for node {names} (grebond status --format prometheus); "
            "rewritten on every run, do not edit.")


def _families() -> dict[str, Family]:
    specs = [
        ("scrape_success", "gauge", "1 when grebond read the kernel and its model, 0 when the read failed "
         "(then no other grebond series is written)."),
        ("scrape_duration_seconds", "gauge", "How long grebond took to read and judge the kernel's state."),
        ("bond_info", "gauge", "A grebond bond on this node; mode and monitor (arp, mii, none) as the kernel "
         "runs them (the model's mode while the bond is absent)."),
        ("bond_up", "gauge", "1 when the bond device exists, is up and has carrier (at least one tunnel alive)."),
        ("bond_tunnels_configured", "gauge", "Tunnels the model gives this bond."),
        ("bond_tunnels_up", "gauge", "Tunnels the bond's monitor sees up."),
        ("bond_shared_path", "gauge", "1 when two or more of the bond's tunnels leave through one underlay "
         "device or next hop (grebond check-paths' rule): one failure takes them all down."),
        ("bond_drift", "gauge", "1 when the kernel differs from the model for this bond or its tunnels "
         "(grebond verify would exit 1)."),
        ("tunnel_info", "gauge", "A tunnel of a grebond bond: its kind, underlay addresses and the underlay "
         "device its remote is routed over (empty: no route)."),
        ("tunnel_up", "gauge", "1 when the bond's link monitor (ARP or MII) sees the tunnel up."),
        ("tunnel_active", "gauge", "1 when the bond sends on the tunnel (its slave state is active; in "
         "active-backup only the active slave)."),
        ("tunnel_link_failures_total", "counter", "Times the bond's link monitor marked the tunnel down "
         "(the kernel's link failure count; it restarts when the tunnel is enslaved again)."),
        ("tunnel_transmit_bytes_total", "counter", "Bytes sent on the tunnel (the kernel's counter)."),
        ("tunnel_receive_bytes_total", "counter", "Bytes received on the tunnel (the kernel's counter)."),
        ("tunnel_transmit_packets_total", "counter", "Packets sent on the tunnel (the kernel's counter)."),
        ("tunnel_receive_packets_total", "counter", "Packets received on the tunnel (the kernel's counter)."),
        ("tunnel_wireguard_handshake_timestamp_seconds", "gauge", "Unix time of the latest handshake of the "
         "WireGuard peer that carries the tunnel's path; 0 when there was none."),
        ("tunnel_wireguard_handshake_age_seconds", "gauge", "Seconds since the latest handshake of the "
         "WireGuard peer that carries the tunnel's path, when grebond read it; +Inf when there was none."),
        ("tunnel_path_rtt_seconds", "gauge", "Minimum ICMP echo round trip over the tunnel's underlay path, "
         "from its local to its remote address, where it was measured (status --rtt)."),
    ]
    return {name: Family(PREFIX + name, kind, text) for name, kind, text in specs}


def _monitor_kind(b: BondStatus) -> str:
    return b.monitor.split(" ", 1)[0] if b.present and b.monitor else "-"


def exposition(snap: Snapshot) -> str:
    """The text exposition of ``snap``: every family with HELP and TYPE, series in config order."""
    f = _families()
    f["scrape_success"].add({}, 1)
    f["scrape_duration_seconds"].add({}, round(snap.duration_s, 6))
    for b in snap.bonds:
        key = {"node": b.node, "bond": b.name}
        mode = b.mode or snap.modes.get((b.node, b.name), "")
        f["bond_info"].add({**key, "mode": mode, "monitor": _monitor_kind(b)}, 1)
        f["bond_up"].add(key, 1 if b.present and b.state == "up" else 0)
        f["bond_tunnels_configured"].add(key, len(b.tunnels))
        f["bond_tunnels_up"].add(key, sum(1 for t in b.tunnels if t.up))
        f["bond_shared_path"].add(key, 1 if snap.shared_path.get((b.node, b.name)) else 0)
        f["bond_drift"].add(key, 1 if snap.drift.get((b.node, b.name)) else 0)
        for t in b.tunnels:
            _tunnel(f, snap, {**key, "tunnel": t.name}, t)
    body = [line for fam in f.values() if fam.samples for line in fam.lines()]   # a family without series: no lines
    return "\n".join([header(snap.source, snap.nodes), *body]) + "\n"


def _tunnel(f: dict[str, Family], snap: Snapshot, key: dict[str, str], t: TunnelStatus) -> None:
    f["tunnel_info"].add({**key, "kind": t.kind or "", "local": t.local, "remote": t.remote,
                          "underlay": t.underlay or ""}, 1)
    f["tunnel_up"].add(key, 1 if t.up else 0)
    f["tunnel_active"].add(key, 1 if t.slave_state == "active" else 0)
    if t.slave_state is not None:
        f["tunnel_link_failures_total"].add(key, t.link_failures)
    if t.present:
        f["tunnel_transmit_bytes_total"].add(key, t.tx_bytes)
        f["tunnel_receive_bytes_total"].add(key, t.rx_bytes)
        f["tunnel_transmit_packets_total"].add(key, t.tx_packets)
        f["tunnel_receive_packets_total"].add(key, t.rx_packets)
    if t.handshake is not None:
        f["tunnel_wireguard_handshake_timestamp_seconds"].add(key, t.handshake)
        age = max(0.0, snap.wall - t.handshake) if t.handshake else math.inf
        f["tunnel_wireguard_handshake_age_seconds"].add(key, round(age, 3) if age != math.inf else age)
    if t.rtt_ms is not None:
        f["tunnel_path_rtt_seconds"].add(key, round(t.rtt_ms / 1000, 6))


def failed(source: str, nodes: Iterable[str], duration_s: float) -> str:
    """The exposition of a failed read: success 0 and the time it took, so an alert can fire on it."""
    f = _families()
    f["scrape_success"].add({}, 0)
    f["scrape_duration_seconds"].add({}, round(duration_s, 6))
    return "\n".join([header(source, nodes), *f["scrape_success"].lines(),
                      *f["scrape_duration_seconds"].lines()]) + "\n"
