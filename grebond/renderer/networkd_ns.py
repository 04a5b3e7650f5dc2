"""The NS monitor's targets for a bond systemd-networkd creates: a grebond-owned udev rule. Pure.

Why a udev rule: no networkd release has a [Bond] key for ns_ip6_target (systemd #42015), and
networkd (re)creates the bond itself at boot, after ``networkctl reload`` when the .netdev went
away, and after a restart from nothing. Each creation is a kernel "add" uevent for the bond, and
udev runs the rule on every one, whoever created the bond, without a unit to order against
networkd. The rule only adds attributes networkd never sends (the NS targets; arp_missed_max too
when the target systemd predates ARPMissedMax=), so networkd's own options, which it puts into
the RTM_NEWLINK that creates the bond, are untouched, and a reload or reconfigure, which resend
only networkd's options, leave the targets in place.

Not yet wired into the networkd backend (see ``udev_rule``'s docstring for what it must do).
"""

from __future__ import annotations

from grebond.generated import header_lines
from grebond.model import LocalBond, bond_options
from grebond.renderer import RenderedFile

UDEV_RULES_DIR = "/etc/udev/rules.d"
IP = "/sbin/ip"                  # Debian's iproute2 ships /sbin/ip (and /bin/ip); merged /usr has both
ARP_MISSED_MAX_SINCE = 256       # networkd's ARPMissedMax= (systemd NEWS 256)


def rule_name(bond: str) -> str:
    return f"90-grebond-{bond}.rules"


def udev_rule(end: LocalBond, source: str, node: str, target_systemd: int) -> RenderedFile | None:
    """The rule for ``end``'s bond, or None when the bond has no NS target (nothing to write).

    The networkd backend must: write it into ``UDEV_RULES_DIR`` with its other files (same header,
    same ownership check, removed with them), run ``udevadm control --reload`` after writing or
    removing it, and, because a bond that already exists gets no new "add" event, set the targets
    on a running bond itself after networkd has applied (``grebond.kernel.bond_attrs.set_bond_attrs``);
    ``verify`` then reads them back through the kernel reader like any other backend's.
    """
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
    return RenderedFile(rule_name(end.name), ("\n".join(lines) + "\n").encode())
