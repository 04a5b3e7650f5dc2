"""Which WireGuard peer carries a path, and the fallback reader's parse of `wg show DEV dump`.

The reads themselves (pyroute2 0.7.2 and 0.9.x against the kernel, and `wg` beside them) are in
tests/live/test_metrics.py.
"""

from __future__ import annotations

from grebond.kernel.wireguard import WireGuardPeer, parse_wg_dump, peer_for

DUMP = (
    "6COnYzp4vNNQdASExXIiUIeKtJG/eOCYQ/g3LXn5ZWU=\t4AWeHmsEI+9PJDQZPXtHRxOslzhyOfDjDhENut39kQM=\t51821\toff\n"
    "C2WYmyLsoYY/m3mrzBPqQhiF4CIdVggaUIwFxu34qjI=\t(none)\t172.30.1.2:51821\t10.65.0.6/32\t1796124781\t72524\t85812\toff\n"
    "AAAAmyLsoYY/m3mrzBPqQhiF4CIdVggaUIwFxu34qjI=\t(none)\t(none)\t(none)\t0\t0\t0\t25\n"
)
"""What wireguard-tools 1.0.20210914 printed in the lab for wg1 (second peer added by hand: no endpoint, no ips)."""


def test_parse_wg_dump() -> None:
    first, second = parse_wg_dump(DUMP)
    assert first == WireGuardPeer(public_key="C2WYmyLsoYY/m3mrzBPqQhiF4CIdVggaUIwFxu34qjI=",
                                  allowed_ips=("10.65.0.6/32",), latest_handshake=1796124781,
                                  endpoint="172.30.1.2:51821", rx_bytes=72524, tx_bytes=85812)
    assert (second.endpoint, second.allowed_ips, second.latest_handshake) == (None, (), 0)
    assert parse_wg_dump("") == () and parse_wg_dump("device line only\n") == ()


def test_peer_for_is_the_longest_allowed_ips_match() -> None:
    wide = WireGuardPeer("wide", ("10.65.0.0/16", "fd65::/64"), 100)
    narrow = WireGuardPeer("narrow", ("10.65.0.6/32",), 200)
    assert peer_for([wide, narrow], "10.65.0.6") is narrow
    assert peer_for([wide, narrow], "10.65.0.10") is wide
    assert peer_for([wide, narrow], "fd65::6") is wide
    assert peer_for([wide, narrow], "192.0.2.1") is None          # WireGuard drops it: no peer carries the path
    assert peer_for([], "10.65.0.6") is None
