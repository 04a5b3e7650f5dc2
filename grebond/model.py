"""The typed model: one link described once for both of its ends.

Built only by ``grebond.validation`` from a checked config; frozen so renderers and backends
can share it freely. ``Config.bonds_of(node)`` gives the view from one router, where each
tunnel's addresses become ``local`` and ``remote``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

DEFAULT_TTL = 255
DEFAULT_UNDERLAY_MTU = 1420           # WireGuard's default device MTU
DEFAULT_MONITOR_INTERVAL_MS = 100
DEFAULT_MISSED_MAX = 2                # the kernel's own default for arp_missed_max
OFFLOADS = {
    "gso": "tx-generic-segmentation",
    "tso": "tx-tcp-segmentation",
    "tso6": "tx-tcp6-segmentation",
    "gro": "rx-gro",
}
"""What ``offloads: on/off`` switches on the bond and its tunnels: ethtool's short name -> the
kernel's feature name. These four are what networkd (GenericSegmentationOffload=,
TCPSegmentationOffload=, TCP6SegmentationOffload=, GenericReceiveOffload=) and NetworkManager
(feature-gso, feature-tso, feature-tx-tcp6-segmentation, feature-gro) can both set."""


class BondMode(str, Enum):
    """Kernel bonding modes; the value is the name the kernel, networkd and NM all use.

    What each mode accepts lives here, once (bond_options.c's unsuppmodes and the option
    descriptions in Documentation/networking/bonding.rst); validation, the renderers, the
    verifier and the kernel backend's rollback all ask the mode.
    """

    BALANCE_RR = "balance-rr"
    ACTIVE_BACKUP = "active-backup"
    BALANCE_XOR = "balance-xor"
    BROADCAST = "broadcast"
    LACP = "802.3ad"
    BALANCE_TLB = "balance-tlb"
    BALANCE_ALB = "balance-alb"

    @property
    def number(self) -> int:
        """IFLA_BOND_MODE value."""
        return list(BondMode).index(self)

    @property
    def allows_arp_monitor(self) -> bool:
        """arp_interval (and the NS monitor) is refused in 802.3ad, tlb and alb."""
        return self not in _MIIMON_MODES

    @property
    def kernel_forces_miimon(self) -> bool:
        """Switching to 802.3ad, tlb or alb makes the kernel set miimon=100 itself (bond_option_mode_set)."""
        return self in _MIIMON_MODES

    @property
    def takes_primary(self) -> bool:
        return self in (BondMode.ACTIVE_BACKUP, BondMode.BALANCE_TLB, BondMode.BALANCE_ALB)

    @property
    def hashes(self) -> bool:
        """Picks a slave per flow by xmit_hash_policy."""
        return self in (BondMode.BALANCE_XOR, BondMode.LACP, BondMode.BALANCE_TLB, BondMode.BALANCE_ALB)

    @property
    def takes_packets_per_slave(self) -> bool:
        return self is BondMode.BALANCE_RR

    @property
    def is_lacp(self) -> bool:
        """lacp_rate and min_links only act in 802.3ad (bond_main.c:bond_set_carrier)."""
        return self is BondMode.LACP

    @property
    def reorders(self) -> bool:
        """Spreads one flow over several slaves, so unequal paths reorder TCP."""
        return self in (BondMode.BALANCE_RR, BondMode.BALANCE_TLB, BondMode.BALANCE_ALB)


_MIIMON_MODES = frozenset({BondMode.LACP, BondMode.BALANCE_TLB, BondMode.BALANCE_ALB})


class MonitorType(str, Enum):
    ARP = "arp"
    MII = "mii"
    NONE = "none"


# IFLA_BOND_ARP_VALIDATE numbering
ARP_VALIDATE = ("none", "active", "backup", "all", "filter", "filter_active", "filter_backup")
# IFLA_BOND_XMIT_HASH_POLICY numbering
XMIT_HASH_POLICIES = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4", "vlan+srcmac")
LACP_RATES = ("slow", "fast")


@dataclass(frozen=True)
class Monitor:
    """How the bond notices a dead tunnel. A gretap never drops carrier, so only ARP works."""

    type: MonitorType = MonitorType.ARP
    interval_ms: int = DEFAULT_MONITOR_INTERVAL_MS
    missed_max: int = DEFAULT_MISSED_MAX
    validate: str = "none"
    targets: tuple[IPv4Address, ...] | None = None   # None: the peer end's IPv4 bond addresses


@dataclass(frozen=True)
class BondOptions:
    """Optional kernel bond options; None means 'leave the kernel default'."""

    xmit_hash_policy: str | None = None
    min_links: int | None = None
    packets_per_slave: int | None = None
    lacp_rate: str | None = None
    primary: str | None = None
    updelay_ms: int | None = None
    downdelay_ms: int | None = None


@dataclass(frozen=True)
class Tunnel:
    """One GRETAP (or ip6gretap) tunnel, i.e. one underlay path, as seen from both ends."""

    name: str
    underlay: tuple[tuple[str, IPAddress], ...]   # (node, that node's underlay address), in file order
    ttl: int = DEFAULT_TTL
    underlay_mtu: int = DEFAULT_UNDERLAY_MTU
    key: int | None = None
    encaplimit: int | None = None             # ip6gretap only; None = "none" (no 8-byte option)

    @property
    def family(self) -> int:
        return self.underlay[0][1].version

    @property
    def kind(self) -> str:
        return "gretap" if self.family == 4 else "ip6gretap"

    def address_of(self, node: str) -> IPAddress:
        return dict(self.underlay)[node]


@dataclass(frozen=True)
class End:
    node: str
    addresses: tuple[IPInterface, ...]


@dataclass(frozen=True)
class Link:
    """A bond between two nodes, carried over one tunnel per path."""

    name: str
    ends: tuple[End, End]
    tunnels: tuple[Tunnel, ...]
    mode: BondMode = BondMode.BALANCE_RR
    mtu: int = 0                              # resolved: explicit, or computed from the tunnels
    mtu_auto: bool = True
    monitor: Monitor = field(default_factory=Monitor)
    options: BondOptions = field(default_factory=BondOptions)
    allow_plaintext_underlay: bool = False
    offloads: bool | None = None
    """GSO, TSO and GRO on the bond and its tunnels: False off, True on, None (``auto``, the
    default) the kernel's choice.

    balance-rr hands each tunnel a whole GSO burst (up to 64 KB) in turn, so one TCP flow arrives
    reordered by dozens of segments; with them off it alternates per packet, at some CPU per
    packet. Why it is not the default, and the figures: docs/performance.md."""

    def end(self, node: str) -> End:
        return next(e for e in self.ends if e.node == node)

    def peer_of(self, node: str) -> End:
        return next(e for e in self.ends if e.node != node)


@dataclass(frozen=True)
class Config:
    links: tuple[Link, ...]
    source: str = "<config>"
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    """Where each key is in the file (``links.bond0.monitor.missed-max`` -> its line), so a problem
    found later (a backend that cannot express a value) can say where to fix it."""

    def line_of(self, path: str) -> int | None:
        """The line of ``path`` or of its nearest enclosing key the file has."""
        lines = dict(self.lines)
        while path:
            if path in lines:
                return lines[path]
            path = path.rpartition(".")[0]
        return None

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node, sorted, so 'render all' is deterministic."""
        return tuple(sorted({e.node for link in self.links for e in link.ends}))

    def bonds_of(self, node: str) -> tuple[LocalBond, ...]:
        """The bonds ``node`` is an end of, seen from that node."""
        return tuple(LocalBond.of(link, node) for link in self.links if node in (e.node for e in link.ends))


