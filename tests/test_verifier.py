"""The verifier's comparison on hand-made kernel snapshots: what a user reads in `grebond verify`."""

from __future__ import annotations

import dataclasses

import pytest

from grebond.kernel.state import (
    KernelState,
    LinkState,
    Route,
    SlaveInfo,
)
from grebond.model import OFFLOADS
from grebond.status import collect
from grebond.status import lines as status_lines
from grebond.validation import load_config
from grebond.verifier import compare

from kernel_states import OFF, SEED, UP, matching_state


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_config(str(SEED))[0]


def failed(report) -> dict[tuple[str, str], tuple[object, object]]:  # type: ignore[no-untyped-def]
    return {(c.subject, c.field): (c.expected, c.actual) for c in report.failures}


def test_matching_kernel_passes_with_a_line_per_check(config) -> None:  # type: ignore[no-untyped-def]
    report = compare(config, "r2", matching_state(config))
    assert report.ok, report.lines()
    text = report.lines()
    assert "[ OK ] bond0 mode balance-rr" in text
    assert "[ OK ] gre1 remote 10.65.0.6" in text
    assert "[ OK ] gre2 underlay wireguard" in text
    assert "offloads" not in {c.field for c in report.checks}      # auto: the kernel's, not checked
    assert text[-1].startswith("r2: matches the model:") and "0 failed" in text[-1]
    fields = {c.field for c in report.checks}
    assert {"mode", "arp_interval", "arp_ip_targets", "arp_missed_max", "arp_validate", "mtu", "mac",
            "addresses", "slaves", "state", "local", "remote", "ttl", "key", "master"} <= fields


def test_drift_names_each_field_with_expected_and_actual(config) -> None:  # type: ignore[no-untyped-def]
    s = matching_state(config)
    links = dict(s.links)
    b = links["bond0"]
    links["bond0"] = dataclasses.replace(b, mtu=1500, bond=dataclasses.replace(b.bond, mode="active-backup",
                                                                               arp_missed_max=3))
    g2 = links["gre2"]
    links["gre2"] = dataclasses.replace(g2, master=None, slave=None, flags=0,
                                        tunnel=dataclasses.replace(g2.tunnel, remote="10.65.0.99"))
    links["eth9"] = LinkState(index=99, name="eth9", kind="veth", mtu=1402, mac=None, flags=UP,
                              operstate="UP", carrier=True, master="bond0")
    report = compare(config, "r2", KernelState(links=links, routes=s.routes))
    assert not report.ok
    got = failed(report)
    assert got[("bond0", "mode")] == ("balance-rr", "active-backup")
    assert got[("bond0", "mtu")] == (1402, 1500)
    assert got[("bond0", "arp_missed_max")] == (2, 3)
    assert got[("gre2", "remote")] == ("10.65.0.10", "10.65.0.99")
    assert got[("gre2", "master")] == ("bond0", None)
    assert got[("gre2", "state")] == ("up", "down")
    assert got[("bond0", "slaves")] == (("gre1", "gre2"), ("eth9", "gre1"))
    assert "[FAIL] bond0 mode: expected balance-rr, got active-backup" in report.lines()
    as_json = report.as_dict()
    assert as_json["ok"] is False and {"subject", "field", "expected", "actual", "ok", "severity"} <= \
        set(as_json["checks"][0])


def test_offloads_drift_names_each_feature() -> None:
    """`offloads: off` wants GSO/TSO/GRO off; a device where they are on (or half on) is drift."""
    off = load_config_text(SEED.read_text() + "    offloads: off\n")
    s = matching_state(off)
    assert compare(off, "r2", s).ok
    assert "[ OK ] gre1 offloads off" in compare(off, "r2", s).lines()
    links = dict(s.links)
    links["gre1"] = dataclasses.replace(links["gre1"], features=dict.fromkeys(OFFLOADS.values(), True))
    links["bond0"] = dataclasses.replace(links["bond0"], features={**OFF, "rx-gro": True})
    report = compare(off, "r2", KernelState(links=links, routes=s.routes))
    got = failed(report)
    assert got[("gre1", "offloads")] == ("off", "on")
    assert got[("bond0", "offloads")] == ("off", "gso=off tso=off tso6=off gro=on")
    assert "[FAIL] bond0 offloads: expected off, got gso=off tso=off tso6=off gro=on" in report.lines()


