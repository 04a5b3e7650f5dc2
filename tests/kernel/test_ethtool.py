"""The ethtool feature-string encoding, on hand-made buffers laid out as the kernel's
(struct ethtool_gstrings, ethtool_gfeatures, ethtool_sfeatures in include/uapi/linux/ethtool.h)."""

from __future__ import annotations

import struct

from grebond.kernel.ethtool import ETH_GSTRING_LEN, ETHTOOL_SFEATURES, active_states, parse_strings, set_request
from grebond.model import OFFLOADS

NAMES = ["tx-scatter-gather", "tx-checksum-ipv4", *OFFLOADS.values()]
# as in the kernel's netdev_features_strings: GSO, TSO and GRO are far apart; put one in the second block
INDEX = {name: i for i, name in enumerate(NAMES)} | {"rx-gro": 40}


def test_strings_table_is_split_and_unpadded() -> None:
    raw = b"".join(n.encode().ljust(ETH_GSTRING_LEN, b"\0") for n in NAMES)
    assert parse_strings(raw, len(NAMES)) == tuple(NAMES)


def test_active_bits_are_read_per_block() -> None:
    active = [(1 << INDEX["tx-generic-segmentation"]) | (1 << INDEX["tx-tcp-segmentation"]), 1 << (40 - 32)]
    reply = struct.pack("=II", 0x3A, 2) + b"".join(struct.pack("=IIII", 0xFFFFFFFF, 0, a, 0) for a in active)
    assert active_states(reply, 2, INDEX, tuple(OFFLOADS.values())) == {
        "tx-generic-segmentation": True, "tx-tcp-segmentation": True, "tx-tcp6-segmentation": False, "rx-gro": True}


def test_set_request_marks_each_feature_valid_and_sets_only_the_wanted_on() -> None:
    request = set_request(INDEX, 2, {"tx-generic-segmentation": False, "rx-gro": True})
    cmd, blocks, v0, r0, v1, r1 = struct.unpack("=IIIIII", request)
    assert (cmd, blocks) == (ETHTOOL_SFEATURES, 2)
    assert (v0, r0) == (1 << INDEX["tx-generic-segmentation"], 0)
    assert (v1, r1) == (1 << 8, 1 << 8)
