"""The running kernel's network state as plain frozen values: what the reader produces and the
verifier, status, the path rules and the kernel plan consume.

Pure (no netlink here), so everything that judges the kernel is tested on hand-made states, and a
snapshot can be written to disk and read back (a pending ``grebond try`` keeps the kernel backend's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from ipaddress import ip_address, ip_network
from typing import Any

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


@dataclass(frozen=True)
class TunnelInfo:
    """gretap/ip6gretap parameters as the kernel holds them; keys are None when unset."""

    local: str
    remote: str
    ttl: int
    ikey: int | None
    okey: int | None
    link: int = 0                       # bound underlay ifindex, 0 = none
    encaplimit: int | None = None       # ip6gretap: None = "none" (IGN_ENCAP_LIMIT), else the limit


@dataclass(frozen=True)
class BondInfo:
    """Bond options, normalised to the names the model uses (mode name, validate name...)."""

    mode: str
    miimon: int = 0
    arp_interval: int = 0
    arp_ip_targets: tuple[str, ...] = ()
    ns_ip6_targets: tuple[str, ...] = ()    # the NS monitor's IPv6 targets (IFLA_BOND_NS_IP6_TARGET)
    arp_validate: str = "none"
    arp_missed_max: int | None = None   # IFLA_BOND_MISSED_MAX; None when the kernel has none (< 5.17)
    updelay: int = 0
    downdelay: int = 0
    xmit_hash_policy: str = "layer2"
    min_links: int = 0
    packets_per_slave: int = 1
    lacp_rate: str = "slow"
    primary: str | None = None
    active_slave: str | None = None


@dataclass(frozen=True)
class QdiscInfo:
    """A device's root qdisc: its kind, and for netem the delay (microseconds) and packet limit."""

    kind: str
    delay_us: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class SlaveInfo:
    """A bond port's state as the bond sees it (IFLA_INFO_SLAVE_DATA)."""

    state: str                          # active | backup
    mii_status: str                     # up | fail | down | back, whichever monitor runs (ARP too)
    link_failure_count: int = 0


@dataclass(frozen=True)
class LinkState:
    index: int
    name: str
    kind: str | None                    # IFLA_INFO_KIND: gretap, ip6gretap, bond, wireguard, veth; None for plain
    mtu: int
    mac: str | None
    flags: int
    operstate: str
    carrier: bool
    master: str | None = None
    addresses: tuple[str, ...] = ()     # "10.67.0.1/24", "fd00::1/64" (compressed)
    tunnel: TunnelInfo | None = None
    bond: BondInfo | None = None
    slave: SlaveInfo | None = None
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0                 # IFLA_STATS64 like the bytes: the kernel's counters, never reset by grebond
    tx_packets: int = 0
    features: dict[str, bool] = field(default_factory=dict)   # model.OFFLOADS, read only when asked for
    qdisc: QdiscInfo | None = None      # the root qdisc; None: none (noqueue) or not read

    @property
    def admin_up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def up(self) -> bool:
        """Usable: UP flag and carrier. gretap/wireguard never toggle carrier and report operstate UNKNOWN."""
        return self.admin_up and self.carrier and self.operstate in ("UP", "UNKNOWN")

    @property
    def state(self) -> str:
        return "up" if self.up else ("down" if not self.admin_up else f"no-carrier ({self.operstate.lower()})")


@dataclass(frozen=True)
class Route:
    """Where the kernel would send a packet to ``dst``."""

    dst: str
    oif: str | None
    oif_kind: str | None
    gateway: str | None = None
    prefsrc: str | None = None

    @property
    def wireguard(self) -> bool:
        return self.oif_kind == "wireguard"


@dataclass(frozen=True)
class WireGuardPeer:
    """One peer of a WireGuard device, as the kernel holds it."""

    public_key: str
    allowed_ips: tuple[str, ...]        # "10.65.0.6/32", the destinations WireGuard sends to this peer
    latest_handshake: int               # Unix time (CLOCK_REALTIME) in seconds; 0: never
    endpoint: str | None = None         # "172.30.1.2:51821"
    rx_bytes: int = 0
    tx_bytes: int = 0


def peer_for(peers: Iterable[WireGuardPeer], remote: str) -> WireGuardPeer | None:
    """The peer WireGuard sends ``remote``'s packets to: the longest allowed-ips match (cryptokey routing).

    None when no peer's allowed-ips contain it: WireGuard then drops the packets, so no peer carries the path.
    """
    addr = ip_address(remote)
    best: tuple[int, WireGuardPeer] | None = None
    for peer in peers:
        for net in peer.allowed_ips:
            try:
                network = ip_network(net, strict=False)
            except ValueError:
                continue
            if network.version == addr.version and addr in network and (best is None or network.prefixlen > best[0]):
                best = (network.prefixlen, peer)
    return best[1] if best else None


@dataclass(frozen=True)
class KernelState:
    """A snapshot of the links (by name) and of the routes looked up for tunnel remotes."""

    links: dict[str, LinkState] = field(default_factory=dict)
    routes: dict[str, Route | None] = field(default_factory=dict)   # remote -> route (None: unreachable)
    peers: dict[str, tuple[WireGuardPeer, ...]] = field(default_factory=dict)  # WireGuard device -> its peers, if read

    def link(self, name: str) -> LinkState | None:
        return self.links.get(name)

    def slaves_of(self, bond: str) -> list[LinkState]:
        return [link for link in self.links.values() if link.master == bond]


def state_to_json(state: KernelState) -> dict[str, Any]:
    """A snapshot as JSON-able data (``state_from_json`` reads it back equal)."""
    return asdict(state)


def state_from_json(data: dict[str, Any]) -> KernelState:
    links = {}
    for name, raw in data.get("links", {}).items():
        raw = dict(raw)
        raw["addresses"] = tuple(raw.get("addresses", ()))
        for key, cls in (("tunnel", TunnelInfo), ("bond", BondInfo), ("slave", SlaveInfo), ("qdisc", QdiscInfo)):
            if raw.get(key) is not None:
                value = dict(raw[key])
                if key == "bond":
                    value["arp_ip_targets"] = tuple(value.get("arp_ip_targets", ()))
                    value["ns_ip6_targets"] = tuple(value.get("ns_ip6_targets", ()))
                raw[key] = cls(**value)
        links[name] = LinkState(**raw)
    routes = {dst: (Route(**r) if r is not None else None) for dst, r in data.get("routes", {}).items()}
    return KernelState(links=links, routes=routes)
