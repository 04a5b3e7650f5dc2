"""Observing the underlay paths on this host: routes from the kernel, round trips by ICMP echo.

The I/O half of the path checks; ``grebond.paths`` judges what is observed here. Used by
``check-paths``, and by apply's refusal of a plaintext underlay before anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from grebond.errors import PlaintextUnderlayError
from grebond.kernel.reader import read_state
from grebond.model import LocalBond
from grebond.paths import DEFAULT_RTT_THRESHOLD_MS, BondReport, PathInfo, assess, observed_paths


def observe(ends: Sequence[LocalBond], measure_rtt: bool = True,
            probes: int | None = None) -> list[tuple[LocalBond, list[PathInfo]]]:
    """Ask the kernel for each tunnel's route and measure its RTT. SystemAccessError if netlink fails."""
    state = read_state([str(t.remote) for e in ends for t in e.tunnels])
    observed = [(e, observed_paths(e, state)) for e in ends]
    if not measure_rtt:
        return observed
    from grebond.kernel.echo import PROBES, echo_rtts  # raw sockets only when round trips are measured

    usable = [(p.local, p.remote) for _e, infos in observed for p in infos if p.device is not None and p.local_present]
    rtts = echo_rtts(usable, PROBES if probes is None else probes)
    out = []
    for e, infos in observed:
        measured = []
        for p in infos:
            rtt, error = rtts.get((p.local, p.remote), (None, None))
            measured.append(replace(p, rtt_ms=rtt, rtt_error=error))
        out.append((e, measured))
    return out


def bond_names() -> list[str]:
    """Bonds present in this namespace (a tunnel routed through one would loop)."""
    try:
        with open("/sys/class/net/bonding_masters") as f:   # per network namespace
            return sorted(f.read().split())
    except OSError:
        return []      # bonding not loaded: no bonds


# ----------------------------------------------------------------------------- the whole check
def check(ends: Sequence[LocalBond], rtt_threshold_ms: float = DEFAULT_RTT_THRESHOLD_MS,
          measure_rtt: bool = True) -> list[BondReport]:
    """Observe, then assess every bond of the node."""
    bonds = bond_names()
    reports = []
    for end, infos in observe(ends, measure_rtt):
        reports.append(BondReport(end.name, end.mode.value, end.node, end.peer, infos,
                                  assess(end, infos, rtt_threshold_ms, bonds)))
    return reports


def require_encrypted_underlay(ends: Sequence[LocalBond]) -> None:
    """Refuse (before apply changes anything) when a tunnel's remote routes over a non-WireGuard device.

    GRE adds no encryption; grebond's design relies on WireGuard underneath. A link may opt out
    with ``allow-plaintext-underlay: true`` (e.g. IPsec or a trusted wire). A remote with no route
    yet is not refused: the underlay may come up after the bond.
    """
    checked = [e for e in ends if not e.link.allow_plaintext_underlay]
    if not checked:
        return
    state = read_state([str(t.remote) for e in checked for t in e.tunnels])
    bad = []
    for e in checked:
        infos = {p.tunnel: p for p in observed_paths(e, state)}
        for f in assess(e, list(infos.values())):
            if f.code == "plaintext" and f.level == "warning":
                p = infos[f.tunnels[0]]
                bad.append(f"{e.name}/{p.tunnel} to {p.remote} leaves through {p.device} ({p.kind or 'physical'})")
    if bad:
        raise PlaintextUnderlayError(
            f"refusing to apply: {'; '.join(bad)}, not WireGuard, so GRE would carry the bond's traffic in "
            "clear text. Route the remotes over WireGuard, or set 'allow-plaintext-underlay: true' on the "
            "link if the underlay is encrypted or trusted another way")
