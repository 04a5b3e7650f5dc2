"""Prove the lab itself works, without grebond: a hand-built bond of two gretaps over WireGuard.

Why: if these fail, a grebond kernel test failure says nothing about grebond.
Numbers (MTU 1402 over WireGuard 1440, largest DF ping 1374) are from lab-facts.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from lab.topology import SEED_V4, SEED_V6, Lab, lab_netns, root_links, wait_for

pytestmark = pytest.mark.kernel

BOND_IP = {"r2": "10.67.0.1", "r1": "10.67.0.2"}


def build_bond(lab: Lab, router: str, mtu: int = 1402) -> None:
    """gretap per path (ttl 255) enslaved (down) into a balance-rr bond with an ARP monitor on the peer."""
    peer = lab.peer(router).name
    lines = [f"link add name gt{p.index} type gretap local {lab.local(router, p.index)} "
             f"remote {lab.remote(router, p.index)} ttl 255" for p in lab.paths]
    lines += [f"link add name bond0 type bond mode balance-rr arp_interval 100 arp_ip_target {BOND_IP[peer]}",
              f"link set bond0 mtu {mtu}"]
    for p in lab.paths:
        lines += [f"link set gt{p.index} down", f"link set gt{p.index} master bond0", f"link set gt{p.index} up"]
    lines += [f"addr add {BOND_IP[router]}/24 dev bond0", "link set bond0 up"]
    lab.batch(router, lines)


def test_bond_over_two_wireguard_paths(lab: Lab) -> None:
    build_bond(lab, "r2")
    build_bond(lab, "r1")
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=20), \
        "bond never came up"
    res = lab.ping("r2", BOND_IP["r1"], count=10, interval=0.1)
    assert res.ok, res.output
    for p in lab.paths:  # the gretaps took the bond's MTU, the bond kept ours
        mtu = re.search(r"mtu (\d+)", lab.run("r2", "ip", "link", "show", f"gt{p.index}").stdout)
        assert mtu and mtu.group(1) == "1402"
    fits = lab.ping("r2", BOND_IP["r1"], count=3, size=1374, df=True)
    assert fits.ok, fits.output
    too_big = lab.ping("r2", BOND_IP["r1"], count=3, size=1375, df=True)
    assert too_big.received == 0, too_big.output


@pytest.mark.parametrize("wireguard", [True, False], ids=["wg", "veth"])
@pytest.mark.parametrize("addresses", [SEED_V4[:3], SEED_V6[:2]], ids=["v4x3", "v6x2"])
def test_underlay_paths_break_and_heal(lab_factory: Callable[..., Lab], wireguard: bool,
                                       addresses: tuple[tuple[str, str], ...]) -> None:
    lab = lab_factory(addresses=addresses, wireguard=wireguard)
    for p in lab.paths:
        res = lab.ping("r2", lab.remote("r2", p.index), count=2, interval=0.2)
        assert res.ok, f"path {p.index}: {res.output}"
    lab.break_path(1)
    assert lab.ping("r2", lab.remote("r2", 1), count=3, interval=0.2).received == 0
    assert lab.ping("r1", lab.remote("r1", 2), count=2, interval=0.2).ok  # other paths unaffected
    assert "state UP" in lab.run("r2", "ip", "link", "show", lab.path(1).veth).stdout  # carrier stays
    lab.heal_path(1)
    assert wait_for(lambda: lab.ping("r2", lab.remote("r2", 1), count=1).ok, timeout=10)
    lab.shape_path(2, rate_mbit=20, delay_ms=10)
    res = lab.ping("r2", lab.remote("r2", 2), count=3, interval=0.2)
    assert res.ok and res.rtt_avg_ms is not None and res.rtt_avg_ms >= 20, res.output
    lab.shape_path(2)


def test_lab_cleans_up_namespaces(lab_factory: Callable[..., Lab]) -> None:
    ns_before, links_before = lab_netns(), root_links()
    lab = lab_factory(paths=4)
    assert len(lab_netns()) == len(ns_before) + 2
    proc = lab.spawn("r1", "sleep", "600")
    lab.run("r2", "ip", "link", "add", "name", "bond0", "type", "bond")  # the test's own leftovers
    lab.break_path(3)
    lab.teardown()
    assert proc.poll() is not None
    assert lab_netns() == ns_before
    assert root_links() == links_before


@pytest.mark.kernel(root_ns=True)
def test_lab_cleans_up_root_namespace(lab_factory: Callable[..., Lab]) -> None:
    links_before = set(root_links())
    lab = lab_factory(root_router="r2")
    assert lab.r2.is_root and lab.r2.netns is None
    assert {"veth1", "veth2", "wg1", "wg2"} <= set(root_links())
    build_bond(lab, "r2")
    build_bond(lab, "r1")
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1).ok, timeout=20)
    lab.shape_path(1, delay_ms=5)
    lab.teardown()
    assert set(root_links()) == links_before
    assert "10.65.0." not in lab.run("r2", "ip", "addr", "show").stdout
    assert "netem" not in lab.run("r2", "tc", "qdisc", "show").stdout
    assert lab_netns() == []
