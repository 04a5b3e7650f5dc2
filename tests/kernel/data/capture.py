"""Capture real kernels' RTM_NEWLINK bytes of bonds, the fixtures of tests/kernel/test_bond_attrs.py.

Run as root in the lab guest (it creates and deletes bonds nsfix0-2 in the current namespace):
``python tests/kernel/data/capture.py OUTDIR``; writes OUTDIR/capture-<kernel release>.json with,
per case, the message bytes, grebond's decoding and what `ip -d -j link show` printed, plus what
the module and the kernel answered to valid and invalid requests (and the kernel's log lines).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from grebond.kernel import bond_attrs as ba

FD67 = "fd67" + "00" * 13


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and cp.returncode:
        raise RuntimeError(f"{argv}: {cp.stderr}")
    return cp


def raw(name: str) -> bytes:
    rtnl = ba._Rtnl()
    try:
        return next(m for _, m in rtnl.request(ba.getlink_request(name, rtnl.next_seq())))
    finally:
        rtnl.close()


def case(out: dict[str, Any], key: str, name: str) -> None:
    message = raw(name)
    info = json.loads(sh("ip", "-d", "-j", "link", "show", name).stdout)[0]["linkinfo"]["info_data"]
    keys = ("mode", "arp_interval", "arp_validate", "arp_missed_max", "arp_ip_target", "ns_ip6_target", "miimon")
    out["cases"][key] = {"hex": message.hex(), "decoded": repr(ba.decode_link(message)),
                         "ip": {k: info.get(k) for k in keys}}


def raw_change(rtnl: ba._Rtnl, name: str, info_data: bytes) -> str:
    """A change request grebond's encoder would never build: what does the kernel answer?"""
    linkinfo = ba._nla(ba.IFLA_INFO_KIND, b"bond") + ba._nla(ba.IFLA_INFO_DATA, info_data)
    body = ba._IFINFOMSG.pack(0, 0, 0, 0, 0) + ba._nla(ba.IFLA_IFNAME, name.encode() + b"\0") + \
        ba._nla(ba.IFLA_LINKINFO, linkinfo)
    msg = ba._NLMSGHDR.pack(16 + len(body), ba.RTM_NEWLINK, ba.NLM_F_REQUEST | ba.NLM_F_ACK, rtnl.next_seq(), 0) + body
    try:
        list(rtnl.request(msg))
    except OSError as exc:
        return f"errno {exc.errno}: {exc.strerror}"
    return "ok: " + repr(ba.read_bond_attrs(name))


def main() -> None:
    outdir = Path(sys.argv[1])
    out: dict[str, Any] = {"kernel": platform.release(), "how": "tests/kernel/data/capture.py in the lab guest",
                           "cases": {}, "module": {}}
    res = out["module"]
    sh("ip", "link", "add", "nsfix0", "type", "bond", "mode", "balance-rr", "arp_interval", "100", "arp_validate",
       "filter", "arp_ip_target", "10.67.0.2", "ns_ip6_target", "fd67::2,fe80::1,fd00::3", "arp_missed_max", "5")
    case(out, "ip_set_3_targets_missed5", "nsfix0")
    sh("ip", "link", "set", "dev", "nsfix0", "type", "bond", "ns_ip6_target", "")   # iproute2's way to clear
    case(out, "ip_set_empty", "nsfix0")
    sh("ip", "link", "add", "nsfix1", "type", "bond", "mode", "active-backup")
    case(out, "plain_active_backup", "nsfix1")
    res["set"] = repr(ba.set_bond_attrs("nsfix1", missed_max=3, ns_ip6_targets=["fd67::2", "fd67::3"]))
    case(out, "module_set_2_targets_missed3", "nsfix1")
    res["read_all"] = repr(ba.read_bond_attrs())
    res["change"] = repr(ba.set_bond_attrs("nsfix1", ns_ip6_targets=["fd67::9"]))
    res["clear"] = repr(ba.set_bond_attrs("nsfix1", ns_ip6_targets=[]))
    res["ll"] = repr(ba.set_bond_attrs("nsfix1", ns_ip6_targets=["fe80::5"]))
    res["16"] = repr(ba.set_bond_attrs("nsfix1", ns_ip6_targets=[f"fd67::{i + 1:x}" for i in range(16)]))
    case(out, "module_16_targets", "nsfix1")
    for label, name in {"nodev": "nosuch0", "notbond": "lo"}.items():
        try:
            ba.set_bond_attrs(name, missed_max=2)
            res[label] = "accepted?!"
        except Exception as exc:
            res[label] = f"{type(exc).__name__}: {exc}"
    rtnl = ba._Rtnl()
    nested = ba.IFLA_BOND_NS_IP6_TARGET | ba.NLA_F_NESTED
    res["kernel_multicast"] = raw_change(rtnl, "nsfix1", ba._nla(nested, ba._nla(0, bytes.fromhex("ff02" + "00" * 13 + "01"))))
    res["kernel_missed0"] = raw_change(rtnl, "nsfix1", ba._nla(ba.IFLA_BOND_MISSED_MAX, b"\0"))
    twice = ba._nla(0, bytes.fromhex(FD67 + "02")) + ba._nla(1, bytes.fromhex(FD67 + "02"))
    res["kernel_dup"] = raw_change(rtnl, "nsfix1", ba._nla(ba.IFLA_BOND_NS_IP6_TARGET, twice))
    res["kernel_noflag_nest"] = raw_change(rtnl, "nsfix1", ba._nla(ba.IFLA_BOND_NS_IP6_TARGET,
                                                                   ba._nla(0, bytes.fromhex(FD67 + "07"))))
    rtnl.close()
    sh("ip", "link", "add", "nsfix2", "type", "bond", "mode", "802.3ad")
    for label, kw in {"lacp_missed": {"missed_max": 3}, "lacp_ns": {"ns_ip6_targets": ["fd67::2"]}}.items():
        try:
            res[label] = repr(ba.set_bond_attrs("nsfix2", **kw))   # type: ignore[arg-type]
        except Exception as exc:
            res[label] = f"{type(exc).__name__}: {exc}"
    case(out, "lacp", "nsfix2")
    out["dmesg"] = [ln for ln in sh("dmesg").stdout.splitlines() if "nsfix" in ln][-20:]
    for name in ("nsfix0", "nsfix1", "nsfix2"):
        sh("ip", "link", "del", name, check=False)
    (outdir / f"capture-{platform.release()}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
