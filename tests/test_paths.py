"""check-paths decisions on hand-made observations: no kernel, no pyroute2, no mocks.

Why: ``grebond.paths.assess`` is where every warning is decided; the kernel tests
(tests/live/test_check_paths.py) only prove the observations are read correctly.
"""

from __future__ import annotations

import json

import pytest

from grebond import paths
from grebond.kernel import echo
from grebond.model import LocalBond
from grebond.paths import BondReport, PathInfo, assess, exit_status
from grebond.validation import parse_config

from models import SEED_TUNNELS, seed_link


def end(mode: str = "balance-rr", extra: str = "") -> LocalBond:
    config, _ = parse_config(seed_link(mode, (*SEED_TUNNELS, ("gre3", "10.65.0.18", "10.65.0.22")), link_lines=extra))
    return config.bonds_of("r2")[0]


def path(i: int, dev: str | None = None, kind: str | None = "wireguard", gw: str | None = None,
         rtt: float | None = 1.0, **kw: object) -> PathInfo:
    remote = {1: "10.65.0.6", 2: "10.65.0.10", 3: "10.65.0.22"}[i]
    return PathInfo(f"gre{i}", f"10.65.0.{i}", remote, device=dev if dev else f"wg{i}", kind=kind,
                    gateway=gw, rtt_ms=rtt, **kw)  # type: ignore[arg-type]


def healthy() -> list[PathInfo]:
    return [path(1, rtt=1.0), path(2, rtt=1.3), path(3, rtt=2.9)]


def codes(findings: list[paths.Finding], level: str = "warning") -> list[str]:
    return [f.code for f in findings if f.level == level]


def test_distinct_wireguard_paths_of_similar_delay_are_fine() -> None:
    findings = assess(end(), healthy(), 5.0)
    assert findings == []
    assert exit_status([BondReport("bond0", "balance-rr", "r2", "r1", healthy(), findings)]) == 0


def test_two_tunnels_on_one_device_are_one_path() -> None:
    p = [path(1, dev="wg1"), path(2, dev="wg1"), path(3)]
    findings = assess(end(), p)
    assert codes(findings) == ["shared-device"]
    f = findings[0]
    assert f.tunnels == ("gre1", "gre2")
    assert "gre1 and gre2 both leave through wg1" in f.message and "not 2" in f.message


def test_shared_gateway_on_distinct_devices_is_flagged_once_per_group() -> None:
    p = [path(1, dev="eth1", kind=None, gw="192.0.2.1"), path(2, dev="eth2", kind=None, gw="192.0.2.1"),
         path(3, dev="eth3", kind=None, gw="192.0.2.9")]
    findings = assess(end(extra="    allow-plaintext-underlay: true\n"), p)
    assert codes(findings) == ["shared-next-hop"]
    assert findings[0].tunnels == ("gre1", "gre2") and "192.0.2.1" in findings[0].message
    assert codes(findings, "note") == ["plaintext"] * 3     # allowed: said, but not a warning


def test_same_device_and_gateway_is_reported_as_shared_device_only() -> None:
    p = [path(i, dev="eth0", kind=None, gw="192.0.2.1") for i in (1, 2, 3)]
    findings = assess(end(extra="    allow-plaintext-underlay: true\n"), p)
    assert codes(findings) == ["shared-device"]
    assert "gre1, gre2 and gre3 all leave through eth0" in findings[0].message


@pytest.mark.parametrize("kind", ["veth", None, "vlan"], ids=["veth", "physical", "vlan"])
def test_not_wireguard_is_plaintext(kind: str | None) -> None:
    p = [path(1, kind=kind), path(2), path(3)]
    findings = assess(end(), p)
    assert codes(findings) == ["plaintext"]
    assert findings[0].tunnels == ("gre1",) and "clear text" in findings[0].message
    assert "allow-plaintext-underlay" in findings[0].fix


@pytest.mark.parametrize("mode, warned", [("balance-rr", True), ("balance-xor", False),
                                          ("active-backup", False), ("broadcast", False)])
def test_unequal_delay_matters_only_when_the_mode_reorders(mode: str, warned: bool) -> None:
    extra = "    primary: gre1\n" if mode == "active-backup" else ""
    p = [path(1, rtt=1.1), path(2, rtt=21.4), path(3, rtt=1.0)]
    findings = assess(end(mode, extra), p, 5.0)
    assert codes(findings) == (["rtt-spread"] if warned else [])
    if warned:
        f = findings[0]
        assert f.tunnels == ("gre3", "gre2")               # fastest, slowest
        assert "20.4 ms" in f.message and "balance-rr" in f.message
        assert "balance-xor" in f.fix and "layer3+4" in f.fix   # names the recommended mode


def test_rtt_threshold_is_the_boundary() -> None:
    p = [path(1, rtt=1.0), path(2, rtt=6.0), path(3, rtt=3.0)]
    assert codes(assess(end(), p, 5.0)) == []               # exactly 5 ms: tolerated
    assert codes(assess(end(), p, 4.9)) == ["rtt-spread"]


def test_unmeasured_path_is_a_note_and_not_compared() -> None:
    p = [path(1, rtt=1.0), path(2, rtt=None, rtt_error="no reply to 5 echo requests"), path(3, rtt=1.2)]
    findings = assess(end(), p, 5.0)
    assert codes(findings) == [] and codes(findings, "note") == ["no-rtt"]
    # without a measurement attempt (--no-rtt) nothing is said at all
    assert assess(end(), [path(1, rtt=None), path(2, rtt=None), path(3, rtt=None)]) == []


