"""Path checks: are a bond's tunnels really distinct, encrypted, and similar enough for its mode?

A bond only adds bandwidth and resilience if each tunnel rides its own underlay path. The model
cannot know that; the routing table can. For each tunnel of a node this module asks the kernel
where the tunnel's remote is routed (device, kind of device, next hop), measures the path's
round-trip time with ICMP echo from the tunnel's local address, and then decides, in pure code:

- two tunnels leaving through the same device or the same next hop are one path counted twice:
  losing it takes both tunnels down, and they share its bandwidth;
- a tunnel routed over anything but WireGuard sends GRE in clear text;
- a mode that spreads one flow over all tunnels (balance-rr) reorders TCP when the paths'
  round-trip times differ; measured in the lab (docs/performance.md), 20 ms of difference
  drops balance-rr below ONE path's rate. The model's per-tunnel ``delay`` evens them out
  (each end delays the faster path, so a round trip gains twice the delay): the check compares
  the round trips with those delays added, and prints the delays that would even them out
  (``suggested_delays``), for the model; grebond never measures them at apply time, because the
  two ends would measure different figures and verify could not check a moving target.
- copies of a tunnel made by ``weight`` share its path on purpose: they count as one path.

Layout: ``PathInfo`` (what was observed) -> ``assess()`` (pure decisions -> ``Finding``) ->
``render_text()``/``as_json()``. All of this module is pure; ``grebond.probe`` asks the kernel
and measures the round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from grebond.model import BondMode, LocalBond, format_delay

if TYPE_CHECKING:
    from grebond.kernel.state import KernelState

DEFAULT_RTT_THRESHOLD_MS = 5.0
"""RTT difference above which balance-rr is flagged. TCP's reordering tolerance (3 duplicate ACKs)
is a fraction of a millisecond of spread at tens of Mbit/s; a few ms already costs throughput, and
20 ms made balance-rr slower than one path in the lab. Below 5 ms, ICMP jitter dominates."""

RECOMMENDED_UNEQUAL_MODE = BondMode.BALANCE_XOR
RECOMMENDED_UNEQUAL_HASH = "layer3+4"
"""For paths with unequal delay: balance-xor hashing the inner flow keeps every TCP flow on one
tunnel (in order), while many flows still use all tunnels. Measured in docs/performance.md."""


@dataclass(frozen=True)
class PathInfo:
    """What the kernel says about one tunnel's underlay path (observed, not judged)."""

    tunnel: str
    local: str
    remote: str
    device: str | None = None        # the route's output device (RTA_OIF), by name
    kind: str | None = None          # that device's link kind ("wireguard", "veth"; None: physical)
    gateway: str | None = None       # the route's next hop (RTA_GATEWAY); None when the remote is on-link
    rtt_ms: float | None = None      # minimum ICMP echo round trip, local -> remote
    route_error: str | None = None   # why the route lookup failed, if it did
    local_present: bool = True       # False: the tunnel's local address is not on this host
    rtt_error: str | None = None     # why no RTT was measured, if none was

    @property
    def next_hop(self) -> str | None:
        """Where packets go first: the gateway, or the remote itself when it is on-link."""
        if self.device is None:
            return None
        return self.gateway or self.remote


@dataclass(frozen=True)
class Finding:
    """One conclusion about a bond's paths. Only ``warning`` findings make the exit status 1."""

    bond: str
    code: str                        # shared-device, shared-next-hop, plaintext, rtt-spread, no-route, ...
    level: str                       # "warning" or "note"
    tunnels: tuple[str, ...]
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.level}: {self.bond}: {self.message}" + (f"; {self.fix}" if self.fix else "")


@dataclass
class BondReport:
    """One bond of the node: the paths observed and what was concluded."""

    bond: str
    mode: str
    node: str
    peer: str
    paths: list[PathInfo]
    findings: list[Finding] = field(default_factory=list)
    suggested_delays: dict[str, int] = field(default_factory=dict)
    """Tunnel (as in the file) -> the delay in microseconds that evens out the measured round trips
    (balance-rr only; empty when they are within the threshold or were not measured)."""


