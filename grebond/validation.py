"""Check a parsed config and build the model, collecting every problem before raising once.

Each check says what is wrong and what would be right, with the file, line and the path in
the file (``links.bond0.tunnels.gre2.key``). Warnings are for legal but risky choices.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface, ip_address, ip_interface
from pathlib import Path
from typing import Any, Callable, Iterable

from grebond import model, mtu
from grebond.errors import ConfigError, Problem
from grebond.source import LocatedList, LocatedMap, load_file, load_text

SUPPORTED_VERSION = 1
TOP_KEYS = ("version", "links")
LINK_KEYS = ("mode", "ends", "tunnels", "ttl", "underlay-mtu", "mtu", "monitor", "xmit-hash-policy",
             "min-links", "packets-per-slave", "lacp-rate", "primary", "updelay", "downdelay",
             "allow-plaintext-underlay", "offloads")
END_KEYS = ("addresses",)
TUNNEL_KEYS = ("ends", "key", "ttl", "underlay-mtu", "kind", "encaplimit")
MONITOR_KEYS = ("type", "interval", "missed-max", "validate", "targets")

# Interface names the kernel creates itself when the gre/bonding modules load.
RESERVED_NAMES = frozenset({"gre0", "gretap0", "erspan0", "ip6gre0", "ip6tnl0", "ip6gretap0", "lo",
                            "bonding_masters"})
IFNAMSIZ = 16                              # including the terminating NUL
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s)\s*$")
MAX_ARP_TARGETS = 16                        # BOND_MAX_ARP_TARGETS

_MISSING = object()


class _Checker:
    """Collects problems and reads typed values out of Located containers."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        # keys offered as "did you mean": their absence is the same mistake, so it is not reported again
        self.suggested: set[str] = set()

    def missing(self, line: int | None, path: str, fix: str, what: str = "missing") -> None:
        """Report a required key as absent, unless a misspelling of it was already reported."""
        if path not in self.suggested:
            self.add(line, path, what, fix)

    def add(self, line: int | None, path: str, message: str, fix: str = "", warning: bool = False) -> None:
        self.problems.append(Problem(self.file, line, path, message, fix, warning))

    @staticmethod
    def line(container: Any, key: str | None = None) -> int | None:
        if key is not None and isinstance(container, LocatedMap) and key in container.value_lines:
            return container.value_lines[key]
        return getattr(container, "line", None)

    def mapping(self, value: Any, path: str, line: int | None, allowed: tuple[str, ...] | None,
                what: str) -> LocatedMap | None:
        """Check ``value`` is a mapping and has no unknown keys (with a 'did you mean')."""
        if not isinstance(value, LocatedMap):
            fix = (f"write it as '{path.rsplit('.', 1)[-1]}:' followed by indented keys" if path
                   else "start the file with 'version: 1' and a 'links:' mapping (see examples/seed.yaml)")
            self.add(line, path, f"must be a mapping ({what}), not {_describe(value)}", fix)
            return None
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    close = _close_matches(key, allowed, 0.6)
                    fix = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
                    if close:
                        self.suggested.add(_join(path, close[0]))
                    self.add(value.key_lines[key], _join(path, key), f"unknown key '{key}'", fix)
        return value

    def integer(self, m: LocatedMap, key: str, path: str, lo: int, hi: int, default: Any = _MISSING,
                hint: str = "") -> Any:
        if key not in m:
            return default
        value = m[key]
        where = _join(path, key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(self.line(m, key), where, f"must be a whole number, not {_describe(value)}",
                     hint or f"use a number from {lo} to {hi}")
            return None
        if not lo <= value <= hi:
            self.add(self.line(m, key), where, f"{value} is out of range", hint or f"use {lo} to {hi}")
            return None
        return value

    def choice(self, m: LocatedMap, key: str, path: str, choices: tuple[str, ...], default: Any = _MISSING,
               normalise: Callable[[str], str] = lambda s: s, numbered: bool = False) -> Any:
        """One of ``choices``; ``numbered`` choices may be written as the kernel's number by habit."""
        if key not in m:
            return default
        value = m[key]
        where = _join(path, key)
        if not isinstance(value, str) or normalise(value) not in choices:
            shown = f"'{value}'" if isinstance(value, str) else _describe(value)
            close = _close_matches(value, choices, 0.5) if isinstance(value, str) else []
            if close:
                fix = f"did you mean '{close[0]}'?"
            elif numbered and _is_int(value) and 0 <= value < len(choices):
                fix = f"write the name: {value} is '{choices[value]}'"
            else:
                fix = f"use one of: {', '.join(choices)}"
            self.add(self.line(m, key), where, f"{shown} is not a valid value", fix)
            return None
        return normalise(value)

    def duration_ms(self, m: LocatedMap, key: str, path: str, lo_ms: int, hi_ms: int,
                    default: Any = _MISSING) -> Any:
        if key not in m:
            return default
        value = m[key]
        where = _join(path, key)
        match = _DURATION.match(value) if isinstance(value, str) else None
        if not match:
            shown = f"'{value}'" if isinstance(value, str) or _is_int(value) else _describe(value)
            example = f"{value}ms" if _is_int(value) else "100ms"
            self.add(self.line(m, key), where, f"{shown} is not a duration with a unit",
                     f"write it with a unit, like '{example}' (a bare number would be ambiguous: "
                     "networkd reads it as seconds)")
            return None
        ms = int(match.group(1)) * (1000 if match.group(2) == "s" else 1)
        if not lo_ms <= ms <= hi_ms:
            self.add(self.line(m, key), where, f"{value} is out of range", f"use {lo_ms}ms to {hi_ms}ms")
            return None
        return ms

    def boolean(self, m: LocatedMap, key: str, path: str, default: bool) -> bool:
        if key not in m:
            return default
        if not isinstance(m[key], bool):
            self.add(self.line(m, key), _join(path, key), f"must be true or false, not {_describe(m[key])}",
                     "write true or false")
            return default
        return m[key]


def _is_int(value: Any) -> bool:
    """A YAML integer (bool is an int subclass in Python, but never a number in a config)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _close_matches(word: str, choices: Iterable[str], cutoff: float) -> list[str]:
    """The best 'did you mean' for ``word``; difflib is imported only when a mistake needs it."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, LocatedMap):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value}"
    return f"a {type(value).__name__}"


def load_config(path: Path | str) -> tuple[model.Config, list[Problem]]:
    """Read, check and build the model for the file at ``path``; return it with its warnings."""
    return build_config(load_file(Path(path)), str(path))


def parse_config(text: str | bytes, name: str = "<config>") -> tuple[model.Config, list[Problem]]:
    """Like load_config, for text already in memory (tests, stdin)."""
    return build_config(load_text(text, name), name)


def build_config(tree: Any, file: str) -> tuple[model.Config, list[Problem]]:
    """Check the Located tree from ``grebond.source`` and build the model.

    Raises ConfigError listing every error; returns the warnings otherwise.
    """
    c = _Checker(file)
    top = c.mapping(tree, "", getattr(tree, "line", 1), TOP_KEYS, "with 'version' and 'links'")
    links: list[model.Link] = []
    if top is not None:
        if "version" not in top:
            c.missing(top.line, "version", "add 'version: 1' at the top of the file")
        elif not _is_int(top["version"]):
            c.add(c.line(top, "version"), "version", f"must be a number, not {_describe(top['version'])}",
                  f"write 'version: {SUPPORTED_VERSION}'"
                  + (" (without quotes)" if isinstance(top["version"], str) else ""))
        elif top["version"] != SUPPORTED_VERSION:
            c.add(c.line(top, "version"), "version", f"unsupported version {top['version']}",
                  f"this grebond reads version {SUPPORTED_VERSION}; write 'version: {SUPPORTED_VERSION}'")
        raw_links = top.get("links", _MISSING)
        if raw_links is _MISSING:
            c.missing(top.line, "links", "add a 'links:' mapping with one entry per bond")
        elif raw_links is None:
            c.add(c.line(top, "links"), "links", "is empty", "describe at least one bond under 'links:'")
        elif (lm := c.mapping(raw_links, "links", c.line(top, "links"), None, "bond name -> link")) is not None:
            if not lm:
                c.add(lm.line, "links", "is empty", "describe at least one bond under 'links:'")
            for name, raw in lm.items():
                link = _link(c, name, raw, lm)
                if link is not None:
                    links.append(link)
    if not [p for p in c.problems if not p.warning]:
        _check_across_links(c, links, tree)
    errors = [p for p in c.problems if not p.warning]
    if errors:
        raise ConfigError(errors)
    return model.Config(links=tuple(links), source=file), [p for p in c.problems if p.warning]


def _check_ifname(c: _Checker, name: str, line: int | None, path: str, what: str) -> bool:
    size = len(name.encode())
    if not name:
        c.add(line, path, f"the {what} name is empty", "give it a name like 'bond0'")
    elif size >= IFNAMSIZ:
        c.add(line, path, f"the {what} name '{name}' is {size} bytes; Linux allows at most {IFNAMSIZ - 1}",
              f"shorten it, e.g. '{name[:IFNAMSIZ - 1]}'")
    elif any(ch in name for ch in "/:") or any(ch.isspace() for ch in name) or name in (".", ".."):
        c.add(line, path, f"the {what} name '{name}' contains '/', ':' or white space, which Linux forbids",
              "use letters, digits, '-', '_' and '.'")
    elif not _IFNAME.match(name):
        c.add(line, path, f"the {what} name '{name}' has characters that break scripts and unit files",
              "use letters, digits, '-', '_' and '.'")
    elif name in RESERVED_NAMES:
        c.add(line, path, f"'{name}' is created by the kernel itself", f"choose another {what} name")
    else:
        return True
    return False


def _link(c: _Checker, name: str, raw: Any, parent: LocatedMap) -> model.Link | None:
    path = f"links.{name}"
    ok = _check_ifname(c, name, parent.key_lines[name], path, "bond")
    m = c.mapping(raw, path, parent.value_lines[name], LINK_KEYS, "the link's ends, tunnels and options")
    if m is None:
        return None
    errors_before = len([p for p in c.problems if not p.warning])

    mode_name = c.choice(m, "mode", path, tuple(x.value for x in model.BondMode), "balance-rr", numbered=True)
    mode = model.BondMode(mode_name) if mode_name else model.BondMode.BALANCE_RR
    ends = _ends(c, m, path)
    link_ttl = c.integer(m, "ttl", path, 0, 255, model.DEFAULT_TTL, "use 1-255 (255 is the usual; 0 inherits)")
    link_umtu = c.integer(m, "underlay-mtu", path, 576, 65535, model.DEFAULT_UNDERLAY_MTU,
                          "use the MTU of the WireGuard devices the tunnels run over (1420 by default)")
    raw_ends = m.get("ends")
    declared = list(raw_ends) if isinstance(raw_ends, LocatedMap) and len(raw_ends) == 2 else []
    tunnels = _tunnels(c, m, path, declared, link_ttl, link_umtu)
    monitor = _monitor(c, m, path, mode)
    options = _options(c, m, path, mode, monitor, tunnels)
    plaintext = c.boolean(m, "allow-plaintext-underlay", path, False)
    offloads = _offloads(c, m, path)

    # MTU: the smallest tunnel limits the bond; explicit values may only go lower.
    auto_mtu = min((_tunnel_mtu(t) for t in tunnels), default=0)
    mtu_auto = True
    bond_mtu = auto_mtu
    if "mtu" in m and m["mtu"] != "auto":
        value = m["mtu"]
        if isinstance(value, bool) or not isinstance(value, int):
            c.add(c.line(m, "mtu"), f"{path}.mtu", f"must be 'auto' or a number, not {_describe(value)}",
                  "write 'mtu: auto' to compute it from the tunnels")
        elif value > auto_mtu and tunnels:
            c.add(c.line(m, "mtu"), f"{path}.mtu",
                  f"{value} is more than the tunnels can carry ({auto_mtu}); larger packets would be lost",
                  f"use 'mtu: auto' or at most {auto_mtu}, or raise underlay-mtu if the underlay really is larger")
        else:
            bond_mtu, mtu_auto = value, False
    if ends and tunnels:
        has_v6 = any(a.version == 6 for e in ends for a in e.addresses)
        # point at the value to change: the explicit mtu, else the underlay-mtu it came from
        where = c.line(m, "mtu" if "mtu" in m else "underlay-mtu" if "underlay-mtu" in m else None)
        # an explicit value is fixed by raising it; an automatic one only by a larger underlay
        raise_it = "raise underlay-mtu" if mtu_auto else "set 'mtu:' to at least {} or 'auto'"
        if has_v6 and bond_mtu < mtu.MIN_MTU_IPV6:
            c.add(where, f"{path}.mtu", f"the bond MTU {bond_mtu} is below 1280, the minimum for IPv6, "
                  "and the bond has IPv6 addresses",
                  raise_it.format(mtu.MIN_MTU_IPV6) + " or remove the IPv6 addresses")
        elif bond_mtu < mtu.MIN_MTU_IPV4:
            c.add(where, f"{path}.mtu", f"the bond MTU {bond_mtu} is below 576, the minimum for IPv4",
                  raise_it.format(mtu.MIN_MTU_IPV4))

    if not ok or len([p for p in c.problems if not p.warning]) > errors_before or len(ends) != 2 or not tunnels:
        return None
    return model.Link(name=name, ends=(ends[0], ends[1]), tunnels=tuple(tunnels), mode=mode, mtu=bond_mtu,
                      mtu_auto=mtu_auto, monitor=monitor, options=options, allow_plaintext_underlay=plaintext,
                      offloads=offloads)


def _offloads(c: _Checker, m: LocatedMap, path: str) -> bool | None:
    """``offloads``: on/off (YAML reads them as booleans) or auto (the default): the kernel's choice."""
    value = m.get("offloads", "auto")
    if isinstance(value, bool):
        return value
    if value != "auto":
        shown = f"'{value}'" if isinstance(value, str) else _describe(value)
        c.add(c.line(m, "offloads"), f"{path}.offloads", f"{shown} is not auto, on or off",
              "use off (one flow striped per packet in balance-rr), on, or auto (the kernel's choice)")
    return None


def _tunnel_mtu(t: model.Tunnel) -> int:
    return mtu.tunnel_breakdown(t.underlay_mtu, t.family, t.key is not None, t.encaplimit).mtu


def _ends(c: _Checker, m: LocatedMap, path: str) -> list[model.End]:
    where = f"{path}.ends"
    if "ends" not in m:
        c.missing(m.line, where, "add 'ends:' with the two nodes and their bond addresses")
        return []
    em = c.mapping(m["ends"], where, c.line(m, "ends"), None, "node -> {addresses: [...]}")
    if em is None:
        return []
    if len(em) != 2:
        c.add(c.line(m, "ends"), where, f"has {len(em)} node(s); a link has exactly two ends",
              "list the two routers this bond joins")
    ends: list[model.End] = []
    for node, raw in em.items():
        npath = f"{where}.{node}"
        if not _NODE_NAME.match(node):
            c.add(em.key_lines[node], npath, f"'{node}' is not a valid node name",
                  "use letters, digits, '-', '_' and '.', starting with a letter or digit")
            continue
        nm = c.mapping(raw, npath, em.value_lines[node], END_KEYS, "{addresses: [...]}")
        if nm is None:
            continue
        addrs = _addresses(c, nm, npath)
        if addrs is not None:
            ends.append(model.End(node, tuple(addrs)))
    if len(ends) == 2:
        _check_subnets(c, ends, em, where)
    return ends if len(em) == 2 else []


def _addresses(c: _Checker, nm: LocatedMap, npath: str) -> list[model.IPInterface] | None:
    where = f"{npath}.addresses"
    raw = nm.get("addresses")
    if raw is None:
        c.missing(c.line(nm, "addresses"), where, "give the bond's address with prefix, e.g. [10.67.0.1/24]",
                  "missing or empty")
        return None
    if isinstance(raw, str):
        raw_items, lines = [raw], [c.line(nm, "addresses")]
    elif isinstance(raw, LocatedList):
        raw_items, lines = list(raw), raw.item_lines
    else:
        c.add(c.line(nm, "addresses"), where, f"must be a list of addresses, not {_describe(raw)}",
              "write [10.67.0.1/24]")
        return None
    if not raw_items:
        c.add(c.line(nm, "addresses"), where, "is empty", "give at least one address with prefix, e.g. 10.67.0.1/24")
        return None
    out: list[model.IPInterface] = []
    seen: set[Any] = set()
    for i, (item, line) in enumerate(zip(raw_items, lines)):
        ipath = f"{where}[{i}]"
        if not isinstance(item, str):
            c.add(line, ipath, f"must be an address with prefix, not {_describe(item)}", "write it like 10.67.0.1/24")
            continue
        if "/" not in item:
            c.add(line, ipath, f"'{item}' has no prefix length", f"write it with one, e.g. '{item}/24'")
            continue
        try:
            iface = ip_interface(item.strip())
        except ValueError:
            c.add(line, ipath, f"'{item}' is not a valid IP address with prefix", "write it like 10.67.0.1/24 or fd67::1/64")
            continue
        if iface.ip == iface.network.network_address and iface.network.num_addresses > 2:
            c.add(line, ipath, f"'{item}' is the network address of its subnet, not a host address",
                  "use a host address inside the subnet")
            continue
        if iface.ip.is_multicast or iface.ip.is_unspecified or iface.ip.is_loopback:
            c.add(line, ipath, f"'{item}' cannot be a bond address", "use a unicast host address")
            continue
        if iface.ip in seen:
            c.add(line, ipath, f"'{item}' is listed twice", "remove the duplicate")
            continue
        seen.add(iface.ip)
        out.append(iface)
    return out if len(out) == len(raw_items) else None


def _check_subnets(c: _Checker, ends: list[model.End], em: LocatedMap, where: str) -> None:
    a, b = ends
    mismatched: set[int] = set()       # families already reported as in different subnets
    for mine, other in ((a, b), (b, a)):
        for addr in mine.addresses:
            line = em.value_lines.get(mine.node)
            if addr.ip in {x.ip for x in other.addresses}:
                if mine is a:
                    c.add(line, where, f"both ends have the bond address {addr.ip}",
                          f"give {b.node} a different address in {addr.network}")
                continue
            same_family = [x for x in other.addresses if x.version == addr.version]
            if not same_family:
                c.add(line, f"{where}.{mine.node}.addresses",
                      f"{mine.node} has the IPv{addr.version} address {addr} but {other.node} has none",
                      f"give {other.node} an address in {addr.network} too, or remove this one")
            elif not any(x.network == addr.network for x in same_family) and addr.version not in mismatched:
                mismatched.add(addr.version)
                c.add(line, f"{where}.{mine.node}.addresses",
                      f"{mine.node}'s {addr} is not in the same subnet as {other.node}'s "
                      f"{', '.join(str(x) for x in same_family)}",
                      "put both ends' bond addresses in one subnet with the same prefix length")


def _tunnels(c: _Checker, m: LocatedMap, path: str, nodes: list[str], ttl: int | None,
             underlay_mtu: int | None) -> list[model.Tunnel]:
    """The link's tunnels; ``nodes`` are the two ends as declared (empty if 'ends' is itself wrong)."""
    where = f"{path}.tunnels"
    if "tunnels" not in m:
        c.missing(m.line, where, "add 'tunnels:' with one GRETAP tunnel per underlay path")
        return []
    tm = c.mapping(m["tunnels"], where, c.line(m, "tunnels"), None, "tunnel name -> {ends: ...}")
    if tm is None:
        return []
    if not tm:
        c.add(tm.line, where, "is empty", "add one tunnel per underlay path")
        return []
    tunnels: list[model.Tunnel] = []
    for name, raw in tm.items():
        tpath = f"{where}.{name}"
        name_ok = _check_ifname(c, name, tm.key_lines[name], tpath, "tunnel")
        t = c.mapping(raw, tpath, tm.value_lines[name], TUNNEL_KEYS, "{ends: {node: address}, ...}")
        if t is None:
            continue
        before = len(c.problems)
        kind = t.get("kind", "gretap")
        if kind in ("gre", "ip6gre"):
            c.add(c.line(t, "kind"), f"{tpath}.kind",
                  f"'{kind}' is a layer-3 tunnel and cannot be a bond slave (a bond carries Ethernet frames)",
                  f"use '{'gretap' if kind == 'gre' else 'ip6gretap'}' (or leave 'kind' out): "
                  "GRETAP carries Ethernet over GRE")
        elif kind not in ("gretap", "ip6gretap"):
            shown = f"'{kind}'" if isinstance(kind, str) else _describe(kind)
            c.add(c.line(t, "kind"), f"{tpath}.kind", f"{shown} is not a supported tunnel kind",
                  "leave 'kind' out; grebond uses gretap, or ip6gretap for IPv6 underlay addresses")
        addrs = _tunnel_ends(c, t, tpath, nodes)
        key = None
        if "key" in t:
            key = c.integer(t, "key", tpath, 0, 2**32 - 1, None, "use a decimal number from 1 to 4294967295")
            if key == 0:
                c.add(c.line(t, "key"), f"{tpath}.key", "key 0 means 'no key' to the kernel and networkd",
                      "remove 'key', or use 1 to 4294967295")
        tttl = c.integer(t, "ttl", tpath, 0, 255, ttl, "use 1-255 (255 is the usual; 0 inherits)")
        tumtu = c.integer(t, "underlay-mtu", tpath, 576, 65535, underlay_mtu,
                          "use the MTU of the WireGuard device this tunnel runs over")
        encaplimit = None
        if "encaplimit" in t:
            raw_el = t["encaplimit"]
            if addrs and addrs[0][1].version == 4:
                c.add(c.line(t, "encaplimit"), f"{tpath}.encaplimit", "only applies to IPv6 (ip6gretap) tunnels",
                      "remove it")
            elif raw_el == "none":
                encaplimit = None
            else:
                encaplimit = c.integer(t, "encaplimit", tpath, 0, 255, None,
                                       "use 'none' (the default: saves 8 bytes per packet) or 0-255")
        if not name_ok or len(c.problems) > before or not addrs or tttl is None or tumtu is None:
            continue
        if tumtu and addrs[0][1].version == 6 and tumtu < 1280:
            c.add(c.line(t, "underlay-mtu") if "underlay-mtu" in t else c.line(m, "underlay-mtu"),
                  f"{tpath}.underlay-mtu", f"{tumtu} is below 1280, the minimum for an IPv6 underlay",
                  "use the MTU of the WireGuard device (1420 by default)")
            continue
        tunnels.append(model.Tunnel(name=name, underlay=addrs, ttl=tttl, underlay_mtu=tumtu, key=key,
                                    encaplimit=encaplimit))
    return tunnels


def _tunnel_ends(c: _Checker, t: LocatedMap, tpath: str, nodes: list[str]) -> tuple[tuple[str, Any], ...]:
    where = f"{tpath}.ends"
    if "ends" not in t:
        c.missing(t.line, where, "give each end's underlay address: ends: {r1: 10.65.0.1, r2: 10.65.0.2}")
        return ()
    em = c.mapping(t["ends"], where, c.line(t, "ends"), None, "node -> underlay address")
    if em is None:
        return ()
    result: list[tuple[str, Any]] = []
    absent = [n for n in nodes if n not in em]
    for node, raw in em.items():
        if nodes and node not in nodes:
            close = _close_matches(node, absent, 0.5)
            fix = f"did you mean '{close[0]}'?" if close else f"the link's ends are {' and '.join(nodes)}"
            if close:
                c.suggested.add(f"{where}:{close[0]}")
            c.add(em.key_lines[node], f"{where}.{node}", f"'{node}' is not an end of this link", fix)
            continue
        if not isinstance(raw, str):
            c.add(em.value_lines[node], f"{where}.{node}", f"must be an IP address, not {_describe(raw)}",
                  "write the underlay address, e.g. 10.65.0.2")
            continue
        if "/" in raw:
            c.add(em.value_lines[node], f"{where}.{node}", f"'{raw}' has a prefix length",
                  f"give the address alone: '{raw.split('/')[0]}'")
            continue
        try:
            addr = ip_address(raw.strip())
        except ValueError:
            c.add(em.value_lines[node], f"{where}.{node}", f"'{raw}' is not a valid IP address",
                  "write the underlay address, e.g. 10.65.0.2 or fd65::2")
            continue
        if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
            c.add(em.value_lines[node], f"{where}.{node}", f"'{raw}' cannot be a tunnel endpoint",
                  "use the unicast address of the underlay (WireGuard) interface")
            continue
        result.append((node, addr))
    missing = [n for n in nodes if n not in em]
    for node in missing:
        if f"{where}:{node}" not in c.suggested:
            c.add(c.line(t, "ends"), where, f"has no address for {node}",
                  f"add '{node}: <its underlay address>'; every tunnel joins both ends of the link")
    if len(result) == 2:
        (n1, a1), (n2, a2) = result
        if a1.version != a2.version:
            c.add(c.line(t, "ends"), where, f"mixes IPv{a1.version} ({a1}) and IPv{a2.version} ({a2})",
                  "both ends of a tunnel must use the same address family")
            return ()
        if a1 == a2:
            c.add(c.line(t, "ends"), where, f"both ends have the address {a1}", "give each end its own underlay address")
            return ()
    return tuple(result) if len(result) == 2 and not missing else ()


def _monitor(c: _Checker, m: LocatedMap, path: str, mode: model.BondMode) -> model.Monitor:
    where = f"{path}.monitor"
    raw = m.get("monitor", _MISSING)
    if raw is _MISSING:
        mon = model.Monitor()
        mline = m.line
        if not mode.allows_arp_monitor:
            # ARP monitoring is not allowed in this mode: fall back to what the kernel forces
            mon = model.Monitor(type=model.MonitorType.MII)
    else:
        mline = c.line(m, "monitor")
        mm = c.mapping(raw, where, mline, MONITOR_KEYS, "type, interval, missed-max, validate")
        if mm is None:
            return model.Monitor()
        mtype = model.MonitorType(c.choice(mm, "type", where, tuple(t.value for t in model.MonitorType), "arp") or "arp")
        interval = c.duration_ms(mm, "interval", where, 10, 60_000, model.DEFAULT_MONITOR_INTERVAL_MS)
        missed = c.integer(mm, "missed-max", where, 1, 255, model.DEFAULT_MISSED_MAX)
        validate = c.choice(mm, "validate", where, model.ARP_VALIDATE, "none", lambda s: s.replace("-", "_"))
        targets = _targets(c, mm, where)
        for key in ("missed-max", "validate", "targets"):
            if key in mm and mtype is not model.MonitorType.ARP:
                c.add(mm.key_lines[key], f"{where}.{key}", f"only applies to ARP monitoring, not '{mtype.value}'",
                      "remove it, or set 'type: arp'")
        if mtype is model.MonitorType.NONE and "interval" in mm:
            c.add(mm.key_lines["interval"], f"{where}.interval", "has no meaning with 'type: none'", "remove it")
        if mtype is model.MonitorType.ARP and not mode.allows_arp_monitor:
            c.add(c.line(mm, "type") if "type" in mm else mline, f"{where}.type",
                  f"the kernel does not allow ARP monitoring in {mode.value} mode",
                  "use 'type: mii' with this mode, or use balance-rr or active-backup with ARP")
        if mtype is model.MonitorType.ARP and validate in ("all", "active") and mode is model.BondMode.BALANCE_RR:
            c.add(c.line(mm, "validate"), f"{where}.validate",
                  f"'validate: {validate}' in balance-rr drops every slave: ARP replies come back on another "
                  "tunnel than the request left on", "use 'validate: filter' or 'none'")
        mon = model.Monitor(type=mtype, interval_ms=interval or model.DEFAULT_MONITOR_INTERVAL_MS,
                            missed_max=missed or model.DEFAULT_MISSED_MAX, validate=validate or "none",
                            targets=targets)
    if mon.type is model.MonitorType.NONE:
        c.add(mline, where, "no link monitoring: a dead tunnel stays in the bond and takes its share of packets "
              "(about 2/3 lost with 2 tunnels) until the underlay routing heals", "use 'type: arp' (the default)",
              warning=True)
    elif mon.type is model.MonitorType.MII and mode.allows_arp_monitor:
        c.add(mline, where, "MII monitoring watches carrier, and a GRETAP tunnel never drops carrier, so a dead "
              "path is never detected", "use 'type: arp' (the default)", warning=True)
    return mon


def _targets(c: _Checker, mm: LocatedMap, where: str) -> tuple[IPv4Address, ...] | None:
    if "targets" not in mm:
        return None
    raw = mm["targets"]
    tpath = f"{where}.targets"
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        c.add(c.line(mm, "targets"), tpath, f"must be a list of IPv4 addresses, not {_describe(raw)}",
              "leave it out to probe the other end's bond addresses")
        return None
    out: list[IPv4Address] = []
    for item in items:
        try:
            out.append(IPv4Address(str(item).strip()))
        except ValueError:
            c.add(c.line(mm, "targets"), tpath, f"'{item}' is not an IPv4 address",
                  "ARP targets are IPv4 addresses without a prefix (IPv6 NS targets need networkd >= 256)")
    if len(out) > MAX_ARP_TARGETS:
        c.add(c.line(mm, "targets"), tpath, f"has {len(out)} targets; the kernel allows {MAX_ARP_TARGETS}",
              "remove some")
    return tuple(out) if len(out) == len(items) else None


def _options(c: _Checker, m: LocatedMap, path: str, mode: model.BondMode, mon: model.Monitor,
             tunnels: list[model.Tunnel]) -> model.BondOptions:
    M = model.BondMode
    xmit = c.choice(m, "xmit-hash-policy", path, model.XMIT_HASH_POLICIES, None)
    min_links = c.integer(m, "min-links", path, 0, 255, None)
    pps = c.integer(m, "packets-per-slave", path, 0, 65535, None)
    lacp = c.choice(m, "lacp-rate", path, model.LACP_RATES, None)
    updelay = c.duration_ms(m, "updelay", path, 0, 600_000, None)
    downdelay = c.duration_ms(m, "downdelay", path, 0, 600_000, None)
    primary = m.get("primary")
    rules = (
        ("xmit-hash-policy", xmit, (M.BALANCE_XOR, M.LACP, M.BALANCE_TLB, M.BALANCE_ALB)),
        ("min-links", min_links, (M.LACP,)),
        ("packets-per-slave", pps, (M.BALANCE_RR,)),
        ("lacp-rate", lacp, (M.LACP,)),
        ("primary", primary, (M.ACTIVE_BACKUP, M.BALANCE_TLB, M.BALANCE_ALB)),
    )
    for key, value, modes in rules:
        if value is not None and mode not in modes:
            c.add(c.line(m, key), f"{path}.{key}", f"has no effect in {mode.value} mode",
                  f"remove it, or use mode {' or '.join(x.value for x in modes)}")
    for key, value in (("updelay", updelay), ("downdelay", downdelay)):
        if value and mon.type is not model.MonitorType.MII:
            c.add(c.line(m, key), f"{path}.{key}", "only applies to MII monitoring", "remove it")
        elif value and mon.interval_ms and value % mon.interval_ms:
            c.add(c.line(m, key), f"{path}.{key}", f"must be a multiple of the monitor interval ({mon.interval_ms}ms)",
                  f"use {value // mon.interval_ms * mon.interval_ms}ms")
    if primary is not None:
        names = [t.name for t in tunnels]
        if not isinstance(primary, str) or (names and primary not in names):
            close = _close_matches(primary, names, 0.5) if isinstance(primary, str) else []
            shown = f"'{primary}'" if isinstance(primary, str) else _describe(primary)
            c.add(c.line(m, "primary"), f"{path}.primary", f"{shown} is not a tunnel of this link",
                  f"did you mean '{close[0]}'?" if close else f"use one of: {', '.join(names)}")
            primary = None
    if mode in (M.LACP, M.BALANCE_TLB, M.BALANCE_ALB):
        c.add(c.line(m, "mode"), f"{path}.mode",
              f"{mode.value} needs the slaves' link speed, which a GRETAP tunnel does not report, so it may not "
              "spread traffic at all", "use balance-rr (equal paths) or balance-xor (unequal paths)", warning=True)
    elif mode is M.ACTIVE_BACKUP and primary is None:
        c.add(c.line(m, "mode"), f"{path}.mode", "each end elects its active tunnel on its own; if they differ, "
              "frames arriving on the inactive tunnel are dropped", "set 'primary:' to the same tunnel on both ends",
              warning=True)
    return model.BondOptions(xmit_hash_policy=xmit, min_links=min_links, packets_per_slave=pps, lacp_rate=lacp,
                             primary=primary, updelay_ms=updelay, downdelay_ms=downdelay)


def _check_across_links(c: _Checker, links: list[model.Link], tree: LocatedMap) -> None:
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


__all__ = ["load_config", "parse_config", "build_config", "ConfigError", "IPv4Interface", "IPv6Interface"]
