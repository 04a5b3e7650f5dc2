"""The kernel state the model asks for, in the kernel's own terms, and the same fields read off a snapshot.

Pure. The verifier compares these two sides field by field; the kernel plan converges the
second to the first. Keeping both here, below both of them, means they can never disagree on
what a field is called or how it is normalised (sorted, compressed IPv6, no link-local).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_interface
from typing import Any

from grebond.kernel.state import BondInfo, LinkState, QdiscInfo
from grebond.model import NETEM_LIMIT, OFFLOADS, BondValue, LocalBond, LocalTunnel, bond_options, format_delay

BOND_FIELDS = {"arp_ip_target": "arp_ip_targets", "ns_ip6_target": "ns_ip6_targets"}
"""``model.bond_options`` name -> ``BondInfo`` field, where they differ (the rest are the same)."""


def expected_bond(bond: LocalBond) -> dict[str, Any]:
    """The bond options the kernel must hold, by ``BondInfo`` field, with the values a snapshot has."""
    return {BOND_FIELDS.get(name, name): _kernel_value(value) for name, value in bond_options(bond).items()}


def _kernel_value(value: BondValue) -> Any:
    return tuple(str(a) for a in value) if isinstance(value, tuple) else value


def actual_bond(info: BondInfo, names: Iterable[str]) -> dict[str, Any]:
    """The same fields, as the kernel holds them."""
    return {name: getattr(info, name) for name in names}


def expected_tunnel(t: LocalTunnel) -> dict[str, Any]:
    """The tunnel parameters the kernel cannot change in place (a difference means recreate)."""
    exp: dict[str, Any] = {"kind": t.kind, "local": str(t.local), "remote": str(t.remote), "ttl": t.ttl,
                           "key": t.key}
    if t.kind == "ip6gretap":
        exp["encaplimit"] = t.encaplimit
    return exp


def actual_tunnel(link: LinkState) -> dict[str, Any]:
    tun = link.tunnel
    if tun is None:
        return {"kind": link.kind}
    key: Any = tun.okey if tun.ikey == tun.okey else f"in {tun.ikey} out {tun.okey}"
    return {"kind": link.kind, "local": tun.local, "remote": tun.remote, "ttl": tun.ttl, "key": key,
            "encaplimit": tun.encaplimit}


def tunnel_drift(t: LocalTunnel, link: LinkState) -> dict[str, tuple[Any, Any]]:
    """Field -> (kernel's value, model's value) for each fixed parameter that differs."""
    actual = actual_tunnel(link)
    return {k: (actual.get(k), v) for k, v in expected_tunnel(t).items() if actual.get(k) != v}


def expected_qdisc(delay_us: int | None) -> dict[str, Any]:
    """A tunnel's root qdisc as the model wants it: netem with its delay and limit when it has a
    delay; otherwise only that no netem delays it (any other qdisc is the user's or the kernel's).
    Takes the delay alone: the networkd backend reads it back from its files, not from a model."""
    if not delay_us:
        return {"delay": "none"}
    return {"qdisc": "netem", "delay": format_delay(delay_us), "qdisc-limit": NETEM_LIMIT}


def actual_qdisc(q: QdiscInfo | None) -> dict[str, Any]:
    """A root qdisc as the fields ``expected_qdisc`` names (delay 'none' unless it is netem)."""
    if q is None or q.kind != "netem":
        return {"qdisc": q.kind if q is not None else "none", "delay": "none", "qdisc-limit": None}
    return {"qdisc": "netem", "delay": format_delay(q.delay_us or 0), "qdisc-limit": q.limit}


def delay_drift(delay_us: int | None, q: QdiscInfo | None) -> dict[str, tuple[Any, Any]]:
    """Field -> (kernel's value, model's value) where a root qdisc differs from what the delay wants."""
    actual = actual_qdisc(q)
    return {k: (actual[k], v) for k, v in expected_qdisc(delay_us).items() if actual[k] != v}


def on_off(state: bool) -> str:
    return "on" if state else "off"


def expected_offloads(bond: LocalBond) -> str | None:
    """'on' or 'off' for the bond and each tunnel; None when the model leaves them to the kernel."""
    return None if bond.offloads is None else on_off(bond.offloads)


def actual_offloads(link: LinkState) -> str:
    """'on' or 'off' when every feature of ``model.OFFLOADS`` agrees, else each one's state."""
    states = {short: link.features.get(name) for short, name in OFFLOADS.items()}
    if all(v is True for v in states.values()):
        return "on"
    if all(v is False for v in states.values()):
        return "off"
    return " ".join(f"{short}={'unknown' if v is None else on_off(v)}" for short, v in states.items())


def wanted_offloads(bond: LocalBond) -> dict[str, bool]:
    """Interface -> offloads on (True) or off, for the tunnels and the bond (empty: the kernel's choice)."""
    if bond.offloads is None:
        return {}
    return dict.fromkeys([*(t.name for t in bond.tunnels), bond.name], bond.offloads)


def offload_features(on: bool) -> dict[str, bool]:
    """Every kernel feature ``offloads: on`` or ``off`` sets, with its wanted state."""
    return dict.fromkeys(OFFLOADS.values(), on)


def normalised_addresses(values: Iterable[Any]) -> tuple[str, ...]:
    """Sorted, compressed, without IPv6 link-local (the kernel adds those itself)."""
    out = {str(ip_interface(str(v))) for v in values}
    return tuple(sorted(a for a in out if not a.lower().startswith("fe80:")))


def expected_addresses(bond: LocalBond) -> tuple[str, ...]:
    return normalised_addresses(bond.addresses)


def actual_addresses(link: LinkState) -> tuple[str, ...]:
    return normalised_addresses(link.addresses)