# ----------------------------------------------------------------------------- decisions (pure)
def assess(end: LocalBond, paths: Sequence[PathInfo], rtt_threshold_ms: float = DEFAULT_RTT_THRESHOLD_MS,
           bond_devices: Iterable[str] = ()) -> list[Finding]:
    """Judge one bond end's observed paths. Pure: same input, same findings, in a stable order.

    ``bond_devices``: names of bonds on this host (a tunnel routed through a bond would loop).
    """
    bond = end.name
    out: list[Finding] = []
    routed = [p for p in paths if p.device is not None]
    for p in paths:
        if p.device is None:
            out.append(Finding(bond, "no-route", "warning", (p.tunnel,),
                               f"{p.tunnel}: no route to its remote {p.remote}"
                               + (f" ({p.route_error})" if p.route_error else ""),
                               "bring up the underlay (WireGuard) device that carries this path"))
        if not p.local_present:
            out.append(Finding(bond, "no-local-address", "warning", (p.tunnel,),
                               f"{p.tunnel}: its local address {p.local} is not on this host, so the tunnel "
                               "cannot send", f"check --node {end.node} is this host, and that the underlay "
                               "device has its address"))
    loops = set(bond_devices) | {bond}
    for p in routed:
        if p.device in loops or p.device in {t.name for t in end.tunnels}:
            out.append(Finding(bond, "recursive", "warning", (p.tunnel,),
                               f"{p.tunnel}: its remote {p.remote} is routed through {p.device}, i.e. through "
                               "the bond itself", "route the tunnel endpoints over the underlay, not the overlay"))

    origin = {t.name: t.path for t in end.tunnels}
    for device, group in _groups(routed, lambda p: p.device, origin):
        names = tuple(p.tunnel for p in group)
        paths_ = _origins(names, origin)
        out.append(Finding(bond, "shared-device", "warning", names,
                           f"{_and(paths_)} leave through {device}: they are one path, not {len(paths_)} "
                           "(one failure takes them all down and they share its bandwidth)",
                           "route each tunnel's remote over its own underlay device"))
    shared_dev = {p.tunnel for f in out if f.code == "shared-device" for p in routed if p.tunnel in f.tunnels}
    for hop, group in _groups(routed, lambda p: p.gateway, origin):
        names = tuple(p.tunnel for p in group)
        if set(names) <= shared_dev:
            continue  # already said: same device and same gateway is the same finding
        out.append(Finding(bond, "shared-next-hop", "warning", names,
                           f"{_and(_origins(names, origin))} go through next hop {hop}: they are not distinct paths",
                           "give each tunnel's remote a route through a different next hop"))

    for p in routed:
        if p.kind == "wireguard":
            continue
        what = f"{p.device} ({p.kind or 'physical'})"
        if end.link.allow_plaintext_underlay:
            out.append(Finding(bond, "plaintext", "note", (p.tunnel,),
                               f"{p.tunnel}: routed over {what}, not WireGuard; GRE is plain text "
                               "(allowed by allow-plaintext-underlay)"))
        else:
            out.append(Finding(bond, "plaintext", "warning", (p.tunnel,),
                               f"{p.tunnel}: routed over {what}, not WireGuard: GRE carries the bond's "
                               "traffic in clear text",
                               "route the remote over a WireGuard device, or set 'allow-plaintext-underlay: true'"))

    out += assess_rtt(end, paths, rtt_threshold_ms)
    return out


