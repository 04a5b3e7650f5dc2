"""Per-tunnel view of each grebond bond: what /proc/net/bonding shows, plus path and traffic share.

Pure over a ``KernelState`` snapshot, like the verifier, so it is testable without a kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from grebond.kernel.state import KernelState, peer_for
from grebond.model import Config
from grebond.paths import assess, observed_paths


@dataclass(frozen=True)
class TunnelStatus:
    name: str
    path: str                       # "10.65.0.2 -> 10.65.0.6 via wg1"
    underlay: str | None
    present: bool
    slave_state: str | None         # active | backup | None (not enslaved)
    monitor_status: str | None      # up | fail | down | back (MII or ARP, whichever runs)
    link_failures: int
    tx_bytes: int
    rx_bytes: int
    tx_share: float                 # of the bond's tunnels' total, 0..1
    rx_share: float
    mtu: int | None
    tx_packets: int = 0
    rx_packets: int = 0
    kind: str | None = None         # gretap | ip6gretap, as the kernel has it
    local: str = ""
    remote: str = ""
    underlay_kind: str | None = None  # the underlay device's kind: wireguard, veth... (None: physical or no route)
    handshake: int | None = None    # latest handshake of the WireGuard peer carrying the path, Unix time, 0 never;
                                    # None: not over WireGuard, or its peers were not read
    rtt_ms: float | None = None     # the path's ICMP echo RTT, when it was measured

    @property
    def up(self) -> bool:
        """Up as the bond's monitor sees it (MII or ARP): enslaved and 'up' (not fail, down or back)."""
        return self.slave_state is not None and self.monitor_status == "up"


@dataclass(frozen=True)
class BondStatus:
    node: str
    name: str
    present: bool
    mode: str | None
    monitor: str | None             # "arp 100ms x2 -> 10.67.0.2" / "mii 100ms" / "none"; None when absent
    state: str
    mtu: int | None
    active_slave: str | None
    tunnels: list[TunnelStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # the path rules' findings: shared paths, no route...


def collect(config: Config, nodes: list[str], state: KernelState,
            rtts: Mapping[tuple[str, str], float | None] | None = None) -> list[BondStatus]:
    """The status of every bond the config gives ``nodes`` (bonds absent here are listed as absent).

    ``rtts``: measured path RTTs in ms by (local, remote), as ``grebond.kernel.echo.echo_rtts`` keys them.
    """
    out = []
    for node in nodes:
        for end in config.bonds_of(node):
            bond = state.link(end.name)
            info = bond.bond if bond is not None else None
            tunnels = [state.link(t.name) for t in end.tunnels]
            tx_total = sum(t.tx_bytes for t in tunnels if t is not None) or 1
            rx_total = sum(t.rx_bytes for t in tunnels if t is not None) or 1
            rows = []
            for t, link in zip(end.tunnels, tunnels):
                route = state.routes.get(str(t.remote))
                dev = route.oif if route is not None else None
                remote = link.tunnel.remote if link is not None and link.tunnel else str(t.remote)
                local = link.tunnel.local if link is not None and link.tunnel else str(t.local)
                slave = link.slave if link is not None and link.master == end.name else None
                peers = state.peers.get(dev) if dev is not None else None
                peer = peer_for(peers, str(t.remote)) if peers is not None else None
                rows.append(TunnelStatus(
                    name=t.name, path=f"{local} -> {remote} via {dev or 'no route'}", underlay=dev,
                    present=link is not None,
                    slave_state=slave.state if slave else None,
                    monitor_status=slave.mii_status if slave else None,
                    link_failures=slave.link_failure_count if slave else 0,
                    tx_bytes=link.tx_bytes if link else 0, rx_bytes=link.rx_bytes if link else 0,
                    tx_share=(link.tx_bytes / tx_total) if link else 0.0,
                    rx_share=(link.rx_bytes / rx_total) if link else 0.0,
                    mtu=link.mtu if link else None,
                    tx_packets=link.tx_packets if link else 0, rx_packets=link.rx_packets if link else 0,
                    kind=link.kind if link else None, local=local, remote=remote,
                    underlay_kind=route.oif_kind if route is not None else None,
                    handshake=(peer.latest_handshake if peer is not None else 0) if peers is not None else None,
                    rtt_ms=(rtts or {}).get((str(t.local), str(t.remote)))))
            out.append(BondStatus(
                node=node, name=end.name, present=bond is not None,
                mode=info.mode if info else None, monitor=_monitor(info), state=bond.state if bond else "absent",
                mtu=bond.mtu if bond else None, active_slave=info.active_slave if info else None, tunnels=rows,
                warnings=[str(f) for f in assess(end, observed_paths(end, state)) if f.level == "warning"]
                if bond is not None else []))
    return out


def _monitor(info: Any) -> str | None:
    if info is None:
        return None
    if info.arp_interval:
        missed = f" x{info.arp_missed_max}" if info.arp_missed_max else ""
        targets = ",".join((*info.arp_ip_targets, *info.ns_ip6_targets))   # ARP probes IPv4, NS IPv6
        return f"arp {info.arp_interval}ms{missed} validate {info.arp_validate} -> {targets}"
    if info.miimon:
        return f"mii {info.miimon}ms"
    return "none (a dead tunnel is never noticed)"


def as_dict(bonds: list[BondStatus]) -> list[dict[str, Any]]:
    return [asdict(b) for b in bonds]


def lines(bonds: list[BondStatus]) -> list[str]:
    out: list[str] = []
    for b in bonds:
        if not b.present:
            out.append(f"{b.name} ({b.node}): absent; run 'grebond apply'")
            continue
        out.append(f"{b.name} ({b.node}): {b.mode}, {b.state}, mtu {b.mtu}, monitor {b.monitor}"
                   + (f", active {b.active_slave}" if b.active_slave else ""))
        out.append(f"  {'tunnel':<10} {'path':<40} {'slave':<8} {'monitor':<8} {'fails':>5} "
                   f"{'tx bytes':>12} {'tx%':>5} {'rx bytes':>12} {'rx%':>5} {'mtu':>5}")
        for t in b.tunnels:
            if not t.present:
                out.append(f"  {t.name:<10} absent")
                continue
            out.append(f"  {t.name:<10} {t.path:<40} {t.slave_state or 'no':<8} {t.monitor_status or '-':<8} "
                       f"{t.link_failures:>5} {t.tx_bytes:>12} {t.tx_share:>5.0%} {t.rx_bytes:>12} "
                       f"{t.rx_share:>5.0%} {t.mtu:>5}" + (f"  rtt {t.rtt_ms:.1f} ms" if t.rtt_ms is not None else ""))
        out += [f"  {w}" for w in b.warnings]
    return out
