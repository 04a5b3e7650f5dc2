"""The ``ip`` commands that build one end by hand: the original recipe, made correct.

Corrections over the hand-typed recipe: the bond MTU is set (a bond pushes 1500 onto its
gretaps otherwise), the bond gets a fixed MAC before anything is enslaved, a monitor that can
see a dead tunnel (ARP) is configured, and each tunnel is down while it is enslaved. When the
model sets offloads (``offloads: on|off``), ``ethtool -K`` sets the same four kernel
features the other backends set, by the kernel's names.
"""

from __future__ import annotations

import shlex

from grebond.model import OFFLOADS, LocalBond, BondMode, MonitorType, LocalTunnel
from grebond.renderer import RenderedFile, Rendering, header_lines

Argv = list[str]


def tunnel_argv(t: LocalTunnel) -> Argv:
    argv = ["ip", "link", "add", t.name, "mtu", str(t.mtu), "type", t.kind,
            "local", str(t.local), "remote", str(t.remote), "ttl", str(t.ttl)]
    if t.key is not None:
        argv += ["key", str(t.key)]
    if t.family == 6:
        argv += ["encaplimit", "none" if t.encaplimit is None else str(t.encaplimit)]
    return argv


def bond_option_args(end: LocalBond) -> Argv:
    """The ``type bond ...`` options, explicit for every monitor field so nothing is left to defaults."""
    mon, opt = end.monitor, end.options
    args = ["mode", end.mode.value]
    if mon.type is MonitorType.ARP:
        args += ["arp_interval", str(mon.interval_ms), "arp_ip_target", ",".join(str(a) for a in end.arp_targets),
                 "arp_validate", mon.validate, "arp_missed_max", str(mon.missed_max)]
    elif mon.type is MonitorType.MII:
        args += ["miimon", str(mon.interval_ms)]
        if opt.updelay_ms is not None:
            args += ["updelay", str(opt.updelay_ms)]
        if opt.downdelay_ms is not None:
            args += ["downdelay", str(opt.downdelay_ms)]
    elif end.mode.allows_arp_monitor:
        args += ["miimon", "0"]
    for key, value in (("xmit_hash_policy", opt.xmit_hash_policy), ("min_links", opt.min_links),
                       ("packets_per_slave", opt.packets_per_slave), ("lacp_rate", opt.lacp_rate)):
        if value is not None:
            args += [key, str(value)]
    return args


def commands(end: LocalBond) -> list[Argv]:
    """Every command for one bond, in an order the kernel accepts."""
    cmds: list[Argv] = [tunnel_argv(t) for t in end.tunnels]
    cmds.append(["ip", "link", "add", end.name, "address", end.mac, "mtu", str(end.mtu), "type", "bond",
                 *bond_option_args(end)])
    if end.offloads is not None:
        state = "on" if end.offloads else "off"
        for name in [t.name for t in end.tunnels] + [end.name]:
            cmds.append(["ethtool", "-K", name, *(w for f in OFFLOADS.values() for w in (f, state))])
    for t in end.tunnels:
        cmds.append(["ip", "link", "set", "dev", t.name, "down"])   # the kernel refuses to enslave an up device
        cmds.append(["ip", "link", "set", "dev", t.name, "master", end.name])
    if end.options.primary and end.mode in (BondMode.ACTIVE_BACKUP, BondMode.BALANCE_TLB, BondMode.BALANCE_ALB):
        cmds.append(["ip", "link", "set", "dev", end.name, "type", "bond", "primary", end.options.primary])
    for addr in end.addresses:
        cmds.append(["ip", "address", "add", str(addr), "dev", end.name]
                    + (["nodad"] if addr.version == 6 else []))
    for t in end.tunnels:
        cmds.append(["ip", "link", "set", "dev", t.name, "up"])
    cmds.append(["ip", "link", "set", "dev", end.name, "up"])
    return cmds


def render(ends: tuple[LocalBond, ...], source: str, node: str) -> Rendering:
    """One POSIX shell script for the node; the argv lists are the Rendering's data."""
    lines = ["#!/bin/sh"] + [f"# {h}" for h in header_lines(source, node)]
    lines += ["# Not persistent: the kernel forgets it at reboot. Run once on a host without these interfaces.",
              "set -e"]
    all_cmds: list[Argv] = []
    for end in ends:
        names = ", ".join(t.name for t in end.tunnels)
        lines += ["", f"# {end.name}: {end.mode.value} over {names} to {end.peer}; MTU {end.mtu}"]
        for argv in commands(end):
            lines.append(shlex.join(argv))
            all_cmds.append(argv)
    script = ("\n".join(lines) + "\n").encode()
    return Rendering(backend="iproute2", node=node,
                     files=(RenderedFile(f"grebond-{node}.sh", script, 0o755),), data=all_cmds)
