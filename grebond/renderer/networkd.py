"""systemd-networkd files for one end: a .netdev per tunnel and for the bond, a .network per link.

Why each choice (details in the reference, section A):
- Time values carry units (``100ms``): networkd reads a bare number as *seconds*.
- ``[Tunnel] Independent=yes``: the gretap is created unbound, so the WireGuard underlay's own
  .network (owned by the user, wg-quick or NetworkManager) needs no ``Tunnel=`` line and is
  never touched.
- ``MTUBytes=`` on the bond and every tunnel: a bond left at 1500 raises its gretaps to 1500
  and blackholes packets between the real limit and 1500.
- ``MACAddress=`` on the bond: fixed before the first slave, so the peer's ARP cache never goes
  stale when the first slave changes.
- Options the target systemd cannot express are refused (ConfigError) unless the value is the
  kernel's default anyway: a file that silently drops an option is worse than no file.
- Offloads (``offloads: on|off``; ``auto`` writes none) go in a ``.link`` file per device:
  networkd has no key for them, udev applies .link files when a device appears (so at boot, and
  whenever networkd recreates one). It replaces 99-default.link for that device, which only
  names physical NICs and randomises nothing grebond relies on (the bond's MAC is in its .netdev).
- The NS monitor's targets (an IPv6-only bond) have no key in any networkd release: a grebond
  udev rule sets them whenever the bond is created (networkd_ns.py), a file for udev's directory.
- A tunnel's ``delay`` is ``[NetworkEmulator]`` in its .network (a netem root qdisc, ``DelaySec=``
  with ``PacketLimit=`` as ``model.NETEM_LIMIT``); networkd sets it whenever it configures the
  tunnel, enslaved or not.

Every file name starts with ``FILE_PREFIX``; together with the generated-by header that marks
the files grebond may replace or delete.
"""

from __future__ import annotations

from ipaddress import IPv6Interface

from grebond.errors import ConfigError, Problem
from grebond.generated import header_lines
from grebond.model import (
    DEFAULT_MISSED_MAX,
    NETEM_LIMIT,
    LocalBond,
    LocalTunnel,
    MonitorType,
    bond_options,
    format_delay,
)
from grebond.renderer import RenderedFile, Rendering
from grebond.renderer.ini import Section, render_ini
from grebond.renderer.networkd_ns import ARP_MISSED_MAX_SINCE, udev_rule

FILE_PREFIX = "40-grebond-"
"""Below 70 as systemd.netdev(5) asks; the name marks the file as grebond's."""

LINK_MATCH_KIND_SINCE = 251         # [Match] Kind= in .link files (systemd NEWS, 251)
TCP6_OFFLOAD_SINCE = 235            # TCP6SegmentationOffload= in .link files (NEWS, 235); the rest 232
NETWORK_EMULATOR_SINCE = 245        # [NetworkEmulator] DelaySec=/PacketLimit=; 243-244 named it differently
NETWORKD_ARP_VALIDATE = ("none", "active", "backup", "all")
"""The values systemd's bond_arp_validate_table knows (src/shared/bond-util.c, checked on main):
the kernel's filter, filter_active and filter_backup are not offered by any release."""
NETWORKD_XMIT_HASH = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4")
KERNEL_ENCAP_LIMIT = 4
"""The kernel's default ip6gretap encapsulation limit. networkd 252's ip6gre code sends only the
IGN_ENCAP_LIMIT flag (for ``none``), never a number, so only ``none`` and 4 come out as written."""

BOND_NETWORK_COMMENT = (
    "ConfigureWithoutCarrier=yes: the bond has carrier only once the ARP monitor hears the peer, which",
    "needs this end's address on the bond first; waiting for carrier would deadlock.",
    "RequiredForOnline=no: a tunnel whose path is down must not hold up boot (network-online.target).",
)


LINK_OFFLOAD_KEYS = ("GenericSegmentationOffload", "TCPSegmentationOffload", "TCP6SegmentationOffload",
                     "GenericReceiveOffload")
"""The .link keys for ``grebond.model.OFFLOADS`` (gso, tso, tso6, gro), in that order."""


def file_names(ifname: str) -> tuple[str, str]:
    """The .netdev and .network names for one interface."""
    return f"{FILE_PREFIX}{ifname}.netdev", f"{FILE_PREFIX}{ifname}.network"


def link_file_name(ifname: str) -> str:
    """The .link name for one interface (same prefix: udev reads the same directory)."""
    return f"{FILE_PREFIX}{ifname}.link"


def ms(value: int) -> str:
    """A networkd time span in milliseconds, with its unit (a bare number would be seconds)."""
    return f"{value}ms"


