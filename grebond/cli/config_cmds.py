"""Commands that only read the config: validate, render, mtu. They never touch the system."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from grebond import mtu as mtu_mod
from grebond.backends import registry
from grebond.backends.base import Context
from grebond.cli import add_config_arg, add_json_arg, add_target_args, targets_for
from grebond.errors import ConfigError, GrebondError, OutputError, Problem, UsageError
from grebond.files import check_writable, write_atomic
from grebond.model import Config
from grebond.validation import load_config, located

BUILTIN_RENDERERS = ("networkd", "networkmanager", "iproute2")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validate", help="check the config and print every problem",
                       description="Check the config; with --backend also whether that backend can express "
                                   "it for the target versions (exit 2 if not); without, warn about each built-in "
                                   "backend that cannot.")
    add_config_arg(p)
    p.add_argument("--backend", metavar="NAME", help="also check that this backend can express the config")
    add_target_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("render", help="print or write the configuration a backend would install")
    add_config_arg(p)
    p.add_argument("--backend", default="networkd", metavar="NAME",
                   help="networkd (default), networkmanager, iproute2, or a plugin (see 'grebond backends')")
    p.add_argument("--node", metavar="NAME", help="render one end (default: every end)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write each end's files into DIR/NODE/ instead of printing them")
    add_target_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("mtu", help="print the encapsulation overhead and the resulting bond MTU")
    add_config_arg(p)
    calc = p.add_argument_group("calculator (instead of a config)")
    calc.add_argument("--base", type=int, metavar="N", help="physical MTU under WireGuard (e.g. 1500)")
    calc.add_argument("--wireguard", choices=("ipv4", "ipv6", "none"), default=None,
                      help="WireGuard's outer family with --base (default ipv4)")
    calc.add_argument("--underlay-mtu", type=int, metavar="N", help="the underlay device MTU (e.g. WireGuard's 1420)")
    calc.add_argument("--family", choices=("ipv4", "ipv6"), default=None,
                      help="tunnel (GRE) family (default: WireGuard's family)")
    calc.add_argument("--key", action="store_true", help="the tunnel has a GRE key")
    calc.add_argument("--encaplimit", default=None, metavar="none|N",
                      help="ip6gretap encapsulation limit (default none; IPv6 tunnels only)")
    p.set_defaults(func=cmd_mtu)


def load(args: argparse.Namespace) -> Config:
    """Load and validate ``args.config``; print warnings; raise ConfigError on errors."""
    config, warnings = load_config(args.config)
    print_warnings(warnings)
    return config


def print_warnings(warnings: list[Problem]) -> None:
    for w in warnings:
        print(w, file=sys.stderr)


def capability_problems(config: Config, backend_name: str, args: argparse.Namespace) -> list[Problem]:
    """What ``backend_name`` cannot express of ``config`` for the target versions, located in the file."""
    targets = targets_for(args)
    backend = registry.get(backend_name)
    problems: list[Problem] = []
    for node in config.nodes:
        try:
            backend.render(Context(config=config, node=node, target_systemd=targets.systemd, target_nm=targets.nm))
        except ConfigError as exc:
            problems += [p for p in located(exc.problems, config) if p not in problems]
    return problems


def cmd_validate(args: argparse.Namespace) -> int:
    config = load(args)
    tunnels = sum(len(link.tunnels) for link in config.links)
    if args.backend:
        problems = capability_problems(config, args.backend, args)
        if problems:
            raise ConfigError(problems)
        warnings: list[Problem] = []
    else:
        targets = targets_for(args)
        versions = {"networkd": f"systemd {targets.systemd}", "networkmanager": f"NetworkManager {targets.nm}",
                    "iproute2": "iproute2"}
        warnings = [replace(p, warning=True, message=f"the {name} backend ({versions[name]}) cannot express it: "
                                                     f"{p.message}")
                    for name in BUILTIN_RENDERERS for p in capability_problems(config, name, args)]
        print_warnings(warnings)
    summary = (f"{args.config}: valid: {len(config.links)} link(s), {tunnels} tunnel(s), nodes {', '.join(config.nodes)}"
               + (f"; for backend {args.backend}" if args.backend else ""))
    if args.json:
        import json  # only --json output needs it; a cold validate must not load it

        print(json.dumps({"valid": True, "file": args.config, "links": len(config.links), "tunnels": tunnels,
                          "nodes": list(config.nodes), "bonds": _bonds_json(config),
                          "warnings": [str(w) for w in warnings]}))
    else:
        print(summary)
    return 0


def _bonds_json(config: Config) -> dict[str, list[dict[str, object]]]:
    """Each node's bonds with their peer and its bond addresses: what a fleet pings to confirm a try."""
    return {node: [{"bond": b.name, "peer": b.peer, "addresses": [str(a) for a in b.addresses],
                    "peer_addresses": [str(a.ip) for a in b.peer_addresses]} for b in config.bonds_of(node)]
            for node in config.nodes}