def test_missing_route_local_address_and_recursion() -> None:
    p = [PathInfo("gre1", "10.65.0.2", "10.65.0.6", route_error="Network is unreachable"),
         path(2, local_present=False), path(3, dev="bond0", kind="bond")]
    findings = assess(end(), p, bond_devices=["bond0"])
    assert sorted(codes(findings)) == ["no-local-address", "no-route", "plaintext", "recursive"]
    assert "Network is unreachable" in next(f for f in findings if f.code == "no-route").message


def test_text_and_json_output_agree() -> None:
    p = [path(1, dev="wg1"), path(2, dev="wg1", rtt=30.0), path(3)]
    e = end()
    reports = [BondReport(e.name, e.mode.value, e.node, e.peer, p, assess(e, p))]
    text = paths.render_text(reports)
    assert "gre1" in text and "via wg1 (wireguard), on-link, rtt 1.0 ms" in text
    assert text.rstrip().endswith("2 warning(s)")
    data = json.loads(json.dumps(paths.as_json(reports)))
    assert data["status"] == 1 and data["warnings"] == 2
    assert [f["code"] for f in data["bonds"][0]["findings"]] == ["shared-device", "rtt-spread"]
    assert data["bonds"][0]["paths"][0]["next_hop"] == "10.65.0.6"


def test_checksum_of_an_echo_request() -> None:
    # RFC 1071 example-style check: the checksum of data with its checksum inserted is zero
    import struct
    body = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"grebond"
    csum = echo._checksum(body)
    assert echo._checksum(struct.pack("!BBHHH", 8, 0, csum, 0x1234, 1) + b"grebond") == 0


# --- weight copies and delays -------------------------------------------------------------------
def weighted(delay: str = "") -> LocalBond:
    """The seed with gre1 weighted 2 (copy gre1b over the same path) and, optionally, gre1 delayed."""
    text = seed_link().replace("        ends: {r2: 10.65.0.2, r1: 10.65.0.6}",
                               "        ends: {r2: 10.65.0.2, r1: 10.65.0.6}\n        weight: 2" +
                               (f"\n        delay: {delay}" if delay else ""))
    return parse_config(text)[0].bonds_of("r2")[0]


def copy_path(rtt: float | None = 1.0, dev: str = "wg1") -> PathInfo:
    return PathInfo("gre1b", "10.65.0.2", "10.65.0.6", device=dev, kind="wireguard", rtt_ms=rtt)


def test_weight_copies_share_their_tunnels_path_on_purpose() -> None:
    p = [PathInfo("gre1", "10.65.0.2", "10.65.0.6", device="wg1", kind="wireguard", rtt_ms=1.0), copy_path(),
         path(2, rtt=1.5)]
    assert assess(weighted(), p, 5.0) == []
    # but a copy and another tunnel of the file on one device are one path: named by the file's tunnels
    shared = [p[0], copy_path(), path(2, dev="wg1", rtt=1.5)]
    findings = assess(weighted(), shared, 5.0)
    assert codes(findings) == ["shared-device"]
    assert findings[0].tunnels == ("gre1", "gre1b", "gre2")
    assert "gre1 and gre2 both leave through wg1: they are one path, not 2" in findings[0].message


def unequal_paths() -> list[PathInfo]:
    """As measured in the lab on topology A: path 1 3.9 ms, path 2 22.5 ms (minimum ICMP RTTs)."""
    return [PathInfo("gre1", "10.65.0.2", "10.65.0.6", device="wg1", kind="wireguard", rtt_ms=3.9),
            copy_path(3.9), path(2, rtt=22.5)]


def test_unequal_rtts_suggest_the_delay_that_evens_them_out() -> None:
    e = weighted()
    findings = assess(e, unequal_paths(), 5.0)
    assert codes(findings) == ["rtt-spread"]
    f = findings[0]
    assert f.tunnels == ("gre1", "gre2") and "differ by 18.6 ms" in f.message
    assert f.fix.startswith("to keep balance-rr for single flows, set 'delay: 9.3ms' on gre1 (both ends;")
    assert "balance-xor" in f.fix
    assert paths.suggested(e, unequal_paths(), 5.0) == {"gre1": 9300}
    assert paths.suggested(weighted(), unequal_paths()[:2], 5.0) == {}       # one path measured
    assert paths.suggested(end("balance-xor"), [path(1, rtt=3.9), path(2, rtt=22.5)], 5.0) == {}   # no striping


def test_the_models_delays_count_in_the_comparison() -> None:
    """With gre1 delayed 9.3 ms on both ends its round trip is 3.9 + 18.6 = 22.5 ms: no warning,
    and the suggestion (which compares the raw paths) repeats the model's figure."""
    e = weighted("9.3ms")
    assert assess(e, unequal_paths(), 5.0) == []
    assert paths.suggested(e, unequal_paths(), 5.0) == {"gre1": 9300}
    under = assess(weighted("2ms"), unequal_paths(), 5.0)      # 7.9 vs 22.5 ms: still too far apart
    assert codes(under) == ["rtt-spread"] and "with the model's delays differ by 14.6 ms" in under[0].message


def test_suggested_delays_in_text_and_json() -> None:
    e = weighted()
    p = unequal_paths()
    report = BondReport(e.name, e.mode.value, e.node, e.peer, p, assess(e, p, 5.0), paths.suggested(e, p, 5.0))
    text = paths.render_text([report])
    assert ("  suggested delays (even out the round trips for balance-rr; put them in the model, the same for both "
            "ends): gre1 delay: 9.3ms\n") in text
    assert json.loads(json.dumps(paths.as_json([report])))["bonds"][0]["suggested_delays"] == {"gre1": "9.3ms"}
