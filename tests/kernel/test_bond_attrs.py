"""grebond.kernel.bond_attrs on synthetic and captured kernel messages, and beside each pyroute2.

Why pyroute2 appears at all, when the module does not use it: the reader decodes the same link
dump with pyroute2, so each version (Debian 12's 0.7.2, Debian 13's 0.7.7, PyPI's 0.9.x) must
still decode a bond that carries attributes 30 and 31, and must still lack them (the day one
gains them, these tests say so and the module can be reconsidered).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from grebond.errors import SystemAccessError
from grebond.kernel import bond_attrs as ba

from needs import need

REPO = Path(__file__).resolve().parents[2]
CAPTURED = Path(__file__).with_name("data")


def nla(kind: int, payload: bytes) -> bytes:
    """One attribute as the kernel lays it out (written here independently of the module)."""
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def kernel_link_message(name: str, info_data: bytes, index: int = 7, kind: bytes = b"bond") -> bytes:
    """An RTM_NEWLINK as a dump returns it: ifinfomsg, IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO."""
    linkinfo = nla(1, kind + b"\0") + nla(2, info_data)
    body = struct.pack("=BxHiII", 0, 1, index, 0x1003, 0) + nla(3, name.encode() + b"\0") + \
        nla(4, struct.pack("=I", 1362)) + nla(18, linkinfo)
    return struct.pack("=IHHII", 16 + len(body), 16, 2, 1, 0) + body


def kernel_bond_data(targets: list[str], missed_max: int = 2) -> bytes:
    """IFLA_INFO_DATA as bond_fill_info writes it (6.1 and 6.12 alike): ARP targets without, NS
    targets with NLA_F_NESTED, entries numbered by slot, MISSED_MAX after TLB_DYNAMIC_LB."""
    data = nla(1, b"\x00") + nla(3, struct.pack("=I", 0)) + nla(7, struct.pack("=I", 100))
    data += nla(8, nla(0, bytes([10, 67, 0, 2])))
    data += nla(9, struct.pack("=I", 4)) + nla(10, struct.pack("=I", 0))
    if targets:
        data += nla(31 | 0x8000, b"".join(nla(i, IPv6Address(t).packed) for i, t in enumerate(targets)))
    data += nla(27, b"\x01") + nla(30, bytes([missed_max]))
    return data


# ------------------------------------------------------------------------------- encoding

def test_encoding_is_what_the_kernel_parses() -> None:
    data = ba.encode_bond_attrs(3, ["fd67::2", "FE80::0:1"])
    assert data == (nla(30, b"\x03")
                    + nla(31 | 0x8000, nla(0, IPv6Address("fd67::2").packed) + nla(1, IPv6Address("fe80::1").packed)))
    assert len(data) == 8 + 4 + 2 * 20


def test_none_leaves_an_attribute_out_and_an_empty_list_clears() -> None:
    assert ba.encode_bond_attrs() == b""
    assert ba.encode_bond_attrs(missed_max=2) == nla(30, b"\x02")
    assert ba.encode_bond_attrs(ns_ip6_targets=[]) == struct.pack("=HH", 4, 31 | 0x8000)


@pytest.mark.parametrize(("targets", "message"), [
    (["10.67.0.2"], "not an IPv6 address"),
    (["::"], "unspecified, loopback or multicast"),
    (["::1"], "unspecified, loopback or multicast"),
    (["ff02::1"], "unspecified, loopback or multicast"),
    (["fd67::2", "fd67:0::2"], "listed twice"),
    ([f"fd67::{i + 1:x}" for i in range(17)], "at most 16"),
    (["fd67::2%bond0"], "no %scope"),
], ids=["ipv4", "unspecified", "loopback", "multicast", "duplicate", "seventeen", "scoped"])
def test_what_no_kernel_accepts_is_refused_before_sending(targets: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ba.encode_bond_attrs(ns_ip6_targets=targets)


@pytest.mark.parametrize("value", [0, 256, -1, True, 2.0])
def test_missed_max_outside_1_to_255_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"arp_missed_max .*1\.\.255"):
        ba.encode_bond_attrs(missed_max=value)  # type: ignore[arg-type]


def test_sixteen_targets_and_a_link_local_one_are_accepted() -> None:
    targets = ["fe80::1"] + [f"fd67::{i + 1:x}" for i in range(15)]
    assert ba.decode_bond_attrs(ba.encode_bond_attrs(ns_ip6_targets=targets)).ns_ip6_targets == tuple(targets)


def test_changelink_request_names_the_bond_and_asks_for_an_ack() -> None:
    raw = ba.changelink_request("bond0", 42, missed_max=2, ns_ip6_targets=["fd67::2"])
    length, msg_type, flags, seq, pid = struct.unpack_from("=IHHII", raw)
    assert (length, msg_type, flags, seq, pid) == (len(raw), 16, 0x5, 42, 0)   # RTM_NEWLINK, REQUEST|ACK
    assert not flags & 0x600, "NLM_F_CREATE/EXCL: a change must never create a device"
    assert struct.unpack_from("=BxHiII", raw, 16)[2] == 0     # by IFLA_IFNAME, not by index
    assert ba.decode_link(raw) == (0, "bond0", ba.BondAttrs(2, ("fd67::2",)))


def test_getlink_dump_asks_the_kernel_to_filter_bonds() -> None:
    raw = ba.getlink_request(None, 9)
    _, msg_type, flags, seq, _ = struct.unpack_from("=IHHII", raw)
    assert (msg_type, flags, seq) == (18, 0x301, 9)                # RTM_GETLINK, REQUEST|DUMP
    attrs = dict(ba._nlas(raw[32:]))
    assert attrs[29] == struct.pack("=I", 8)                     # IFLA_EXT_MASK: skip stats
    assert dict(ba._nlas(attrs[18])) == {1: b"bond"}             # IFLA_LINKINFO { INFO_KIND bond }
    one = ba.getlink_request("bond0", 3)
    assert struct.unpack_from("=IHHII", one)[2] == 0x1 and dict(ba._nlas(one[32:]))[3] == b"bond0\0"


# ------------------------------------------------------------------------------- decoding

def test_a_kernel_dump_decodes() -> None:
    msg = kernel_link_message("bond0", kernel_bond_data(["fd67::2", "fe80::1"], missed_max=5))
    assert ba.decode_link(msg) == (7, "bond0", ba.BondAttrs(5, ("fd67::2", "fe80::1")))


def test_no_ns_target_means_the_attribute_is_absent() -> None:
    msg = kernel_link_message("bond0", kernel_bond_data([]))
    assert ba.decode_link(msg)[2] == ba.BondAttrs(2, ())


def test_a_kernel_older_than_5_17_reports_no_missed_max() -> None:
    data = nla(1, b"\x00") + nla(7, struct.pack("=I", 100))
    assert ba.decode_link(kernel_link_message("bond0", data))[2] == ba.BondAttrs(None, ())


def test_a_link_that_is_no_bond_has_no_bond_attributes() -> None:
    msg = kernel_link_message("gre1", nla(30, b"\x02"), kind=b"ip6gretap")   # attribute 30 means else there
    assert ba.decode_link(msg) == (7, "gre1", None)


def test_truncated_attributes_are_ignored_not_misread() -> None:
    short = nla(31 | 0x8000, nla(0, b"\xfd\x67" + b"\0" * 10))        # 12 bytes, not 16
    assert ba.decode_bond_attrs(short + nla(30, b"\x02")) == ba.BondAttrs(2, ())
    assert ba.decode_bond_attrs(struct.pack("=HH", 200, 30) + b"\x02\0\0\0") == ba.BondAttrs(None, ())


def test_the_kernels_error_text_is_kept() -> None:
    # NLMSG_ERROR, NLM_F_CAPPED|NLM_F_ACK_TLVS: errno, the request's header, NLMSGERR_ATTR_MSG
    request_header = struct.pack("=IHHII", 60, 16, 5, 4, 0)
    payload = struct.pack("=i", -22) + request_header + nla(1, b"Invalid IPv6 address\0")
    msg = struct.pack("=IHHII", 16 + len(payload), 2, 0x300, 4, 1234) + payload
    assert ba.decode_error(msg) == (22, "Invalid IPv6 address")
    ack = struct.pack("=IHHII", 36, 2, 0x100, 4, 0) + struct.pack("=i", 0) + request_header
    assert ba.decode_error(ack) == (0, None)


def test_split_messages_walks_a_datagram() -> None:
    a = kernel_link_message("bond0", kernel_bond_data(["fd67::2"]), index=5)
    b = kernel_link_message("bond1", kernel_bond_data([]), index=6)
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + b"\0\0\0\0"
    got = [(t, seq, ba.decode_link(m)[:2] if t == 16 else None) for t, _, seq, m in ba.split_messages(a + b + done)]
    assert got == [(16, 1, (5, "bond0")), (16, 1, (6, "bond1")), (3, 1, None)]


@pytest.mark.parametrize("path", sorted(CAPTURED.glob("capture-*.json")), ids=lambda p: p.stem)
def test_messages_captured_from_real_kernels_decode(path: Path) -> None:
    """RTM_NEWLINK bytes the lab kernels sent (tests/kernel/data/capture.py), with what
    `ip -d -j link show` printed for the same bond at the same moment."""
    for case in json.loads(path.read_text())["cases"].values():
        _, _, attrs = ba.decode_link(bytes.fromhex(case["hex"]))
        assert attrs is not None
        assert attrs.missed_max == case["ip"]["arp_missed_max"]
        assert list(attrs.ns_ip6_targets) == (case["ip"]["ns_ip6_target"] or [])


# ------------------------------------------------------------------------- beside pyroute2

PYROUTE2 = {"installed": None, "0.7.2": REPO / ".lab" / "pyroute2-0.7.2", "0.7.7": REPO / ".lab" / "pyroute2-0.7.7"}

INTEROP = r"""
import importlib.metadata, json, sys
import pyroute2
from pyroute2 import IPBatch
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from grebond.kernel import bond_attrs as ba

