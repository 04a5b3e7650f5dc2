"""NetworkManager profiles for one end: a bond connection and one ip-tunnel port per tunnel.

Two equivalent outputs from one description (``settings``): keyfiles (``.nmconnection``, for
an image or an install hook, loaded when NM starts) and the D-Bus settings ``a{sa{sv}}`` the
backend sends with AddConnection2/Update2, as plain Python: every leaf is a ``(signature,
value)`` pair, e.g. ``{"connection": {"id": ("s", "grebond-bond0")}}``. Only the backend turns
them into dbus-next Variants, so this module stays pure and cheap to import.

Why each choice (details in the reference, section B, and lab-facts.md):
- ``master``/``slave-type``, never ``controller``/``port-type``: NM 1.42 (Debian 12) rejects the
  newer names, and every later version still reads the old ones.
- ``master`` is the bond profile's UUID, not its interface name, so a port can only ever attach to
  grebond's own bond profile.
- Bond options are sent explicitly: NM defaults miimon=100 (the kernel: 0), and an explicit
  non-zero miimon makes NM drop the ARP options. With the ARP monitor we send ``miimon=0``; with
  no monitor too, so NM's kernel state equals networkd's and the kernel backend's.
- ``arp_missed_max`` exists in NM only since 1.44; for an older target a non-default value is
  refused (ConfigError) rather than silently dropped.
- ``encaplimit: none`` on an ip6gretap is the ``ip-tunnel.flags`` bit ip6-ign-encap-limit (0x1,
  the kernel's IP6_TNL_F_IGN_ENCAP_LIMIT), which NM accepts for ip6gre/ip6gretap only from 1.44
  (1.42 answers "some flags are invalid for the select mode", nm-setting-ip-tunnel.c; checked
  with nmcli 1.42.4). Before 1.44 NM would always add the 8-byte encapsulation-limit option, so
  the bond MTU computed for ``none`` would be 8 bytes too big: refused with a ConfigError naming
  1.44; a number (``encaplimit: 4``) works on every version.
- The MAC (``cloned-mac-address``) and MTU are on the bond's ``[ethernet]`` setting; each port
  carries the same MTU in ``ip-tunnel.mtu``: a bond pushes its MTU onto its ports, never the
  reverse, and a bond at 1500 blackholes packets over WireGuard.
- Offloads (``offloads: on|off``; ``auto`` leaves the kernel's) are the ``ethtool`` setting's
  feature-gso/tso/tx-tcp6-segmentation/gro on the bond and on every port; NM sets them each time it
  activates the device (checked with nmcli 1.42.4: accepted on bond and ip-tunnel profiles).
- A tunnel's ``delay`` (a netem qdisc) is refused for every target (1.42 up to NM main after
  1.52): the tc setting accepts kind ``netem`` but none of its parameters, and drops them without
  a word. libnm parses qdisc parameters only for the kinds in ``tc_qdisc_attribute_spec``
  (fq_codel, sfq, tbf; src/libnm-core-impl/nm-utils.c, the same on main) and silently discards
  the rest of any other kind; nmcli 1.42.4 stores ``tc.qdiscs "root netem delay 9ms limit
  10000"`` as ``qdisc.root=netem``. Such a profile would carry no delay, and the bond would
  reorder as if none were modelled. Use the networkd, kernel or iproute2 backend.
- Ownership: the keyfile starts with grebond's generated header, AND every profile carries the
  user-data key ``net.grebond.generated``. NM rewrites a keyfile without comments when a profile
  changes over D-Bus; the user key survives, so such profiles stay recognisable as grebond's.
"""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

from grebond.errors import ConfigError, Problem
from grebond.generated import header_lines
from grebond.model import DEFAULT_MISSED_MAX, LocalBond, LocalTunnel, MonitorType, bond_options
from grebond.renderer import RenderedFile, Rendering
from grebond.renderer.ini import Section, render_ini