def check(ends: tuple[LocalBond, ...], source: str, target_systemd: int) -> list[Problem]:
    """Every option of ``ends`` that networkd ``target_systemd`` cannot express (kernel defaults pass)."""
    problems: list[Problem] = []
    for end in ends:
        base = f"links.{end.name}"
        mon = end.monitor
        if mon.type is MonitorType.ARP:
            # an NS monitor's udev rule sets arp_missed_max too where networkd cannot
            if mon.missed_max != DEFAULT_MISSED_MAX and target_systemd < ARP_MISSED_MAX_SINCE and not end.ns_targets:
                problems.append(Problem(
                    source, None, f"{base}.monitor.missed-max",
                    f"{mon.missed_max} needs ARPMissedMax=, which systemd-networkd has only since "
                    f"{ARP_MISSED_MAX_SINCE} (target: {target_systemd})",
                    f"remove missed-max (the kernel default {DEFAULT_MISSED_MAX} needs no setting), use "
                    f"--target-systemd {ARP_MISSED_MAX_SINCE} or later, or use the kernel or networkmanager backend"))
            if mon.validate not in NETWORKD_ARP_VALIDATE:
                problems.append(Problem(
                    source, None, f"{base}.monitor.validate",
                    f"'{mon.validate}' cannot be written for systemd-networkd: ARPValidate= accepts only "
                    f"{', '.join(NETWORKD_ARP_VALIDATE)}",
                    "use validate: none, or the kernel backend, which sets arp_validate over netlink"))
        if end.offloads is not None and target_systemd < TCP6_OFFLOAD_SINCE:
            problems.append(Problem(
                source, None, f"{base}.offloads",
                f"TCP6SegmentationOffload= needs systemd {TCP6_OFFLOAD_SINCE} or later (target: {target_systemd})",
                "use --target-systemd with the real version, or the kernel backend"))
        xmit = end.options.xmit_hash_policy
        if xmit is not None and xmit not in NETWORKD_XMIT_HASH:
            problems.append(Problem(
                source, None, f"{base}.xmit-hash-policy",
                f"'{xmit}' is not a TransmitHashPolicy= systemd-networkd accepts "
                f"({', '.join(NETWORKD_XMIT_HASH)})",
                "choose one of those, or use the kernel backend"))
        for t in end.tunnels:
            if t.kind == "ip6gretap" and t.encaplimit not in (None, KERNEL_ENCAP_LIMIT):
                problems.append(Problem(
                    source, None, f"{base}.tunnels.{t.name}.encaplimit",
                    f"{t.encaplimit}: systemd-networkd sends no encapsulation limit for ip6gretap, so the "
                    f"kernel would keep its default {KERNEL_ENCAP_LIMIT}",
                    f"use none (the default) or {KERNEL_ENCAP_LIMIT}, or the kernel backend"))
            if t.delay_us and t.copy_of is None and target_systemd < NETWORK_EMULATOR_SINCE:
                problems.append(Problem(
                    source, None, f"{base}.tunnels.{t.name}.delay",
                    f"needs the [NetworkEmulator] section, which systemd-networkd has only since "
                    f"{NETWORK_EMULATOR_SINCE} (target: {target_systemd})",
                    f"use --target-systemd {NETWORK_EMULATOR_SINCE} or later, or the kernel backend"))
    return problems


def tunnel_netdev(t: LocalTunnel) -> list[Section]:
    tunnel: list[tuple[str, object]] = [("Local", str(t.local)), ("Remote", str(t.remote)), ("TTL", t.ttl)]
    if t.key is not None:
        tunnel.append(("Key", t.key))
    if t.kind == "ip6gretap":
        tunnel.append(("EncapsulationLimit", "none" if t.encaplimit is None else t.encaplimit))
    # unbound (gretap@NONE): the underlay's .network stays the user's and needs no Tunnel= line
    tunnel.append(("Independent", "yes"))
    return [("NetDev", [("Name", t.name), ("Kind", t.kind), ("MTUBytes", t.mtu)]),
            ("Tunnel", tunnel)]  # type: ignore[list-item]


NETWORKD_BOND_KEYS = {
    "mode": "Mode", "miimon": "MIIMonitorSec", "arp_interval": "ARPIntervalSec", "arp_ip_target": "ARPIPTargets",
    "arp_validate": "ARPValidate", "arp_missed_max": "ARPMissedMax", "updelay": "UpDelaySec",
    "downdelay": "DownDelaySec", "xmit_hash_policy": "TransmitHashPolicy", "min_links": "MinLinks",
    "packets_per_slave": "PacketsPerSlave", "lacp_rate": "LACPTransmitRate",
}
"""[Bond] keys for ``model.bond_options`` names (primary is PrimarySlave= in the tunnel's .network)."""
_TIMESPANS = ("miimon", "arp_interval", "updelay", "downdelay")


