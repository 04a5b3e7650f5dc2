"""Does the running kernel match the model? Field by field, with expected and actual values.

``compare(config, node, state)`` is pure (a ``KernelState`` snapshot in, a ``Report`` out) so it
is tested on hand-made states; ``verify`` reads the kernel and retries while it settles. Every
backend calls ``verify(config, node, settle_s=...)`` after apply.

Severity: ``error`` checks decide ``Report.ok`` (exit 1 on drift). ``warning`` checks report
what depends on the peer or on traffic (bond carrier, a slave's monitor status): right after
applying one end the other end may not exist yet, and that is not drift of this end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from grebond.errors import SystemAccessError
from grebond.kernel.desired import (
    actual_addresses,
    actual_offloads,
    actual_qdisc,
    actual_tunnel,
    expected_addresses,
    expected_bond,
    expected_offloads,
    expected_qdisc,
    expected_tunnel,
    wanted_offloads,
)
from grebond.kernel.reader import read_state
from grebond.kernel.state import KernelState
from grebond.model import Config, LocalBond, LocalTunnel
from grebond.paths import assess, observed_paths

ERROR = "error"
PATH = "path"
"""A failure of the underlay, not of the configuration: no route to a tunnel's remote, tunnels
sharing one path (the IGP moved one onto the other's), a path off WireGuard."""
WARNING = "warning"


@dataclass(frozen=True)
class Check:
    subject: str
    field: str
    expected: Any
    actual: Any
    ok: bool
    severity: str = ERROR

    def line(self) -> str:
        if self.ok:
            return f"[ OK ] {self.subject} {self.field} {_show(self.expected)}"
        tag = {ERROR: "[FAIL]", PATH: "[PATH]"}.get(self.severity, "[WARN]")
        return f"{tag} {self.subject} {self.field}: expected {_show(self.expected)}, got {_show(self.actual)}"


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass
class Report:
    node: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything as modelled, the underlay included: what an apply must reach."""
        return not self.failures

    @property
    def drift(self) -> bool:
        """The configuration differs from the model (exit 1)."""
        return any(not c.ok and c.severity == ERROR for c in self.checks)

    @property
    def degraded(self) -> bool:
        """The configuration matches, but an underlay path is down or shared (exit 4)."""
        return not self.drift and any(not c.ok and c.severity == PATH for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity in (ERROR, PATH)]

    def lines(self) -> list[str]:
        out = [c.line() for c in self.checks]
        warnings = sum(1 for c in self.checks if not c.ok and c.severity == WARNING)
        fails = len(self.failures)
        if self.drift:
            verdict = "DRIFT from the model"
        elif self.degraded:
            verdict = "matches the model, but the underlay is DEGRADED"
        else:
            verdict = "matches the model"
        out.append(f"{self.node}: {verdict}: {len(self.checks)} checks, {fails} failed, {warnings} warnings")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "ok": self.ok, "drift": self.drift, "degraded": self.degraded,
                "checks": [{**asdict(c), "expected": _jsonable(c.expected), "actual": _jsonable(c.actual)}
                           for c in self.checks]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


# ----------------------------------------------------------------------------- comparison

def compare(config: Config, node: str, state: KernelState) -> Report:
    """Every modelled field of ``node``'s ends against the snapshot ``state``."""
    report = Report(node)
    add = report.checks.append
    for end in config.bonds_of(node):
        present = [t.name for t in end.tunnels if _check_tunnel(add, end, t, state)]
        _check_underlay(add, end, state, present)
        _check_bond(add, end, state)
    return report


def _check_underlay(add: Callable[[Check], None], end: LocalBond, state: KernelState, tunnels: list[str]) -> None:
    """Each present tunnel's path, judged by ``grebond.paths.assess`` (the same rules as check-paths
    and apply's plaintext refusal): routed, over WireGuard, one tunnel per underlay device."""
    infos = {p.tunnel: p for p in observed_paths(end, state) if p.tunnel in tunnels}
    findings = assess(end, list(infos.values()))
    plaintext = {f.tunnels[0]: f for f in findings if f.code == "plaintext"}
    for name, p in infos.items():
        if p.device is None:
            _check(add, name, "route", f"to {p.remote}", p.route_error, PATH)
        elif name not in plaintext:
            add(Check(name, "underlay", "wireguard", f"{p.device} (wireguard)", True))
        elif plaintext[name].level == "note":            # allow-plaintext-underlay
            add(Check(name, "underlay", "any (allow-plaintext-underlay)", f"{p.device} ({p.kind})", True))
        else:
            add(Check(name, "underlay", "wireguard", f"{p.device} ({p.kind or 'not wireguard'})", False, PATH))
    for f in findings:
        if f.code == "shared-device":
            add(Check(end.name, "underlay", "one tunnel per underlay device",
                      f"{', '.join(f.tunnels)} all route over {infos[f.tunnels[0]].device}", False, PATH))
        elif f.code in ("shared-next-hop", "recursive", "no-local-address"):
            add(Check(end.name if len(f.tunnels) > 1 else f.tunnels[0], f.code, "none", f.message, False, WARNING))


def _check(add: Callable[[Check], None], subject: str, name: str, expected: Any, actual: Any,
           severity: str = ERROR) -> bool:
    ok = bool(expected == actual)
    add(Check(subject, name, expected, actual, ok, severity))
    return ok


def _check_tunnel(add: Callable[[Check], None], end: LocalBond, t: LocalTunnel, state: KernelState) -> bool:
    """The tunnel's own fields; True when it exists with the right kind (so its path is worth checking)."""
    link = state.link(t.name)
    if not _check(add, t.name, "exists", True, link is not None):
        return False
    assert link is not None
    actual = actual_tunnel(link)
    for name, value in expected_tunnel(t).items():
        if not _check(add, t.name, name, value, actual.get(name)) and name == "kind":
            return False
    _check(add, t.name, "mtu", t.mtu, link.mtu)
    if (offloads := expected_offloads(end)) is not None:
        _check(add, t.name, "offloads", offloads, actual_offloads(link))
    _check_qdisc(add, t, actual_qdisc(link.qdisc))
    _check(add, t.name, "state", "up", link.state)
    _check(add, t.name, "master", end.name, link.master)
    if link.slave is not None and link.master == end.name:
        _check(add, t.name, "link-monitor", "up", link.slave.mii_status, WARNING)
    return True


def _check_qdisc(add: Callable[[Check], None], t: LocalTunnel, actual: dict[str, Any]) -> None:
    """A delayed tunnel's netem root qdisc, field by field; a tunnel without a delay is checked only
    for a netem delay left on it (any other root qdisc is the kernel's or the user's)."""
    expected = expected_qdisc(t.delay_us)
    if not t.delay_us:
        if actual["qdisc"] == "netem":
            _check(add, t.name, "delay", expected["delay"], actual["delay"])
        return
    if _check(add, t.name, "qdisc", expected["qdisc"], actual["qdisc"]):
        for name in ("delay", "qdisc-limit"):
            _check(add, t.name, name, expected[name], actual[name])


def _check_bond(add: Callable[[Check], None], end: LocalBond, state: KernelState) -> None:
    link = state.link(end.name)
    if not _check(add, end.name, "exists", True, link is not None):
        return
    assert link is not None
    if not _check(add, end.name, "kind", "bond", link.kind) or link.bond is None:
        return
    actual = link.bond
    for name, value in expected_bond(end).items():
        _check(add, end.name, name, value, getattr(actual, name))
    _check(add, end.name, "mtu", end.mtu, link.mtu)
    if (offloads := expected_offloads(end)) is not None:
        _check(add, end.name, "offloads", offloads, actual_offloads(link))
    _check(add, end.name, "mac", end.mac.lower(), (link.mac or "").lower())
    _check(add, end.name, "addresses", expected_addresses(end), actual_addresses(link))
    _check(add, end.name, "slaves", tuple(sorted(t.name for t in end.tunnels)),
           tuple(sorted(s.name for s in state.slaves_of(end.name))))
    _check(add, end.name, "state", "up", "up" if link.admin_up else "down")
    # carrier needs at least one slave that the monitor sees alive: depends on the peer
    _check(add, end.name, "carrier", "up", "up" if link.up else "down", WARNING)


# ----------------------------------------------------------------------------- live

def remotes_of(config: Config, node: str) -> list[str]:
    return [str(t.remote) for end in config.bonds_of(node) for t in end.tunnels]


def verify(config: Config, node: str, *, settle_s: float = 0.0,
           interval_s: float = 0.2) -> Report:
    """Read the kernel and compare; retry until it matches or ``settle_s`` has passed.

    Raises SystemAccessError (exit 3) when the kernel cannot be read.
    """

    deadline = time.monotonic() + settle_s
    remotes = remotes_of(config, node)
    offloaded = [name for end in config.bonds_of(node) for name in wanted_offloads(end)]
    while True:
        try:
            report = compare(config, node, read_state(remotes, offloaded))
        except SystemAccessError:
            raise
        except OSError as exc:
            raise SystemAccessError(f"cannot read the kernel: {exc}") from exc
        if report.ok or time.monotonic() >= deadline:
            return report
        time.sleep(interval_s)