def assess_rtt(end: LocalBond, paths: Sequence[PathInfo], threshold_ms: float) -> list[Finding]:
    """Flag unequal round trips when the bond's mode spreads one flow over several tunnels.

    The round trips compared are the measured ones plus twice each tunnel's modelled delay (both
    ends delay the tunnel's egress); the measurement itself runs between the underlay addresses,
    outside the tunnels' qdiscs. Copies made by ``weight`` are their tunnel's path, measured once.
    """
    bond = end.name
    out: list[Finding] = []
    for p in paths:
        if p.device is not None and p.rtt_ms is None and p.rtt_error:
            out.append(Finding(bond, "no-rtt", "note", (p.tunnel,),
                               f"{p.tunnel}: no echo reply from {p.remote}"
                               + (f" ({p.rtt_error})" if p.rtt_error else "")
                               + "; the path is down or filters ICMP, so its delay was not compared"))
    measured = _measured(end, paths)
    if len(measured) < 2 or not end.mode.reorders:
        return out
    delays = {t.path: (t.delay_us or 0) / 1000 for t in end.tunnels}
    effective = {name: rtt + 2 * delays.get(name, 0.0) for name, rtt in measured.items()}
    fast = min(effective, key=lambda n: effective[n])
    slow = max(effective, key=lambda n: effective[n])
    spread = effective[slow] - effective[fast]
    if spread <= threshold_ms:
        return out
    added = " with the model's delays" if delays.get(fast) or delays.get(slow) else ""
    suggested = suggest_delays(end, paths)
    out.append(Finding(
        bond, "rtt-spread", "warning", (fast, slow),
        f"round-trip times{added} differ by {spread:.1f} ms ({fast} {effective[fast]:.1f} ms, {slow} "
        f"{effective[slow]:.1f} ms; threshold {threshold_ms:g} ms) and {end.mode.value} sends one flow over every "
        "tunnel: TCP sees reordering and can fall below a single path's rate",
        recommend(end, suggested)))
    return out


def _measured(end: LocalBond, paths: Sequence[PathInfo]) -> dict[str, float]:
    """Tunnel of the file -> its path's measured round trip (a copy's is its tunnel's)."""
    origin = {t.name: t.path for t in end.tunnels}
    out: dict[str, float] = {}
    for p in paths:
        if p.rtt_ms is not None:
            name = origin.get(p.tunnel, p.tunnel)
            out[name] = min(out.get(name, p.rtt_ms), p.rtt_ms)
    return out


def suggest_delays(end: LocalBond, paths: Sequence[PathInfo]) -> dict[str, int]:
    """The ``delay`` for each faster tunnel (of the file) that evens out the measured round trips:
    half its gap to the slowest (each end adds it once per round trip), to 0.1 ms; pure."""
    measured = _measured(end, paths)
    if len(measured) < 2:
        return {}
    slowest = max(measured.values())
    out = {}
    for name, rtt in measured.items():
        us = round((slowest - rtt) / 2 * 10) * 100
        if us > 0:
            out[name] = us
    return out


def suggested(end: LocalBond, paths: Sequence[PathInfo], threshold_ms: float) -> dict[str, int]:
    """``suggest_delays`` when it matters: the mode stripes one flow and the measured round trips
    differ by more than the threshold (with or without delays in the model, so the figures can be
    checked against the model's)."""
    measured = _measured(end, paths)
    if not end.mode.reorders or len(measured) < 2 or max(measured.values()) - min(measured.values()) <= threshold_ms:
        return {}
    return suggest_delays(end, paths)


def recommend(end: LocalBond, suggested: dict[str, int] | None = None) -> str:
    """The fix to name for unequal paths; why: docs/performance.md, unequal paths over WireGuard."""
    even = ""
    if suggested:
        each = ", ".join(f"'delay: {format_delay(us)}' on {name}" for name, us in suggested.items())
        even = (f"to keep {end.mode.value} for single flows, set {each} (both ends; the round trips then "
                "meet, at the slowest path's latency) and 'weight:' the faster paths by their rate; or ")
    return (f"{even}use 'mode: {RECOMMENDED_UNEQUAL_MODE.value}' with 'xmit-hash-policy: {RECOMMENDED_UNEQUAL_HASH}' "
            "(each flow stays on one tunnel; many flows use them all), or 'mode: active-backup' with "
            f"'primary:' set to the fastest tunnel if one flow needs the lowest delay")


def _groups(paths: Sequence[PathInfo], key: Any, origin: dict[str, str]) -> list[tuple[str, list[PathInfo]]]:
    """Values of ``key`` shared by the paths of two or more tunnels of the file, in first-seen order
    (None never groups; a tunnel's ``weight`` copies share its path on purpose)."""
    seen: dict[str, list[PathInfo]] = {}
    for p in paths:
        k = key(p)
        if k is not None:
            seen.setdefault(k, []).append(p)
    return [(k, v) for k, v in seen.items() if len(_origins([p.tunnel for p in v], origin)) > 1]