def cmd_render(args: argparse.Namespace) -> int:
    backend = registry.get(args.backend)
    config = load(args)
    from grebond.nodes import resolve_node

    nodes = [resolve_node(config, args.node)] if args.node else list(config.nodes)
    targets = targets_for(args)
    try:
        renderings = [backend.render(Context(config=config, node=n, target_systemd=targets.systemd,
                                              target_nm=targets.nm)) for n in nodes]
    except ConfigError as exc:
        raise ConfigError(located(exc.problems, config)) from None
    if args.json:
        import json  # only --json output needs it; a cold render must not load it

        print(json.dumps({"backend": args.backend, "targets": {"systemd": targets.systemd, "networkmanager": targets.nm},
                          "files": [{"node": r.node, "name": f.name, "mode": f"{f.mode:04o}",
                                     **({"directory": f.directory} if f.directory else {}),
                                     "content": f.content.decode(errors="replace")}
                                    for r in renderings for f in r.files]}, indent=2))
        return 0
    if args.output is None:
        for r in renderings:
            for f in r.files:
                sys.stdout.write(f"==> {r.node}/{f.name} <==\n")
                sys.stdout.write(f.content.decode())
                if not f.content.endswith(b"\n"):
                    sys.stdout.write("\n")
        return 0
    out = Path(args.output)
    writes = [(out / r.node / f.name, f) for r in renderings for f in r.files]
    _check_output(out, [path for path, _f in writes])
    for path, _f in writes:
        check_writable(path)          # someone else's file in the way: refused before anything is written
    for path, f in writes:
        try:
            write_atomic(path, f.content, f.mode)
        except GrebondError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}; the files written so far are whole "
                              "(each is written atomically)") from None
        print(path)
    return 0


def _check_output(out: Path, paths: list[Path]) -> None:
    """Refuse before writing anything: the output is not a directory, or cannot be written to."""
    import os

    for directory in dict.fromkeys([out, *(p.parent for p in paths)]):
        if directory.exists() and not directory.is_dir():
            raise OutputError(f"-o {out}: {directory} is not a directory; give a directory (it is created if missing)")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"-o {out}: cannot create {directory}: {exc.strerror or exc}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise OutputError(f"-o {out}: {directory} is not writable by this user; choose another directory")


CALCULATOR_OPTIONS = ("wireguard", "family", "key", "encaplimit")
PHYSICAL_MTU_RANGE = (576, 65535)


def cmd_mtu(args: argparse.Namespace) -> int:
    if args.base is not None or args.underlay_mtu is not None:
        return _mtu_calculator(args)
    given = [f"--{name.replace('_', '-')}" for name in CALCULATOR_OPTIONS if getattr(args, name) not in (None, False)]
    if given:
        raise UsageError(f"{' '.join(given)}: calculator option{'s' if len(given) > 1 else ''}; add --base N (the "
                         "physical MTU under WireGuard) or --underlay-mtu N (the WireGuard device's), or drop "
                         f"{'them' if len(given) > 1 else 'it'} to read -c FILE")
    config = load(args)
    for link in config.links:
        print(f"{link.name}: bond MTU {link.mtu}" + (" (auto: the smallest tunnel)" if link.mtu_auto else " (set)"))
        for t in link.tunnels:
            b = mtu_mod.tunnel_breakdown(t.underlay_mtu, t.family, t.key is not None, t.encaplimit)
            print(f" {t.name} ({t.kind}{', key' if t.key is not None else ''}):")
            print("\n".join(b.lines()))
    return 0


def _mtu_calculator(args: argparse.Namespace) -> int:
    lo, hi = PHYSICAL_MTU_RANGE
    if args.base is not None and args.underlay_mtu is not None:
        raise UsageError("give --base (the physical MTU under WireGuard) or --underlay-mtu (the WireGuard "
                         "device's MTU), not both")
    for option, value in (("--base", args.base), ("--underlay-mtu", args.underlay_mtu)):
        if value is not None and not lo <= value <= hi:
            raise UsageError(f"{option} {value}: an MTU is {lo} to {hi} bytes")
    wireguard = args.wireguard or "ipv4"
    if args.underlay_mtu is not None and args.wireguard is not None:
        raise UsageError("--wireguard describes the link under --base; with --underlay-mtu the WireGuard "
                         "overhead is already taken off")
    wg_family = {"ipv4": 4, "ipv6": 6}.get(wireguard)
    family = {"ipv4": 4, "ipv6": 6}[args.family] if args.family else (wg_family or 4)
    if args.encaplimit is not None and family != 6:
        raise UsageError("--encaplimit applies to an IPv6 (ip6gretap) tunnel: add --family ipv6, or drop it")
    if args.encaplimit in (None, "none"):
        encaplimit = None
    elif args.encaplimit.isdigit() and int(args.encaplimit) <= 255:
        encaplimit = int(args.encaplimit)
    else:
        raise UsageError(f"--encaplimit {args.encaplimit}: use 'none' or 0-255")
    if args.underlay_mtu is not None:
        underlay = args.underlay_mtu
        where = f"underlay device MTU {underlay}"
    elif wg_family is None:
        underlay = args.base
        where = f"underlay: physical link MTU {underlay}, no WireGuard"
    else:
        underlay = mtu_mod.wireguard_mtu(args.base, wg_family)
        where = (f"WireGuard over IPv{wg_family} on a {args.base}-byte link: {args.base} - "
                 f"{mtu_mod.WIREGUARD_OVERHEAD[wg_family]} (IPv{wg_family} {mtu_mod.OUTER_IP[wg_family]} + UDP 8 + "
                 f"WireGuard 32) = {underlay}")
    b = mtu_mod.tunnel_breakdown(underlay, family, args.key, encaplimit if family == 6 else None)
    if b.mtu < mtu_mod.MIN_MTU_IPV4:
        raise UsageError(f"a {underlay}-byte underlay leaves a bond MTU of {b.mtu}, below IPv4's minimum of "
                         f"{mtu_mod.MIN_MTU_IPV4}: the tunnels need a larger underlay MTU")
    print(where)
    print(f"{'gretap' if family == 4 else 'ip6gretap'}:")
    print("\n".join(b.lines()))
    floor = mtu_mod.MIN_MTU_IPV6
    print(f"bond MTU {b.mtu}" + (f" (below {floor}: no IPv6 on the bond)" if b.mtu < floor else ""))
    return 0