DEFAULT_TARGET_NM = "1.42"
"""Debian 12's NetworkManager (1.42.4): the target when none is given and none is running."""
ARP_MISSED_MAX_SINCE = (1, 44)
NS_IP6_TARGET_SINCE = (1, 44)         # bond option ns_ip6_target (NM NEWS 1.44)
IP6_TUNNEL_FLAGS_SINCE = (1, 44)      # ip-tunnel.flags on ip6gre/ip6gretap (NM commit a239317a6b)
IP6_IGN_ENCAP_LIMIT = 0x1             # NM_IP_TUNNEL_FLAG_IP6_IGN_ENCAP_LIMIT == IP6_TNL_F_IGN_ENCAP_LIMIT
ETHTOOL_FEATURES_SINCE = (1, 14)      # the ethtool setting and its feature-* keys (nm-setting-ethtool.h, 2018)
KEYFILE_DIR = "/etc/NetworkManager/system-connections"
KEYFILE_MODE = 0o600                  # NM ignores keyfiles readable by group or others
CONNECTION_PREFIX = "grebond-"
"""Connection ids and keyfile names start with this; NM names a to-disk profile's file after its id."""
USER_KEY = "net.grebond.generated"
"""NM user-data key (needs a dot, like a DNS name: nm_setting_user_check_key) that marks grebond's profiles."""
IP_TUNNEL_MODE = {"gretap": 10, "ip6gretap": 11}   # NMIPTunnelMode

Plain = dict[str, dict[str, tuple[str, Any]]]
"""D-Bus settings a{sa{sv}} as plain Python: setting -> key -> (signature, value)."""
ETHTOOL_OFFLOAD_KEYS = ("feature-gso", "feature-tso", "feature-tx-tcp6-segmentation", "feature-gro")
"""NM's names for ``grebond.model.OFFLOADS`` (gso, tso, tso6, gro), in that order."""


def parse_version(text: str) -> tuple[int, int]:
    """'1.42.4' -> (1, 42); a version NM reports or a user types."""
    parts = text.strip().split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ValueError(f"'{text}' is not a NetworkManager version like 1.42") from None


def connection_id(ifname: str) -> str:
    return f"{CONNECTION_PREFIX}{ifname}"


def keyfile_name(ifname: str) -> str:
    return f"{connection_id(ifname)}.nmconnection"


def user_value(end: LocalBond) -> str:
    """What the user-data marker says: which end of which link the profile belongs to."""
    return f"node={end.node} link={end.name}"


# ----------------------------------------------------------------------------- checks

def check(ends: tuple[LocalBond, ...], source: str, target_nm: str) -> list[Problem]:
    """Every option of ``ends`` that NetworkManager ``target_nm`` cannot express."""
    version = parse_version(target_nm)
    problems: list[Problem] = []
    for end in ends:
        base = f"links.{end.name}"
        mon = end.monitor
        if (mon.type is MonitorType.ARP and mon.missed_max != DEFAULT_MISSED_MAX
                and version < ARP_MISSED_MAX_SINCE):
            since = ".".join(map(str, ARP_MISSED_MAX_SINCE))
            problems.append(Problem(
                source, None, f"{base}.monitor.missed-max",
                f"{mon.missed_max} needs the bond option arp_missed_max, which NetworkManager has only since "
                f"{since} (target: {target_nm})",
                f"remove missed-max (the kernel default {DEFAULT_MISSED_MAX} needs no setting), use "
                f"--target-nm {since} or later, or use the kernel or networkd backend"))
        if end.ns_targets and version < NS_IP6_TARGET_SINCE:
            since = ".".join(map(str, NS_IP6_TARGET_SINCE))
            problems.append(Problem(
                source, None, f"{base}.monitor",
                f"probing {', '.join(map(str, end.ns_targets))} needs the bond option ns_ip6_target (the NS monitor), "
                f"which NetworkManager has only since {since} (target: {target_nm})",
                f"use --target-nm {since} or later, the kernel backend, or IPv4 bond addresses for the ARP monitor"))
        if end.offloads is not None and version < ETHTOOL_FEATURES_SINCE:
            since = ".".join(map(str, ETHTOOL_FEATURES_SINCE))
            problems.append(Problem(
                source, None, f"{base}.offloads",
                f"needs the ethtool setting, which NetworkManager has only since {since} (target: {target_nm})",
                f"use --target-nm {since} or later, or the kernel or networkd backend"))
        delayed = [t for t in end.tunnels if t.delay_us and t.copy_of is None]
        for t in delayed:
            problems.append(Problem(
                source, None, f"{base}.tunnels.{t.name}.delay",
                f"NetworkManager (target {target_nm}) cannot set a netem delay: its tc setting drops netem's "
                "parameters (1.42 to 1.52 at least)",
                "use the networkd, kernel or iproute2 backend for this link, or remove delay"))
        for t in end.tunnels:
            if t.kind == "ip6gretap" and t.encaplimit is None and version < IP6_TUNNEL_FLAGS_SINCE:
                since = ".".join(map(str, IP6_TUNNEL_FLAGS_SINCE))
                problems.append(Problem(
                    source, None, f"{base}.tunnels.{t.name}.encaplimit",
                    f"none needs the ip6-ign-encap-limit flag on an ip6gretap, which NetworkManager accepts only "
                    f"since {since} (target: {target_nm}); without it every packet carries the 8-byte "
                    "encapsulation-limit option",
                    f"use --target-nm {since} or later, set encaplimit: 4 (the kernel default; mtu auto then "
                    "accounts for the option), or use the networkd or kernel backend"))
    return problems