def _origins(names: Sequence[str], origin: dict[str, str]) -> tuple[str, ...]:
    """The tunnels of the file that ``names`` (tunnels and their weight copies) come from, in order."""
    return tuple(dict.fromkeys(origin.get(n, n) for n in names))


def _and(names: Sequence[str]) -> str:
    """'gre1 and gre2 both', 'gre1, gre2 and gre3 all': the subject of a shared-path sentence."""
    if len(names) == 2:
        return f"{names[0]} and {names[1]} both"
    return ", ".join(names[:-1]) + f" and {names[-1]} all"


def exit_status(reports: Sequence[BondReport]) -> int:
    """0 when no finding is a warning, 1 otherwise (2 and 3 come from errors, in the CLI)."""
    return 1 if any(f.level == "warning" for r in reports for f in r.findings) else 0


# ----------------------------------------------------------------------------- output (pure)
def render_text(reports: Sequence[BondReport]) -> str:
    lines: list[str] = []
    for r in reports:
        lines.append(f"{r.bond} ({r.mode}) on {r.node}, to {r.peer}:")
        for p in r.paths:
            if p.device is None:
                where = f"no route ({p.route_error or 'unknown'})"
            else:
                hop = f"next hop {p.gateway}" if p.gateway else "on-link"
                where = f"via {p.device} ({p.kind or 'physical'}), {hop}"
            rtt = f"rtt {p.rtt_ms:.1f} ms" if p.rtt_ms is not None else "rtt n/a"
            lines.append(f"  {p.tunnel:<15} {p.local} -> {p.remote}  {where}, {rtt}")
        lines += [f"  {f}" for f in r.findings]
        if r.suggested_delays:
            lines.append("  suggested delays (even out the round trips for balance-rr; put them in the model, the "
                         "same for both ends): " + ", ".join(f"{n} delay: {format_delay(us)}"
                                                            for n, us in r.suggested_delays.items()))
    warnings = sum(1 for r in reports for f in r.findings if f.level == "warning")
    lines.append(f"{warnings} warning(s)" if warnings else "paths ok: distinct, encrypted, similar delay")
    return "\n".join(lines) + "\n"


def as_json(reports: Sequence[BondReport]) -> dict[str, Any]:
    return {
        "bonds": [{"bond": r.bond, "mode": r.mode, "node": r.node, "peer": r.peer,
                   "paths": [asdict(p) | {"next_hop": p.next_hop} for p in r.paths],
                   "findings": [asdict(f) | {"tunnels": list(f.tunnels)} for f in r.findings],
                   "suggested_delays": {n: format_delay(us) for n, us in r.suggested_delays.items()}}
                  for r in reports],
        "warnings": sum(1 for r in reports for f in r.findings if f.level == "warning"),
        "status": exit_status(reports),
    }


# ----------------------------------------------------------------------------- observation
def observed_paths(end: LocalBond, state: KernelState) -> list[PathInfo]:
    """Each tunnel's underlay path as the kernel snapshot ``state`` shows it (pure; no RTT).

    The verifier, ``check-paths`` and apply's plaintext refusal all start from this, so they
    see the same routes and ``assess`` alone decides what is wrong with them.
    """
    mine = {a.split("/")[0] for link in state.links.values() for a in link.addresses}
    out = []
    for t in end.tunnels:
        local, remote = str(t.local), str(t.remote)
        route = state.routes.get(remote)
        base = PathInfo(tunnel=t.name, local=local, remote=remote, local_present=local in mine)
        if route is None or route.oif is None:
            out.append(replace(base, route_error="no route (unreachable)"))
        elif route.oif == "lo":
            out.append(replace(base, route_error=f"{remote} is an address of this host"))
        else:
            out.append(replace(base, device=route.oif, kind=route.oif_kind, gateway=route.gateway))
    return out