@dataclass(frozen=True)
class LocalTunnel:
    """A tunnel from one node's side: what that node's kernel is told."""

    name: str
    kind: str
    local: IPAddress
    remote: IPAddress
    ttl: int
    key: int | None
    mtu: int
    encaplimit: int | None

    @property
    def family(self) -> int:
        return self.local.version


@dataclass(frozen=True)
class LocalBond:
    """A link from one node's side: everything a renderer or backend needs for that router."""

    link: Link
    node: str
    peer: str
    tunnels: tuple[LocalTunnel, ...]
    addresses: tuple[IPInterface, ...]
    peer_addresses: tuple[IPInterface, ...]
    arp_targets: tuple[IPv4Address, ...]

    @property
    def name(self) -> str:
        return self.link.name

    @property
    def mode(self) -> BondMode:
        return self.link.mode

    @property
    def mtu(self) -> int:
        return self.link.mtu

    @property
    def monitor(self) -> Monitor:
        return self.link.monitor

    @property
    def options(self) -> BondOptions:
        return self.link.options

    @property
    def offloads(self) -> bool | None:
        return self.link.offloads

    @property
    def mac(self) -> str:
        """A stable, locally administered MAC for the bond.

        Set before enslaving so the bond's MAC never changes under the peer's ARP cache (a
        changing bond MAC is the likely cause of 'ping works only after the other side pings').
        """
        digest = _sha256(f"grebond/{self.node}/{self.name}".encode())
        return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))

    def uuid(self, ifname: str) -> str:
        """Stable NetworkManager UUID for this node's connection of ``ifname``."""
        import uuid

        return str(uuid.uuid5(uuid.UUID(_UUID_NAMESPACE), f"{self.node}/{self.name}/{ifname}"))

    @classmethod
    def of(cls, link: Link, node: str) -> LocalBond:
        peer = link.peer_of(node)
        tunnels = tuple(
            LocalTunnel(name=t.name, kind=t.kind, local=t.address_of(node), remote=t.address_of(peer.node),
                      ttl=t.ttl, key=t.key, mtu=link.mtu, encaplimit=t.encaplimit)
            for t in link.tunnels
        )
        if link.monitor.type is not MonitorType.ARP:
            targets: tuple[IPv4Address, ...] = ()
        elif link.monitor.targets is not None:
            targets = link.monitor.targets
        else:
            targets = tuple(a.ip for a in peer.addresses if isinstance(a, IPv4Interface))
        return cls(link=link, node=node, peer=peer.node, tunnels=tunnels,
                   addresses=link.end(node).addresses, peer_addresses=peer.addresses, arp_targets=targets)