# ----------------------------------------------------------------------------- settings

def nm_bond_options(end: LocalBond, target_nm: str) -> dict[str, str]:
    """``model.bond_options`` as NM's bond.options (all strings), sorted as NM writes them.

    ``miimon=0`` stays explicit: NM's own default is 100, and a non-zero miimon makes NM drop
    the arp_* options. ``arp_interval=0`` is NM's default and is left out.
    """
    out: dict[str, str] = {}
    for name, value in bond_options(end).items():
        if name == "arp_interval" and value == 0:
            continue
        if name == "arp_missed_max" and parse_version(target_nm) < ARP_MISSED_MAX_SINCE:
            continue    # check() refused a non-default value for this target
        if name == "ns_ip6_target" and parse_version(target_nm) < NS_IP6_TARGET_SINCE:
            continue    # check() refused it for this target
        out[name] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return dict(sorted(out.items()))


def _ip_settings(addresses: tuple[Any, ...], family: int) -> dict[str, tuple[str, Any]]:
    mine = [a for a in addresses if (isinstance(a, IPv4Interface) if family == 4 else isinstance(a, IPv6Interface))]
    if not mine:
        return {"method": ("s", "disabled")}
    return {"method": ("s", "manual"),
            "address-data": ("aa{sv}", [{"address": ("s", str(a.ip)), "prefix": ("u", a.network.prefixlen)}
                                        for a in mine])}


def _ethtool(end: LocalBond) -> Plain:
    """The ``ethtool`` setting when the model sets offloads, else nothing (the kernel's)."""
    if end.offloads is None:
        return {}
    return {"ethtool": dict.fromkeys(ETHTOOL_OFFLOAD_KEYS, ("b", end.offloads))}


def bond_settings(end: LocalBond, target_nm: str = DEFAULT_TARGET_NM) -> Plain:
    """The bond profile: addresses, MAC and MTU live here; activating it activates its ports."""
    return {
        "connection": {"id": ("s", connection_id(end.name)), "uuid": ("s", end.uuid(end.name)),
                       "type": ("s", "bond"), "interface-name": ("s", end.name),
                       "autoconnect": ("b", True),
                       "autoconnect-slaves": ("i", 1)},
        "802-3-ethernet": {"assigned-mac-address": ("s", end.mac), "mtu": ("u", end.mtu)},
        "bond": {"options": ("a{ss}", nm_bond_options(end, target_nm))},
        "ipv4": _ip_settings(end.addresses, 4),
        "ipv6": _ip_settings(end.addresses, 6),
        **_ethtool(end),
        "user": {"data": ("a{ss}", {USER_KEY: user_value(end)})},
    }


