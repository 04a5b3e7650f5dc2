"""Commands that only read the config: validate, render, mtu. They never touch the system."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grebond import mtu as mtu_mod
from grebond.backends import registry
from grebond.backends.base import Context
from grebond.cli import add_config_arg
from grebond.errors import Problem, UsageError
from grebond.files import write_atomic
from grebond.model import Config
from grebond.validation import load_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validate", help="check the config and print every problem")
    add_config_arg(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("render", help="print or write the configuration a backend would install")
    add_config_arg(p)
    p.add_argument("--backend", default="networkd", metavar="NAME",
                   help="networkd (default), networkmanager, iproute2, or a plugin (see 'grebond backends')")
    p.add_argument("--node", metavar="NAME", help="render one end (default: every end, each into DIR/NODE/)")
    p.add_argument("-o", "--output", metavar="DIR", help="write files into DIR instead of printing them")
    p.add_argument("--target-nm", default=None, metavar="VERSION",
                   help="NetworkManager version to render for (default 1.42, Debian 12's)")
    p.add_argument("--target-systemd", type=int, default=252, metavar="N",
                   help="the systemd version networkd files are for (default 252, Debian 12)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("mtu", help="print the encapsulation overhead and the resulting bond MTU")
    add_config_arg(p)
    calc = p.add_argument_group("calculator (instead of a config)")
    calc.add_argument("--base", type=int, metavar="N", help="physical MTU under WireGuard (e.g. 1500)")
    calc.add_argument("--wireguard", choices=("ipv4", "ipv6", "none"), default="ipv4",
                      help="WireGuard's outer family with --base (default ipv4)")
    calc.add_argument("--underlay-mtu", type=int, metavar="N", help="the underlay device MTU (e.g. WireGuard's 1420)")
    calc.add_argument("--family", choices=("ipv4", "ipv6"), default=None,
                      help="tunnel (GRE) family (default: WireGuard's family)")
    calc.add_argument("--key", action="store_true", help="the tunnel has a GRE key")
    calc.add_argument("--encaplimit", default="none", metavar="none|N", help="ip6gretap encapsulation limit")
    p.set_defaults(func=cmd_mtu)


def load(args: argparse.Namespace) -> Config:
    """Load and validate ``args.config``; print warnings; raise ConfigError on errors."""
    config, warnings = load_config(args.config)
    print_warnings(warnings)
    return config


def print_warnings(warnings: list[Problem]) -> None:
    for w in warnings:
        print(w, file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    config = load(args)
    tunnels = sum(len(link.tunnels) for link in config.links)
    print(f"{args.config}: valid: {len(config.links)} link(s), {tunnels} tunnel(s), nodes {', '.join(config.nodes)}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    backend = registry.get(args.backend)
    config = load(args)
    from grebond.nodes import resolve_node

    nodes = [resolve_node(config, args.node)] if args.node else list(config.nodes)
    renderings = [backend.render(Context(config=config, node=n, target_systemd=args.target_systemd,
                                          target_nm=args.target_nm)) for n in nodes]
    if args.output is None:
        for r in renderings:
            for f in r.files:
                sys.stdout.write(f"==> {r.node}/{f.name} <==\n")
                sys.stdout.write(f.content.decode())
                if not f.content.endswith(b"\n"):
                    sys.stdout.write("\n")
        return 0
    out = Path(args.output)
    for r in renderings:
        directory = out if args.node else out / r.node
        for f in r.files:
            write_atomic(directory / f.name, f.content, f.mode)
            print(directory / f.name)
    return 0


def cmd_mtu(args: argparse.Namespace) -> int:
    if args.base is not None or args.underlay_mtu is not None:
        return _mtu_calculator(args)
    config = load(args)
    for link in config.links:
        print(f"{link.name}: bond MTU {link.mtu}" + (" (auto: the smallest tunnel)" if link.mtu_auto else " (set)"))
        for t in link.tunnels:
            b = mtu_mod.tunnel_breakdown(t.underlay_mtu, t.family, t.key is not None, t.encaplimit)
            print(f" {t.name} ({t.kind}{', key' if t.key is not None else ''}):")
            print("\n".join(b.lines()))
    return 0


def _mtu_calculator(args: argparse.Namespace) -> int:
    wg_family = {"ipv4": 4, "ipv6": 6}.get(args.wireguard)
    family = {"ipv4": 4, "ipv6": 6}[args.family] if args.family else (wg_family or 4)
    if args.encaplimit == "none":
        encaplimit = None
    elif args.encaplimit.isdigit() and int(args.encaplimit) <= 255:
        encaplimit = int(args.encaplimit)
    else:
        raise UsageError(f"--encaplimit {args.encaplimit}: use 'none' or 0-255")
    if args.underlay_mtu is not None:
        underlay = args.underlay_mtu
        print(f"underlay device MTU {underlay}")
    else:
        if wg_family is None:
            underlay = args.base
            print(f"underlay: physical link MTU {underlay}, no WireGuard")
        else:
            underlay = mtu_mod.wireguard_mtu(args.base, wg_family)
            print(f"WireGuard over IPv{wg_family} on a {args.base}-byte link: {args.base} - "
                  f"{mtu_mod.WIREGUARD_OVERHEAD[wg_family]} (IPv{wg_family} {mtu_mod.OUTER_IP[wg_family]} + UDP 8 + "
                  f"WireGuard 32) = {underlay}")
    b = mtu_mod.tunnel_breakdown(underlay, family, args.key, encaplimit if family == 6 else None)
    print(f"{'gretap' if family == 4 else 'ip6gretap'}:")
    print("\n".join(b.lines()))
    floor = mtu_mod.MIN_MTU_IPV6
    print(f"bond MTU {b.mtu}" + (f" (below {floor}: no IPv6 on the bond)" if b.mtu < floor else ""))
    return 0