BondValue = int | str | tuple[IPAddress, ...]
"""A bond option's value: milliseconds and counts as int, names as str, targets as addresses."""


def bond_options(bond: LocalBond) -> dict[str, BondValue]:
    """The bond options the kernel must hold for ``bond``, by the kernel's option names, in the order
    they may be sent (mode first: setting it resets arp_validate; primary needs its slave first).

    The one projection from model to kernel: every renderer translates its names from this, the
    verifier compares the kernel with it, the kernel backend converges to it. It is explicit about
    the monitor the kernel must run: ``miimon 0`` with the ARP monitor (or none), because NetworkManager
    defaults miimon to 100 and the two monitors exclude each other. An option is left out where the
    mode makes the kernel choose (802.3ad, tlb and alb force miimon 100) or ignore it.
    """
    mon, opt, mode = bond.monitor, bond.options, bond.mode
    out: dict[str, BondValue] = {"mode": mode.value}
    if mon.type is MonitorType.ARP:
        out.update(miimon=0, arp_interval=mon.interval_ms, arp_ip_target=bond.arp_targets,
                   arp_validate=mon.validate, arp_missed_max=mon.missed_max)
    elif mon.type is MonitorType.MII:
        out.update(miimon=mon.interval_ms, arp_interval=0)
        if opt.updelay_ms is not None:
            out["updelay"] = opt.updelay_ms
        if opt.downdelay_ms is not None:
            out["downdelay"] = opt.downdelay_ms
    elif not mode.kernel_forces_miimon:
        out.update(miimon=0, arp_interval=0)
    for name, value in (("xmit_hash_policy", opt.xmit_hash_policy), ("min_links", opt.min_links),
                        ("packets_per_slave", opt.packets_per_slave), ("lacp_rate", opt.lacp_rate)):
        if value is not None:
            out[name] = value
    if opt.primary and mode.takes_primary:
        out["primary"] = opt.primary
    return out


_UUID_NAMESPACE = "5c7f3b8e-2f1d-5a3e-9a53-6772656226f6"


def _sha256(data: bytes) -> bytes:
    """SHA-256 without hashlib, whose OpenSSL binding is a measurable part of a cold render (docs/performance.md).

    The builtin module is named ``_sha256`` up to Python 3.11 and ``_sha2`` from 3.12; hashlib
    is the fallback for a Python built without either. The digest is the same from all three.
    """
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]
        except ImportError:
            from hashlib import sha256
    digest: bytes = sha256(data).digest()
    return digest
