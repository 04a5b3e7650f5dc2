"""The ``ip`` commands that build one end by hand: the original recipe, made correct.

Corrections over the hand-typed recipe: the bond MTU is set (a bond pushes 1500 onto its
gretaps otherwise), the bond gets a fixed MAC before anything is enslaved, a monitor that can
see a dead tunnel (ARP) is configured, and each tunnel is down while it is enslaved. When the
model sets offloads (``offloads: on|off``), ``ethtool -K`` sets the same four kernel
features the other backends set, by the kernel's names; a tunnel's ``delay`` is a netem root
qdisc (``tc qdisc replace``), as networkd's [NetworkEmulator] and the kernel backend make it.
"""

from __future__ import annotations

import shlex

from grebond.generated import header_lines
from grebond.model import NETEM_LIMIT, OFFLOADS, LocalBond, LocalTunnel, bond_options, format_delay
from grebond.renderer import RenderedFile, Rendering

Argv = list[str]


def tunnel_argv(t: LocalTunnel) -> Argv:
    argv = ["ip", "link", "add", t.name, "mtu", str(t.mtu), "type", t.kind,
            "local", str(t.local), "remote", str(t.remote), "ttl", str(t.ttl)]
    if t.key is not None:
        argv += ["key", str(t.key)]
    if t.family == 6:
        argv += ["encaplimit", "none" if t.encaplimit is None else str(t.encaplimit)]
    return argv


def netem_argv(t: LocalTunnel) -> Argv | None:
    """The tunnel's delay as its root qdisc (``replace``: whatever root qdisc it had goes)."""
    if not t.delay_us:
        return None
    return ["tc", "qdisc", "replace", "dev", t.name, "root", "netem", "delay", format_delay(t.delay_us),
            "limit", str(NETEM_LIMIT)]


def bond_option_args(bond: LocalBond) -> Argv:
    """The ``type bond ...`` options from ``model.bond_options``, explicit for every monitor field so
    nothing is left to defaults; ``primary`` is set later, once its tunnel is enslaved."""
    options = bond_options(bond)
    args: Argv = []
    for name, value in options.items():
        if name == "primary" or (name == "arp_interval" and value == 0):
            continue
        if name == "miimon" and value == 0 and options.get("arp_interval"):
            continue    # the ARP monitor's arp_interval already switches miimon off
        args += [name, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
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
    primary = bond_options(end).get("primary")
    if primary:
        cmds.append(["ip", "link", "set", "dev", end.name, "type", "bond", "primary", str(primary)])
    for addr in end.addresses:
        cmds.append(["ip", "address", "add", str(addr), "dev", end.name]
                    + (["nodad"] if addr.version == 6 else []))
    for t in end.tunnels:
        cmds.append(["ip", "link", "set", "dev", t.name, "up"])
    cmds += [argv for t in end.tunnels if (argv := netem_argv(t)) is not None]
    cmds.append(["ip", "link", "set", "dev", end.name, "up"])
    return cmds


SCRIPT_PREFIX = "grebond-"


def commands_of(bonds: tuple[LocalBond, ...]) -> list[Argv]:
    """Every command for every bond of a node, in order (what the script runs, as argv lists)."""
    return [argv for bond in bonds for argv in commands(bond)]


def render(ends: tuple[LocalBond, ...], source: str, node: str) -> Rendering:
    """One POSIX shell script for the node."""
    lines = ["#!/bin/sh"] + [f"# {h}" for h in header_lines(source, node)]
    lines += ["# Not persistent: the kernel forgets it at reboot. Run once on a host without these interfaces.",
              "set -e"]
    for end in ends:
        names = ", ".join(t.name for t in end.tunnels)
        lines += ["", f"# {end.name}: {end.mode.value} over {names} to {end.peer}; MTU {end.mtu}"]
        for argv in commands(end):
            lines.append(shlex.join(argv))
    script = ("\n".join(lines) + "\n").encode()
    return Rendering(backend="iproute2", node=node, files=(RenderedFile(f"{SCRIPT_PREFIX}{node}.sh", script, 0o755),))