def decode(raw):
    m = ifinfmsg(raw)
    m.decode()
    info = m.get_attr("IFLA_LINKINFO")
    data = info.get_attr("IFLA_INFO_DATA")
    return {"name": m.get_attr("IFLA_IFNAME"), "kind": info.get_attr("IFLA_INFO_KIND"),
            "names": [a[0] for a in data["attrs"]],
            "mode": data.get_attr("IFLA_BOND_MODE"), "arp_interval": data.get_attr("IFLA_BOND_ARP_INTERVAL"),
            "arp_ip_target": data.get_attr("IFLA_BOND_ARP_IP_TARGET"),
            "arp_validate": data.get_attr("IFLA_BOND_ARP_VALIDATE"),
            "tlb": data.get_attr("IFLA_BOND_TLB_DYNAMIC_LB")}

batch = IPBatch()
batch.link("add", ifname="bond0", kind="bond", bond_mode=0, bond_arp_interval=100,
           bond_missed_max=3, bond_ns_ip6_target=["fd67::2"])
sent = bytes(batch.batch)
info_data = dict(ba._nlas(dict(ba._nlas(dict(ba._nlas(sent[32:]))[18]))[2]))
print(json.dumps({
    "version": importlib.metadata.version("pyroute2"),   # Debian's package says __version__ 'unknown'
    "kernel_dump": decode(bytes.fromhex(sys.argv[1])),
    "our_request": decode(ba.changelink_request("bond0", 1, missed_max=3, ns_ip6_targets=["fd67::2"])),
    "pyroute2_sends": sorted(info_data),
}))
"""


@pytest.mark.parametrize("version", [pytest.param(v, marks=[pytest.mark.pinned] if PYROUTE2[v] else [])
                                     for v in PYROUTE2])
def test_pyroute2_decodes_around_the_two_attributes_and_still_lacks_them(version: str) -> None:
    path = PYROUTE2[version]
    if path is not None and not (path / "pyroute2").is_dir():
        need(False, f"pyroute2 {version} not installed; run: .venv/bin/pip install --no-deps --target "
                    f".lab/pyroute2-{version} pyroute2=={version}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (path, REPO) if p is not None)}
    dump = kernel_link_message("bond0", kernel_bond_data(["fd67::2", "fe80::1"], missed_max=5))
    cp = subprocess.run([sys.executable, "-c", INTEROP, dump.hex()], capture_output=True, text=True, env=env,
                        check=False)
    assert cp.returncode == 0, cp.stderr
    got = json.loads(cp.stdout)
    # "installed": the .venv's PyPI 0.9.x, or Debian's python3-pyroute2 in the package build
    assert got["version"] == version if path is not None else got["version"].startswith(("0.9", "0.7")), got["version"]
    kernel = got["kernel_dump"]
    # everything else in the dump still decodes where attributes 30 and 31 sit between and after
    assert (kernel["name"], kernel["kind"], kernel["mode"], kernel["arp_interval"]) == ("bond0", "bond", 0, 100)
    assert (kernel["arp_ip_target"], kernel["arp_validate"], kernel["tlb"]) == (["10.67.0.2"], 4, 1)
    # ... and pyroute2 still has no name for them: if this fails, pyroute2 learnt them
    assert [n for n in kernel["names"] if n == "UNKNOWN"] == ["UNKNOWN", "UNKNOWN"], kernel["names"]
    ours = got["our_request"]
    assert (ours["name"], ours["kind"], ours["names"]) == ("bond0", "bond", ["UNKNOWN", "UNKNOWN"])
    # pyroute2 drops bond_missed_max= and bond_ns_ip6_target= without a word: 1 mode, 7 arp_interval only
    assert got["pyroute2_sends"] == [1, 7]


# ------------------------------------------------------------- this host's netlink, read only

def test_reading_a_link_that_is_no_bond_or_none_says_so() -> None:
    """Real RTM_GETLINK round trips on this host (no privilege needed, nothing changed)."""
    with pytest.raises(SystemAccessError, match=r"^cannot read bond lo: it is not a bond$"):
        ba.read_bond_attrs("lo")
    with pytest.raises(SystemAccessError, match=r"^cannot read bond gblnone0: No such device \(no such interface\)$"):
        ba.read_bond_attrs("gblnone0")
    assert "lo" not in ba.read_bond_attrs()