def port_settings(end: LocalBond, t: LocalTunnel, target_nm: str = DEFAULT_TARGET_NM) -> Plain:
    """One ip-tunnel port, unbound (no parent), like networkd's Independent=yes."""
    tunnel: dict[str, tuple[str, Any]] = {"mode": ("u", IP_TUNNEL_MODE[t.kind]), "local": ("s", str(t.local)),
                                          "remote": ("s", str(t.remote)), "ttl": ("u", t.ttl)}
    if t.key is not None:
        tunnel["input-key"] = ("s", str(t.key))     # NM takes keys as decimal strings only
        tunnel["output-key"] = ("s", str(t.key))
    if t.kind == "ip6gretap" and t.encaplimit is not None:
        tunnel["encapsulation-limit"] = ("u", t.encaplimit)
    elif t.kind == "ip6gretap" and parse_version(target_nm) >= IP6_TUNNEL_FLAGS_SINCE:
        tunnel["flags"] = ("u", IP6_IGN_ENCAP_LIMIT)       # encaplimit none: check() refused it before 1.44
    tunnel["mtu"] = ("u", t.mtu)
    return {
        "connection": {"id": ("s", connection_id(t.name)), "uuid": ("s", end.uuid(t.name)),
                       "type": ("s", "ip-tunnel"), "interface-name": ("s", t.name),
                       "master": ("s", end.uuid(end.name)), "slave-type": ("s", "bond"),
                       "autoconnect": ("b", True)},
        "ip-tunnel": tunnel,
        # The bond's MAC on every port too: when NM enslaves a port before it has set the bond's
        # own MAC (seen when autoconnecting at start-up on 1.42), bonding gives a bond whose MAC
        # is still random the first port's MAC (bond_main.c:bond_enslave). Either order then ends
        # with the modelled MAC; ports take the bond's MAC once enslaved anyway (fail_over_mac none).
        "802-3-ethernet": {"assigned-mac-address": ("s", end.mac)},
        **_ethtool(end),
        "user": {"data": ("a{ss}", {USER_KEY: user_value(end)})},
    }


def settings(ends: tuple[LocalBond, ...], source: str, node: str,
             target_nm: str = DEFAULT_TARGET_NM) -> dict[str, Plain]:
    """Every profile of ``node`` by UUID, ports of a bond before the bond; ConfigError if inexpressible.

    The library call for the D-Bus backend (and anyone else driving NM).
    """
    problems = check(ends, source, target_nm)
    if problems:
        raise ConfigError(problems)
    out: dict[str, Plain] = {}
    for end in ends:
        for t in end.tunnels:
            out[end.uuid(t.name)] = port_settings(end, t, target_nm)
        out[end.uuid(end.name)] = bond_settings(end, target_nm)
    return out


# ----------------------------------------------------------------------------- keyfiles

_KEYFILE_GROUP = {"802-3-ethernet": "ethernet"}     # the keyfile alias NM itself writes
_KEYFILE_KEY = {("802-3-ethernet", "assigned-mac-address"): "cloned-mac-address"}


def _keyfile_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def keyfile_sections(plain: Plain) -> list[Section]:
    """The keyfile form of one profile's settings (same content, keyfile syntax)."""
    sections: list[Section] = []
    for setting, keys in plain.items():
        items: list[tuple[str, Any]] = []
        for key, (_sig, value) in keys.items():
            if setting == "bond" and key == "options":
                items += list(value.items())                   # bond options are plain keys
            elif setting == "user" and key == "data":
                items += sorted(value.items())                 # user data: the keys themselves
            elif key == "address-data":
                items += [(f"address{i}", f"{a['address'][1]}/{a['prefix'][1]}") for i, a in enumerate(value, 1)]
            else:
                items.append((_KEYFILE_KEY.get((setting, key), key), _keyfile_value(value)))
        sections.append((_KEYFILE_GROUP.get(setting, setting), items))
    return sections


def render(ends: tuple[LocalBond, ...], source: str, node: str, target_nm: str = DEFAULT_TARGET_NM) -> Rendering:
    """Keyfiles for ``node`` (mode 0600), sorted by name: the same profiles ``settings()`` gives for D-Bus."""
    plain = settings(ends, source, node, target_nm)
    head = header_lines(source, node)
    files = [RenderedFile(keyfile_name(p["connection"]["interface-name"][1]), render_ini(keyfile_sections(p), head),
                          KEYFILE_MODE)
             for p in plain.values()]
    files.sort(key=lambda f: f.name)
    return Rendering(backend="networkmanager", node=node, files=tuple(files))