def load_config_text(text: str):  # type: ignore[no-untyped-def]
    from grebond.validation import parse_config

    config, _ = parse_config(text, "xor.yaml")
    return config


def test_missing_devices_and_wrong_kind(config) -> None:  # type: ignore[no-untyped-def]
    s = matching_state(config)
    links = {k: v for k, v in s.links.items() if k != "gre1"}
    links["bond0"] = dataclasses.replace(links["bond0"], kind="dummy", bond=None)
    got = failed(compare(config, "r2", KernelState(links=links, routes=s.routes)))
    assert got[("gre1", "exists")] == (True, False)
    assert got[("bond0", "kind")] == ("bond", "dummy")


def test_normalises_mac_case_and_ignores_link_local(config) -> None:  # type: ignore[no-untyped-def]
    report = compare(config, "r2", matching_state(config))
    mac = next(c for c in report.checks if c.field == "mac")
    assert mac.ok and mac.actual == config.bonds_of("r2")[0].mac.lower()


def test_plaintext_and_shared_underlay_are_reported(config) -> None:  # type: ignore[no-untyped-def]
    s = matching_state(config)
    routes = {r: Route(dst=r, oif="veth1", oif_kind="veth") for r in s.routes}
    got = failed(compare(config, "r2", KernelState(links=s.links, routes=routes)))
    assert got[("gre1", "underlay")] == ("wireguard", "veth1 (veth)")
    assert got[("bond0", "underlay")] == ("one tunnel per underlay device", "gre1, gre2 all route over veth1")
    no_route = dict.fromkeys(s.routes)
    assert failed(compare(config, "r2", KernelState(links=s.links, routes=no_route)))[("gre1", "route")] \
        == ("to 10.65.0.6", "no route (unreachable)")


def test_path_warnings_come_from_the_path_rules_and_are_not_drift(config) -> None:  # type: ignore[no-untyped-def]
    s = matching_state(config)
    assert not any(c.severity == "warning" and not c.ok for c in compare(config, "r2", s).checks)
    routes = {r: Route(dst=r, oif=route.oif, oif_kind="wireguard", gateway="10.65.9.1")
              for r, route in s.routes.items() if route is not None}
    links = {n: dataclasses.replace(link, addresses=()) if n == "wg1" else link for n, link in s.links.items()}
    report = compare(config, "r2", KernelState(links=links, routes=routes))
    assert report.ok, report.lines()
    warned = {(c.subject, c.field) for c in report.checks if not c.ok}
    assert warned == {("bond0", "shared-next-hop"), ("gre1", "no-local-address")}
    assert any(line.startswith("[WARN] bond0 shared-next-hop: expected none, got gre1 and gre2 both go through next hop")
               for line in report.lines()), report.lines()


def test_no_carrier_is_a_warning_not_drift(config) -> None:  # type: ignore[no-untyped-def]
    s = matching_state(config)
    links = dict(s.links)
    links["bond0"] = dataclasses.replace(links["bond0"], carrier=False, operstate="DOWN")
    links["gre1"] = dataclasses.replace(links["gre1"], slave=SlaveInfo("active", "down", 3))
    report = compare(config, "r2", KernelState(links=links, routes=s.routes))
    assert report.ok
    assert "[WARN] bond0 carrier: expected up, got down" in report.lines()
    assert "[WARN] gre1 link-monitor: expected up, got down" in report.lines()


def test_status_shows_path_state_and_traffic_share(config) -> None:  # type: ignore[no-untyped-def]
    bonds = collect(config, ["r2"], matching_state(config))
    [bond] = bonds
    assert bond.mode == "balance-rr" and bond.monitor.startswith("arp 100ms x2")
    g1, g2 = bond.tunnels
    assert g1.path == "10.65.0.2 -> 10.65.0.6 via wg1"
    assert (g1.slave_state, g1.monitor_status, g1.mtu) == ("active", "up", 1402)
    assert round(g1.tx_share, 2) == 0.33 and round(g2.tx_share, 2) == 0.67
    text = "\n".join(status_lines(bonds))
    assert "gre2" in text and "67%" in text


