"""One timed read of everything the metrics and ``status --watch`` show: status, drift, shared paths.

Why one module: the Prometheus exposition and the live view must judge a bond the way ``verify``
and ``check-paths`` do, so they take the verifier's ``compare`` and the path rules' ``assess``
over the same kernel snapshot instead of rules of their own. ``build`` is pure (hand-made
states in the tests); only ``take`` reads the kernel, importing the reader and the prober lazily.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from grebond.kernel.state import KernelState
from grebond.model import Config
from grebond.paths import assess, observed_paths
from grebond.status import BondStatus, collect
from grebond.verifier import compare, remotes_of

SHARED_PATH_CODES = ("shared-device", "shared-next-hop")
"""check-paths' findings that say two tunnels ride one underlay path."""

RTT_PROBES = 3
RTT_TIMEOUT_S = 0.3
"""For the metrics, fewer and shorter probes than check-paths (8 x 1 s): a dead path then costs
at most ~1 s of a 15 s timer period, and the minimum of 3 is enough to see a path's delay."""


@dataclass(frozen=True)
class Snapshot:
    """The bonds of ``nodes`` at one moment, with verify's and check-paths' verdict per bond."""

    source: str                                  # the config file
    nodes: tuple[str, ...]
    bonds: list[BondStatus]
    drift: dict[tuple[str, str], bool] = field(default_factory=dict)          # (node, bond) -> verify fails
    shared_path: dict[tuple[str, str], bool] = field(default_factory=dict)    # (node, bond) -> tunnels share a path
    modes: dict[tuple[str, str], str] = field(default_factory=dict)           # (node, bond) -> the model's mode
    wall: float = 0.0                            # time.time() of the read (handshake ages are counted from it)
    monotonic: float = 0.0                       # time.monotonic() of the read (rates are counted from it)
    duration_s: float = 0.0                      # how long the read took


def build(config: Config, nodes: Sequence[str], state: KernelState,
          rtts: Mapping[tuple[str, str], float | None] | None = None, *, wall: float = 0.0,
          monotonic: float = 0.0, duration_s: float = 0.0) -> Snapshot:
    """Judge ``state`` for ``nodes``: pure, so a hand-made state gives a known exposition."""
    drift: dict[tuple[str, str], bool] = {}
    shared: dict[tuple[str, str], bool] = {}
    modes: dict[tuple[str, str], str] = {}
    for node in nodes:
        report = compare(config, node, state)
        failing = {c.subject for c in report.failures}
        for end in config.bonds_of(node):
            modes[(node, end.name)] = end.mode.value
            drift[(node, end.name)] = bool(failing & {end.name, *(t.name for t in end.tunnels)})
            findings = assess(end, observed_paths(end, state))
            shared[(node, end.name)] = any(f.code in SHARED_PATH_CODES for f in findings)
    return Snapshot(source=config.source, nodes=tuple(nodes), bonds=collect(config, list(nodes), state, rtts),
                    drift=drift, shared_path=shared, modes=modes, wall=wall, monotonic=monotonic, duration_s=duration_s)


def take(config: Config, nodes: Sequence[str], measure_rtt: bool = False) -> Snapshot:
    """Read the kernel (links, routes, offloads where modelled, WireGuard peers) and judge it.

    With ``measure_rtt`` each routed path also gets an ICMP echo RTT (``RTT_PROBES`` rounds).
    Raises SystemAccessError (exit 3) when the kernel cannot be read.
    """
    from grebond.errors import SystemAccessError
    from grebond.kernel.desired import wanted_offloads
    from grebond.kernel.reader import read_state

    wall, start = time.time(), time.monotonic()
    remotes = [r for n in nodes for r in remotes_of(config, n)]
    offloaded = [name for n in nodes for end in config.bonds_of(n) for name in wanted_offloads(end)]
    try:
        state = read_state(remotes, offloaded, wireguard=True)
    except SystemAccessError:
        raise
    except OSError as exc:
        raise SystemAccessError(f"cannot read the kernel: {exc}") from exc
    rtts: dict[tuple[str, str], float | None] = {}
    if measure_rtt:
        from grebond.kernel.echo import echo_rtts

        pairs = [(str(t.local), str(t.remote)) for n in nodes for end in config.bonds_of(n) for t in end.tunnels
                 if state.routes.get(str(t.remote)) is not None]
        rtts = {pair: rtt for pair, (rtt, _err) in echo_rtts(pairs, RTT_PROBES, RTT_TIMEOUT_S).items()}
    return build(config, nodes, state, rtts, wall=wall, monotonic=start, duration_s=time.monotonic() - start)
