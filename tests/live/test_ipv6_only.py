"""examples/ipv6-only.yaml with the kernel backend in the lab: an IPv6-only bond over ip6gretap over
IPv6 WireGuard paths, probed by the kernel's NS monitor. Asserted as a user sees it: ping6 across
the bond, the largest unfragmented payload, the NS targets in ``ip -d link``, verify's exit status
and lines, and traffic that keeps flowing when one path silently dies.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from lab.topology import SEED_V6, Lab, wait_for

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ipv6-only.yaml"
BOND = "bond6"
BOND_IP = {"r2": "fd67::1", "r1": "fd67::2"}
PEER = {"r2": "r1", "r1": "r2"}
BOND_MTU = 1362
RATE = 100                          # pings per second in the failover run
_PING_LINE = re.compile(r"^\[(\d+\.\d+)\] .*icmp_seq=(\d+) .*time=([\d.]+) ms", re.M)


def grebond(lab: Lab, router: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.grebond(router, *args, check=False, env={**os.environ, "GREBOND_LOCK": "/tmp/grebond-lab.lock"})


def apply(lab: Lab, router: str, cfg: str) -> str:
    cp = grebond(lab, router, "apply", "--backend", "kernel", "-c", cfg, "--timeout", "10")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp.stdout


def ns_targets(lab: Lab, router: str, bond: str = BOND) -> list[str]:
    """The NS targets as iproute2 prints them (``ip -d link show``), not as grebond reads them."""
    out = lab.run(router, "ip", "-d", "link", "show", bond).stdout
    m = re.search(r"ns_ip6_target (\S+)", out)
    return m.group(1).split(",") if m else []


def mii_status(lab: Lab, router: str, slave: str) -> str:
    text = lab.run(router, "cat", f"/proc/net/bonding/{BOND}").stdout
    block = text.split(f"Slave Interface: {slave}", 1)[1].split("Slave Interface:", 1)[0]
    m = re.search(r"MII Status: (\S+)", block)
    return m.group(1) if m else "unknown"


def set_broken(lab: Lab, i: int, broken: bool) -> tuple[float, float]:
    """netem loss 100% on path i's veth, both ends at once (as benchmarks/dataplane.py's
    set_broken); returns the time before either tc started (so a window is, if anything,
    overstated) and how long tc took."""
    p = lab.path(i)
    p.broken = broken               # the lab's teardown removes the qdisc
    t = time.time()
    procs = []
    for r in lab.routers.values():
        tc = ["tc", *(["-n", r.netns] if r.netns else [])]
        argv = [*tc, "qdisc", "replace", "dev", p.veth, "root", "netem", "limit", "100000", "loss", "100%"] \
            if broken else [*tc, "qdisc", "del", "dev", p.veth, "root"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for proc in procs:
        assert proc.wait(timeout=30) == 0
    return t, time.time() - t


def loss_window(out: str, t_break: float, t_heal: float) -> tuple[float, list[float], int]:
    """(loss window s, when each lost packet was sent after the break, sent in the outage), as
    benchmarks/dataplane.py measures it: from the break to the send time of the last packet lost before the heal. A reply dates
    its request exactly (reply time - RTT); a lost one is placed between its neighbours."""
    sent_at = {int(m.group(2)): float(m.group(1)) - float(m.group(3)) / 1000 for m in _PING_LINE.finditer(out)}
    sent = int(re.search(r"(\d+) packets transmitted", out).group(1))  # type: ignore[union-attr]
    known = sorted(sent_at.items())
    times = dict(sent_at)
    for seq in range(1, sent + 1):
        if seq not in times:
            before = max((k for k in known if k[0] < seq), default=None)
            after = min((k for k in known if k[0] > seq), default=None)
            if before and after:
                times[seq] = before[1] + (after[1] - before[1]) * (seq - before[0]) / (after[0] - before[0])
            elif before:
                times[seq] = before[1] + (seq - before[0]) / RATE
    in_outage = [s for s in range(1, sent + 1) if s in times and t_break - 0.05 <= times[s] < t_heal]
    lost = [s for s in in_outage if s not in sent_at]
    window = max(times[s] for s in lost) - t_break + 1 / RATE if lost else 0.0
    return window, [round(times[s] - t_break, 2) for s in lost], len(in_outage)


def test_ipv6_only_bond_with_the_ns_monitor(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(addresses=SEED_V6[:2], wg_mtu=1420)
    cfg = tmp_path / "grebond.yaml"
    cfg.write_text(EXAMPLE.read_text())
    cfg.chmod(0o644)
    for router in ("r2", "r1"):
        assert f"created bond {BOND}" in apply(lab, router, str(cfg))

    # the kernel holds the NS targets grebond set over its own netlink request; no IPv4 anywhere
    for router in ("r2", "r1"):
        assert ns_targets(lab, router) == [BOND_IP[PEER[router]]]
        assert "arp_missed_max 2" in lab.run(router, "ip", "-d", "link", "show", BOND).stdout
        assert "inet " not in lab.run(router, "ip", "addr", "show", BOND).stdout
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=30), "no ping6 across"
    assert lab.ping("r1", BOND_IP["r2"], count=3, interval=0.1).ok
    # 1362 - 40 IPv6 - 8 ICMPv6: the largest payload that leaves unfragmented, and one byte more does not
    assert lab.ping("r2", BOND_IP["r1"], count=3, interval=0.1, size=BOND_MTU - 48, df=True).ok
    assert not lab.ping("r2", BOND_IP["r1"], count=1, size=BOND_MTU - 47, df=True).ok
    for router in ("r2", "r1"):
        assert wait_for(lambda r=router: all(mii_status(lab, r, s) == "up" for s in ("gre61", "gre62")),  # type: ignore[misc]
                        timeout=10), lab.run(router, "cat", f"/proc/net/bonding/{BOND}").stdout
        cp = grebond(lab, router, "verify", "-c", str(cfg))
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert f"[ OK ] {BOND} ns_ip6_targets {BOND_IP[PEER[router]]}" in cp.stdout
        assert f"[ OK ] {BOND} arp_missed_max 2" in cp.stdout
    assert apply(lab, "r2", str(cfg)).strip().splitlines()[-1] == "nothing to change"

    # drift of the NS targets: verify sees it (exit 1), apply sets them back in place
    lab.run("r2", "ip", "link", "set", BOND, "type", "bond", "ns_ip6_target", "fd67::9,fd67::2")
    cp = grebond(lab, "r2", "verify", "-c", str(cfg))
    assert cp.returncode == 1 and f"[FAIL] {BOND} ns_ip6_targets: expected fd67::2, got fd67::9,fd67::2" in cp.stdout
    assert f"set {BOND} ns_ip6_targets fd67::2" in apply(lab, "r2", str(cfg))
    assert ns_targets(lab, "r2") == ["fd67::2"]

    # one path silently broken: the NS monitor takes gre61 out on both ends, traffic keeps flowing
    break_at, outage, after = 3.0, 4.0, 2.0
    count = int((break_at + outage + after) * RATE)
    ping = subprocess.Popen(lab.router("r2").wrap(["ping", "-D", "-n", "-i", str(1 / RATE), "-W", "1", "-c",
                                                   str(count), BOND_IP["r1"]]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(break_at)
    t_break, tc_break = set_broken(lab, 1, True)
    for router in ("r2", "r1"):
        assert wait_for(lambda r=router: mii_status(lab, r, "gre61") != "up", timeout=outage - 1, interval=0.05), \
            f"{router} never took gre61 out of {BOND}"
    time.sleep(max(0.0, t_break + outage - time.time()))
    t_heal, _ = set_broken(lab, 1, False)
    out, _ = ping.communicate(timeout=count / RATE + 60)
    window, lost_at, in_outage = loss_window(out, t_break, t_heal)
    lost = len(lost_at)
    burst = max(lost_at) - min(lost_at) + 1 / RATE if lost_at else 0.0     # excludes tc's own latency
    print(f"ipv6-only failover: loss window {window:.2f} s, loss burst {burst:.2f} s, lost {lost}/{in_outage} "
          f"in the outage, sent at {lost_at} s after the break; tc took {tc_break:.2f} s")
    assert lost < in_outage / 2, out[-2000:]         # the bond kept passing traffic: not half of it lost
    assert window < outage - 1, f"loss window {window:.2f} s: the dead path was not taken out"
    for router in ("r2", "r1"):
        assert wait_for(lambda r=router: mii_status(lab, r, "gre61") == "up", timeout=10), f"{router}: gre61 not back"
    assert lab.ping("r2", BOND_IP["r1"], count=10, interval=0.05).loss == 0


# ------------------------------------------------------------------ networkd + grebond's udev rule

UDEV_RULE = Path("/etc/udev/rules.d") / "90-grebond-bond0.rules"


@pytest.mark.kernel(root_ns=True)
def test_networkd_bond_gets_its_ns_targets_from_the_udev_rule(lab_factory, networkd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``apply --backend networkd`` of examples/ipv6-only.yaml (renamed to the bond0/gre1/gre2 the
    networkd fixture cleans up; missed-max 3, so Debian 12's networkd, without ARPMissedMax=, needs
    the rule for it too): the bond has its NS targets at once, and again each time networkd creates
    it without grebond (reload, reconfigure, a restart from nothing); verify passes, ping6 crosses;
    remove takes the rule away with the files."""
    text = EXAMPLE.read_text().replace("bond6", "bond0").replace("gre61", "gre1").replace("gre62", "gre2")
    cfg = tmp_path / "ipv6-only.yaml"
    cfg.write_text(text.replace("missed-max: 2", "missed-max: 3"))
    cfg.chmod(0o600)
    lab = lab_factory(addresses=SEED_V6[:2], wg_mtu=1420, root_router="r2")
    cp = grebond(lab, "r1", "apply", "--backend", "kernel", "-c", str(cfg), "--node", "r1", "--timeout", "10")
    assert cp.returncode == 0, cp.stdout + cp.stderr

    def kernel() -> tuple[int, list[str], str]:
        out = lab.run("r2", "ip", "-d", "link", "show", "bond0", check=False).stdout
        index = int(out.split(":", 1)[0]) if out[:1].isdigit() else 0
        m = re.search(r"arp_missed_max (\d+)", out)
        return index, ns_targets(lab, "r2", "bond0") if index else [], m.group(1) if m else ""

    def working() -> bool:
        return kernel()[1:] == (["fd67::2"], "3") and lab.ping("r2", "fd67::2", count=1, wait=1).ok

    networkd.start()
    try:
        cp = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", str(cfg), "--node", "r2")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        rule = UDEV_RULE.read_text()
        assert rule.rstrip().endswith('RUN+="/sbin/ip link set dev bond0 type bond ns_ip6_target fd67::2 '
                                      'arp_missed_max 3"'), rule
        assert wait_for(working, timeout=40), (kernel(), networkd.text()[-2000:])
        cp = grebond(lab, "r2", "verify", "-c", str(cfg), "--node", "r2", "--settle", "20")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "[ OK ] bond0 ns_ip6_targets fd67::2" in cp.stdout, cp.stdout
        first = kernel()[0]
        assert "arp_interval 100" in lab.run("r2", "ip", "-d", "link", "show", "bond0").stdout   # networkd's own
        for action in (["networkctl", "reload"], ["networkctl", "reconfigure", "bond0"]):
            subprocess.run(action, check=True, capture_output=True)
            assert wait_for(working, timeout=20), (action, kernel())
            assert kernel()[0] == first, action
        networkd.stop()
        for name in ("bond0", "gre1", "gre2"):             # networkd recreates everything: a new "add" event
            subprocess.run(["ip", "link", "del", name], check=True)
        networkd.start()
        assert wait_for(lambda: kernel()[0] not in (0, first) and working(), timeout=40), kernel()
        cp = grebond(lab, "r2", "remove", "--backend", "networkd", "-c", str(cfg), "--node", "r2")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert not UDEV_RULE.exists() and kernel()[0] == 0
    finally:
        if UDEV_RULE.exists():
            UDEV_RULE.unlink()
            subprocess.run(["udevadm", "control", "--reload"], check=False)