def test_tunnels_sharing_a_path_are_a_degraded_underlay_not_drift(config) -> None:  # type: ignore[no-untyped-def]
    """The IGP moved gre2 onto gre1's WireGuard path (an intermediate router died): the configuration
    still matches, so verify says so, and names the underlay as degraded (exit 4, its own JSON field)."""
    state = matching_state(config)
    routes = dict(state.routes)
    routes["10.65.0.10"] = dataclasses.replace(routes["10.65.0.10"], oif="wg1")
    report = compare(config, "r2", dataclasses.replace(state, routes=routes))
    assert not report.ok and not report.drift and report.degraded
    assert report.as_dict()["degraded"] is True and report.as_dict()["drift"] is False
    assert "[PATH] bond0 underlay: expected one tunnel per underlay device, got gre1, gre2 all route over wg1" \
        in report.lines()
    assert report.lines()[-1].startswith("r2: matches the model, but the underlay is DEGRADED")
    bonds = collect(config, ["r2"], dataclasses.replace(state, routes=routes))
    text = "\n".join(status_lines(bonds))
    assert "warning: bond0: gre1 and gre2 both leave through wg1" in text


def test_drift_wins_over_a_degraded_underlay(config) -> None:  # type: ignore[no-untyped-def]
    state = matching_state(config)
    routes = dict(state.routes)
    routes["10.65.0.10"] = None                                   # gre2's path down
    bond = state.links["bond0"]
    assert bond.bond is not None
    links = {**state.links, "bond0": dataclasses.replace(bond, mtu=1500)}
    report = compare(config, "r2", dataclasses.replace(state, routes=routes, links=links))
    assert report.drift and not report.degraded
    assert "[PATH] gre2 route: expected to 10.65.0.10, got no route (unreachable)" in report.lines()


# --- weight and delay (examples/unequal-paths.yaml) ---------------------------------------------
UNEQUAL = SEED.parent / "unequal-paths.yaml"


def with_qdisc(state: KernelState, name: str, qdisc: object) -> KernelState:
    links = dict(state.links)
    links[name] = dataclasses.replace(links[name], qdisc=qdisc)  # type: ignore[arg-type]
    return KernelState(links=links, routes=state.routes)


def test_weight_copies_share_a_path_without_degrading_it() -> None:
    """gre1 and its copy gre1b both route over wg1 on purpose: not '[PATH] tunnels share one'."""
    unequal = load_config(str(UNEQUAL))[0]
    report = compare(unequal, "r2", matching_state(unequal))
    assert report.ok and not report.degraded, report.lines()
    text = report.lines()
    for line in ("[ OK ] gre1 qdisc netem", "[ OK ] gre1 delay 9.3ms", "[ OK ] gre1 qdisc-limit 10000",
                 "[ OK ] gre1b delay 9.3ms", "[ OK ] gre1b key 1", "[ OK ] bond0 slaves gre1,gre1b,gre2"):
        assert line in text, text
    assert not any(line.startswith("[ OK ] gre2 delay") for line in text)   # no delay modelled, no netem there


def test_delay_drift_is_reported_field_by_field() -> None:
    from grebond.kernel.state import QdiscInfo

    unequal = load_config(str(UNEQUAL))[0]
    state = with_qdisc(with_qdisc(with_qdisc(matching_state(unequal), "gre1", QdiscInfo("netem", 3000, 1000)),
                                  "gre1b", QdiscInfo("fq_codel")), "gre2", QdiscInfo("netem", 9300, 10000))
    report = compare(unequal, "r2", state)
    assert report.drift
    assert failed(report) == {("gre1", "delay"): ("9.3ms", "3ms"), ("gre1", "qdisc-limit"): (10000, 1000),
                              ("gre1b", "qdisc"): ("netem", "fq_codel"), ("gre2", "delay"): ("none", "9.3ms")}
    assert "[FAIL] gre1 delay: expected 9.3ms, got 3ms" in report.lines()
    assert "[FAIL] gre2 delay: expected none, got 9.3ms" in report.lines()
