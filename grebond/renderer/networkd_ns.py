"""The NS monitor's targets for a bond systemd-networkd creates: a grebond-owned udev rule. Pure.

Why a udev rule: no networkd release has a [Bond] key for ns_ip6_target (systemd #42015), and
networkd (re)creates the bond itself at boot, after ``networkctl reload`` when the .netdev went
away, and after a restart from nothing. Each creation is a kernel "add" uevent for the bond, and
udev runs the rule on every one, whoever created the bond, without a unit to order against
networkd. The rule only adds attributes networkd never sends (the NS targets; arp_missed_max too
when the target systemd predates ARPMissedMax=), so networkd's own options, which it puts into
the RTM_NEWLINK that creates the bond, are untouched, and a reload or reconfigure, which resend
only networkd's options, leave the targets in place.

The networkd renderer adds the rule to its files (with ``directory`` set: it goes into udev's
directory, not networkd's); the backend writes and removes it with them, reloads udev, and sets
the targets on a bond that already exists itself (an existing bond gets no new "add" event).
"""

from __future__ import annotations

from grebond.generated import header_lines
from grebond.model import LocalBond, bond_options
from grebond.renderer import RenderedFile

UDEV_RULES_DIR = "/etc/udev/rules.d"
IP = "/sbin/ip"                  # Debian's iproute2 ships /sbin/ip (and /bin/ip); merged /usr has both
ARP_MISSED_MAX_SINCE = 256       # networkd's ARPMissedMax= (systemd.netdev(5), NEWS 256)


RULE_PREFIX = "90-grebond-"


def rule_name(bond: str) -> str:
    return f"{RULE_PREFIX}{bond}.rules"


def rule_settings(content: bytes) -> tuple[str, tuple[str, ...], int | None]:
    """(bond, NS targets, arp_missed_max or None) that one of these rules sets: what the backend
    sets itself on a bond that exists already. Read from the rule, not the model, because a
    rollback has only the snapshot's files. Reads only the rules ``udev_rule`` writes."""
    words = content.decode().rsplit("RUN+=", 1)[-1].strip().strip('"').split()
    # /sbin/ip link set dev BOND type bond ns_ip6_target T1,T2 [arp_missed_max N]
    options = dict(zip(words[7::2], words[8::2], strict=False))
    missed = options.get("arp_missed_max")
    return words[4], tuple(options.get("ns_ip6_target", "").split(",")), int(missed) if missed else None


def udev_rule(end: LocalBond, source: str, node: str, target_systemd: int) -> RenderedFile | None:
    """The rule for ``end``'s bond (a file for ``UDEV_RULES_DIR``), or None when the bond has no NS
    target (nothing to write). ``arp_missed_max`` rides along where networkd cannot set it."""
    if not end.ns_targets:
        return None
    options = bond_options(end)
    args = ["ns_ip6_target", ",".join(map(str, end.ns_targets))]
    if target_systemd < ARP_MISSED_MAX_SINCE and "arp_missed_max" in options:
        args += ["arp_missed_max", str(options["arp_missed_max"])]
    lines = [f"# {h}" for h in header_lines(source, node)]
    lines += ["# systemd-networkd has no key for the bond's NS monitor: udev sets its targets on every",
              f"# creation of {end.name} (grebond(8), NS MONITOR).",
              f'ACTION=="add", SUBSYSTEM=="net", KERNEL=="{end.name}", ENV{{DEVTYPE}}=="bond", '
              f'RUN+="{IP} link set dev {end.name} type bond {" ".join(args)}"']
    return RenderedFile(rule_name(end.name), ("\n".join(lines) + "\n").encode(), directory=UDEV_RULES_DIR)