def bond_netdev(end: LocalBond, target_systemd: int) -> list[Section]:
    bond: list[tuple[str, object]] = []
    for name, value in bond_options(end).items():
        if name == "primary" or (name in ("miimon", "arp_interval") and value == 0):
            continue    # 0 is the kernel default, and networkd sends nothing for an unset monitor
        if name == "arp_missed_max" and target_systemd < ARP_MISSED_MAX_SINCE:
            continue    # check() refused a non-default value for this target, or the udev rule sets it
        if name == "ns_ip6_target":
            continue    # no [Bond] key in any systemd release: the udev rule sets it
        if name in _TIMESPANS:
            assert isinstance(value, int)
            value = ms(value)
        elif isinstance(value, tuple):
            value = " ".join(map(str, value))
        bond.append((NETWORKD_BOND_KEYS[name], value))
    return [("NetDev", [("Name", end.name), ("Kind", "bond"), ("MACAddress", end.mac), ("MTUBytes", end.mtu)]),
            ("Bond", bond)]  # type: ignore[list-item]


def offload_link(ifname: str, kind: str, on: bool, target_systemd: int) -> list[Section]:
    """udev's settings for one of grebond's devices: its offloads on or off (matched by kind too
    where udev knows Kind=, so a physical NIC that happens to have the name never matches)."""
    value = "true" if on else "false"
    match = [("OriginalName", ifname)] + ([("Kind", kind)] if target_systemd >= LINK_MATCH_KIND_SINCE else [])
    return [("Match", match),
            ("Link", [(key, value) for key in LINK_OFFLOAD_KEYS])]


def slave_network(end: LocalBond, t: LocalTunnel) -> list[Section]:
    network: list[tuple[str, object]] = [("Bond", end.name)]
    if bond_options(end).get("primary") == t.name:
        # both ends must agree on the active slave, or frames arrive on the peer's inactive one
        network.append(("PrimarySlave", "yes"))
    sections: list[Section] = [("Match", [("Name", t.name)]), ("Link", [("RequiredForOnline", "no")]),
                               ("Network", network)]  # type: ignore[list-item]
    if t.delay_us:
        sections.append(("NetworkEmulator", [("DelaySec", format_delay(t.delay_us)), ("PacketLimit", NETEM_LIMIT)]))
    return sections


def bond_network(end: LocalBond) -> list[Section]:
    # IPv6 on the bond needs a link-local address (NDP, OSPFv3); an IPv4-only bond gets none.
    has_v6 = any(isinstance(a, IPv6Interface) for a in end.addresses)
    network: list[tuple[str, object]] = [("Address", [str(a) for a in end.addresses])] if end.addresses else []
    network += [("LinkLocalAddressing", "ipv6" if has_v6 else "no"), ("ConfigureWithoutCarrier", "yes")]
    if end.ns_targets:
        # the NS monitor gives the bond carrier only once it hears the peer, and DAD keeps an IPv6
        # address tentative until the link has carrier: the same deadlock as waiting for carrier
        # (the kernel and iproute2 backends add these addresses with nodad)
        network.append(("IPv6DuplicateAddressDetection", 0))
    return [("Match", [("Name", end.name)]), ("Link", [("RequiredForOnline", "no")]),
            ("Network", network)]  # type: ignore[list-item]


def render(ends: tuple[LocalBond, ...], source: str, node: str, target_systemd: int = 252) -> Rendering:
    """All files for ``node``, sorted by name; ConfigError lists every option the target cannot express."""
    problems = check(ends, source, target_systemd)
    if problems:
        raise ConfigError(problems)
    head = header_lines(source, node)
    files: list[RenderedFile] = []
    for end in ends:
        for t in end.tunnels:
            netdev, network = file_names(t.name)
            files.append(RenderedFile(netdev, render_ini(tunnel_netdev(t), head)))
            files.append(RenderedFile(network, render_ini(slave_network(end, t), head)))
            if end.offloads is not None:
                link = offload_link(t.name, t.kind, end.offloads, target_systemd)
                files.append(RenderedFile(link_file_name(t.name), render_ini(link, head)))
        if end.offloads is not None:
            link = offload_link(end.name, "bond", end.offloads, target_systemd)
            files.append(RenderedFile(link_file_name(end.name), render_ini(link, head)))
        netdev, network = file_names(end.name)
        files.append(RenderedFile(netdev, render_ini(bond_netdev(end, target_systemd), head)))
        files.append(RenderedFile(network, render_ini(bond_network(end), [*head, *BOND_NETWORK_COMMENT])))
        rule = udev_rule(end, source, node, target_systemd)
        if rule is not None:
            files.append(rule)
    files.sort(key=lambda f: f.name)
    return Rendering(backend="networkd", node=node, files=tuple(files))
