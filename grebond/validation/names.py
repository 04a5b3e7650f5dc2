"""Names the kernel accepts for interfaces and nodes, and the keys each section of the file allows."""

from __future__ import annotations

import re

from grebond.validation.reader import Checker

SUPPORTED_VERSION = 1
TOP_KEYS = ("version", "links")
LINK_KEYS = ("mode", "ends", "tunnels", "ttl", "underlay-mtu", "mtu", "monitor", "xmit-hash-policy",
             "min-links", "packets-per-slave", "lacp-rate", "primary", "updelay", "downdelay",
             "allow-plaintext-underlay", "offloads", "encaplimit")
END_KEYS = ("addresses",)
TUNNEL_KEYS = ("ends", "key", "ttl", "underlay-mtu", "kind", "encaplimit", "weight", "delay")
MONITOR_KEYS = ("type", "interval", "missed-max", "validate", "targets")

# Interface names the kernel creates itself when the gre/bonding modules load.
RESERVED_NAMES = frozenset({"gre0", "gretap0", "erspan0", "ip6gre0", "ip6tnl0", "ip6gretap0", "lo",
                            "bonding_masters"})
IFNAMSIZ = 16                              # including the terminating NUL
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_ARP_TARGETS = 16                        # BOND_MAX_ARP_TARGETS



def check_ifname(c: Checker, name: str, line: int | None, path: str, what: str) -> bool:
    size = len(name.encode())
    if not name:
        c.add(line, path, f"the {what} name is empty", "give it a name like 'bond0'")
    elif size >= IFNAMSIZ:
        c.add(line, path, f"the {what} name '{name}' is {size} bytes; Linux allows at most {IFNAMSIZ - 1}",
              f"shorten it, e.g. '{name[:IFNAMSIZ - 1]}'")
    elif any(ch in name for ch in "/:") or any(ch.isspace() for ch in name) or name in (".", ".."):
        c.add(line, path, f"the {what} name '{name}' contains '/', ':' or white space, which Linux forbids",
              "use letters, digits, '-', '_' and '.'")
    elif not IFNAME_RE.match(name):
        c.add(line, path, f"the {what} name '{name}' has characters that break scripts and unit files",
              "use letters, digits, '-', '_' and '.'")
    elif name in RESERVED_NAMES:
        c.add(line, path, f"'{name}' is created by the kernel itself", f"choose another {what} name")
    else:
        return True
    return False

TTL_HINT = "use 1 to 255 (255 is the usual), or 0 to inherit"
ENCAPLIMIT_HINT = "use 'none' (the default: saves 8 bytes per packet) or 0 to 255"
