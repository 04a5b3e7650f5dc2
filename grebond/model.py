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
MAX_WEIGHT = 8
"""At most 8 keyed copies of one path: a 8:1 rate ratio; beyond that the slow path hardly adds anything."""
WEIGHT_SUFFIXES = "bcdefgh"
"""Copy i (1..7) of tunnel ``gre1`` is ``gre1`` + WEIGHT_SUFFIXES[i - 1]: gre1b, gre1c, ..."""
MAX_DELAY_US = 1_000_000
NETEM_LIMIT = 10_000
"""Packets netem may hold (its default is 1000). A delayed tunnel holds rate x delay in its queue
and drops what does not fit: 10000 packets of 1400 bytes cover 11.8 Gbit/s at 9.5 ms, 112 Mbit/s
at the largest delay (1 s). Every backend renders the same figure, and verify checks it."""
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
    targets: tuple[IPAddress, ...] | None = None
    """What the monitor probes: IPv4 targets by ARP, IPv6 targets by neighbour solicitation (the
    kernel's NS monitor, Linux 5.18). None: the peer end's bond addresses, IPv4 ones; IPv6 ones
    when the bond has no IPv4 address (an IPv6-only link)."""


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
    delay_us: int | None = None
    """One-way delay added on this tunnel's egress, on both ends (a netem root qdisc); None: none.

    Delay equalisation: balance-rr stripes one flow over every tunnel, so a fast path delayed to
    the slow path's round trip delivers in order (docs/performance.md, unequal paths)."""
    copy_of: str | None = None
    """For a copy made by ``weight: N``: the tunnel in the file it copies (same ends, next key)."""

    @property
    def family(self) -> int:
        return self.underlay[0][1].version

    @property
    def path(self) -> str:
        """The tunnel in the file this one comes from: copies made by ``weight`` share its path."""
        return self.copy_of or self.name

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
    delay_us: int | None = None
    copy_of: str | None = None

    @property
    def family(self) -> int:
        return self.local.version

    @property
    def path(self) -> str:
        """The tunnel in the file this one comes from (itself, or the one ``weight`` copied)."""
        return self.copy_of or self.name


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
    ns_targets: tuple[IPv6Address, ...] = ()

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
                      ttl=t.ttl, key=t.key, mtu=link.mtu, encaplimit=t.encaplimit, delay_us=t.delay_us,
                      copy_of=t.copy_of)
            for t in link.tunnels
        )
        arp: tuple[IPv4Address, ...] = ()
        ns: tuple[IPv6Address, ...] = ()
        if link.monitor.type is MonitorType.ARP:
            if link.monitor.targets is not None:
                chosen: tuple[IPAddress, ...] = link.monitor.targets
            else:
                v4 = tuple(a.ip for a in peer.addresses if isinstance(a, IPv4Interface))
                # an IPv6-only link: the NS monitor probes the peer's global IPv6 bond addresses
                chosen = v4 or tuple(a.ip for a in peer.addresses
                                     if isinstance(a, IPv6Interface) and not a.ip.is_link_local)
            arp = tuple(a for a in chosen if isinstance(a, IPv4Address))
            ns = tuple(a for a in chosen if isinstance(a, IPv6Address))
        return cls(link=link, node=node, peer=peer.node, tunnels=tunnels, addresses=link.end(node).addresses,
                   peer_addresses=peer.addresses, arp_targets=arp, ns_targets=ns)


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
        out.update(miimon=0, arp_interval=mon.interval_ms)
        if bond.arp_targets:
            out["arp_ip_target"] = bond.arp_targets
        if bond.ns_targets:
            out["ns_ip6_target"] = bond.ns_targets
        out.update(arp_validate=mon.validate, arp_missed_max=mon.missed_max)
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


def weight_copies(name: str, key: int | None, weight: int) -> list[tuple[str, int | None]]:
    """(name, key) of the ``weight`` tunnels one tunnel of the file stands for, itself first.

    balance-rr gives every slave the same share of packets, so N keyed tunnels over one path give
    that path N shares. Both ends derive the same names and keys from the model: with ``key: K``
    the copies are keyed K+1, K+2, ...; without one the tunnel itself stays unkeyed (adding a
    weight does not recreate it) and its copies take keys 1, 2, ... The kernel tells tunnels with
    the same endpoints apart by key (ip_tunnel_lookup); validation refuses a clash.
    """
    out: list[tuple[str, int | None]] = [(name, key)]
    for i in range(1, weight):
        out.append((name + WEIGHT_SUFFIXES[i - 1], (key + i) if key is not None else i))
    return out


def format_delay(us: int) -> str:
    """9500 -> '9.5ms': how grebond writes a delay everywhere (model, verify, tc, networkd)."""
    return f"{us / 1000:g}ms"


def parse_delay(text: str) -> int | None:
    """'9.5ms' (what ``format_delay`` writes) or '9500us' -> 9500; None when it is neither."""
    value = text.strip()
    for unit, scale in (("us", 1), ("ms", 1000)):
        if value.endswith(unit):
            try:
                return round(float(value[:-2]) * scale)
            except (ValueError, OverflowError):     # not a number, or nan / inf
                return None
    return None


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
