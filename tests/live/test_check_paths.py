"""``grebond check-paths`` on real routes: one topology per warning, and silence on a healthy one.

Why these topologies: the decisions themselves are unit-tested (tests/test_paths_unit.py); here
we prove the observations are right — the device and kind the kernel routes each remote over,
and an RTT measured through each path — and that the exit status is what a user scripts on.
check-paths needs no bond: it reads routes and pings the tunnels' remotes from their locals.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.topology import Lab

pytestmark = pytest.mark.kernel


def model(lab: Lab, mode: str = "balance-rr", extra: str = "") -> str:
    """The seed model over the lab's paths (underlay addresses from the topology itself)."""
    tunnels = "\n".join(f"      gre{p.index}: {{ends: {{r2: {lab.local('r2', p.index)}, r1: {lab.local('r1', p.index)}}}}}"
                        for p in lab.paths)
    return (f"version: 1\nlinks:\n  bond0:\n    mode: {mode}\n    ends:\n"
            f"      r2: {{addresses: [10.67.0.1/24]}}\n      r1: {{addresses: [10.67.0.2/24]}}\n"
            f"    tunnels:\n{tunnels}\n    underlay-mtu: 1440\n{extra}")


def check(lab: Lab, tmp_path: Path, text: str, *args: str) -> tuple[int, dict[str, Any]]:
    """Run check-paths as r2 with --json; return (exit status, parsed output)."""
    cfg = tmp_path / "grebond.yaml"
    cfg.write_text(text)
    cfg.chmod(0o600)
    cp: subprocess.CompletedProcess[str] = lab.grebond("r2", "check-paths", "-c", str(cfg), "--node", "r2",
                                                       "--json", *args, check=False)
    assert cp.returncode in (0, 1), f"exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
    return cp.returncode, json.loads(cp.stdout)


# The lab runs in TCG on a shared host: ICMP round trips over WireGuard jitter by several ms
# there (far more than on hardware). The healthy/unequal checks use this threshold, well below
# the 40 ms round-trip difference a 20 ms one-way delay makes, and well above TCG's jitter.
LAB_THRESHOLD = "15"


def explain(data: dict[str, Any]) -> str:
    """The findings and RTTs, for assertion messages (the whole JSON is too long to read)."""
    return "; ".join([f"{f['level']} {f['code']}: {f['message']}" for b in data["bonds"] for f in b["findings"]]
                     + [f"{p['tunnel']} rtt {p['rtt_ms']}" for b in data["bonds"] for p in b["paths"]])


def warnings(data: dict[str, Any]) -> list[str]:
    return [f["code"] for b in data["bonds"] for f in b["findings"] if f["level"] == "warning"]


def test_healthy_paths_then_unequal_delay_with_balance_rr(lab: Lab, tmp_path: Path) -> None:
    # healthy: two WireGuard paths, equal delay -> no warning, devices and RTTs observed
    rc, data = check(lab, tmp_path, model(lab), "--rtt-threshold", LAB_THRESHOLD)
    assert rc == 0, explain(data)
    got = {p["tunnel"]: p for p in data["bonds"][0]["paths"]}
    assert {t: (p["device"], p["kind"]) for t, p in got.items()} == \
        {"gre1": ("wg1", "wireguard"), "gre2": ("wg2", "wireguard")}
    assert all(p["rtt_ms"] is not None and p["rtt_ms"] < 50 for p in got.values()), got

    # without --node: the end is found from the underlay addresses present in r2
    cfg = tmp_path / "grebond.yaml"
    cp = lab.grebond("r2", "check-paths", "-c", str(cfg), "--rtt-threshold", LAB_THRESHOLD, check=False)
    assert cp.returncode == 0 and "on r2, to r1" in cp.stdout, cp.stdout + cp.stderr

    # path 2 gets 20 ms each way: balance-rr would reorder -> warning naming the mode to use
    lab.shape_path(2, delay_ms=20)
    rc, data = check(lab, tmp_path, model(lab), "--rtt-threshold", LAB_THRESHOLD)
    assert rc == 1 and warnings(data) == ["rtt-spread"], explain(data)
    finding = data["bonds"][0]["findings"][0]
    assert finding["tunnels"] == ["gre1", "gre2"] and "balance-xor" in finding["fix"]
    rtt = {p["tunnel"]: p["rtt_ms"] for p in data["bonds"][0]["paths"]}
    assert rtt["gre2"] - rtt["gre1"] >= 35, rtt

    # same paths, a mode that keeps each flow on one tunnel: fine
    rc, data = check(lab, tmp_path, model(lab, "balance-xor", "    xmit-hash-policy: layer3+4\n"))
    assert rc == 0, explain(data)
    # a threshold above the spread silences it too
    rc, data = check(lab, tmp_path, model(lab), "--rtt-threshold", "100")
    assert rc == 0, explain(data)


def test_two_tunnels_routed_over_one_device(lab: Lab, tmp_path: Path) -> None:
    # the remote of path 2 now routes over path 1's WireGuard device: one path counted twice
    lab.run("r2", "ip", "route", "replace", lab.remote("r2", 2), "dev", "wg1")
    rc, data = check(lab, tmp_path, model(lab), "--no-rtt")
    assert rc == 1 and warnings(data) == ["shared-device"], explain(data)
    f = data["bonds"][0]["findings"][0]
    assert f["tunnels"] == ["gre1", "gre2"] and "wg1" in f["message"]


def test_plain_veth_underlay_is_plaintext(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    lab = lab_factory(wireguard=False)
    rc, data = check(lab, tmp_path, model(lab))
    assert rc == 1 and warnings(data) == ["plaintext", "plaintext"], explain(data)
    assert {p["device"]: p["kind"] for p in data["bonds"][0]["paths"]} == {"veth1": "veth", "veth2": "veth"}
    # declared on purpose: said as a note, exit 0
    rc, data = check(lab, tmp_path, model(lab, extra="    allow-plaintext-underlay: true\n"))
    assert rc == 0 and warnings(data) == [], explain(data)
