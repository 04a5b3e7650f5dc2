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


def networkd_end() -> tuple[object, str]:
    """examples/ipv6-only.yaml renamed to the lab's bond0/gre1/gre2 (the names its networkd
    fixtures clean up), missed-max 3 so the rule's arp_missed_max shows; r2's end and its rule."""
    from grebond.renderer.networkd_ns import udev_rule
    from grebond.validation import parse_config

    text = EXAMPLE.read_text().replace("bond6", "bond0").replace("gre61", "gre1").replace("gre62", "gre2")
    config, _ = parse_config(text.replace("missed-max: 2", "missed-max: 3"), "/etc/grebond/grebond.yaml")
    end = config.bonds_of("r2")[0]
    rule = udev_rule(end, config.source, "r2", 252)             # Debian 12's networkd: no ARPMissedMax=
    assert rule is not None
    return end, rule.content.decode()


@pytest.mark.kernel(root_ns=True)
def test_networkd_bond_gets_its_ns_targets_from_the_udev_rule(lab_factory, networkd) -> None:  # type: ignore[no-untyped-def]
    """networkd creates the bond (cold start, reload, reconfigure, restart from nothing): every
    time the kernel holds the NS targets and arp_missed_max the rule sets, and ping6 passes.
    The rule is grebond.renderer.networkd_ns's, installed here by the test: the networkd backend
    does not write it yet (it refuses NS targets), so this proves the mechanism, not the backend."""
    from lab.daemons import NETWORKD_DIR

    end, rule_text = networkd_end()
    lab = lab_factory(addresses=SEED_V6[:2], wg_mtu=1420, root_router="r2")
    lines = [f"link add gre{p.index} mtu {BOND_MTU} type ip6gretap local {lab.local('r1', p.index)} "
             f"remote {lab.remote('r1', p.index)} ttl 255 encaplimit none" for p in lab.paths]
    lines.append(f"link add bond0 mtu {BOND_MTU} type bond mode balance-rr arp_interval 100 ns_ip6_target fd67::1")
    lines += [f"link set gre{p.index} {action}" for p in lab.paths for action in ("down", "master bond0")]
    lines += ["addr add fd67::2/64 dev bond0 nodad"] + [f"link set gre{p.index} up" for p in lab.paths]
    lab.batch("r1", [*lines, "link set bond0 up"])
    header = rule_text.splitlines()[0] + "\n"
    files = {"40-grebond-bond0.netdev": f"[NetDev]\nName=bond0\nKind=bond\nMACAddress={end.mac}\n"  # type: ignore[attr-defined]
                                        f"MTUBytes={BOND_MTU}\n\n[Bond]\nMode=balance-rr\nARPIntervalSec=100ms\n"
                                        "ARPValidate=none\n",
             "40-grebond-bond0.network": "[Match]\nName=bond0\n\n[Link]\nRequiredForOnline=no\n\n[Network]\n"
                                         "LinkLocalAddressing=no\nConfigureWithoutCarrier=yes\n\n"
                                         "[Address]\nAddress=fd67::1/64\nDuplicateAddressDetection=none\n"}
    for p in lab.paths:
        files[f"40-grebond-gre{p.index}.netdev"] = (
            f"[NetDev]\nName=gre{p.index}\nKind=ip6gretap\nMTUBytes={BOND_MTU}\n\n[Tunnel]\n"
            f"Local={lab.local('r2', p.index)}\nRemote={lab.remote('r2', p.index)}\nTTL=255\n"
            "EncapsulationLimit=none\nIndependent=yes\n")
        files[f"40-grebond-gre{p.index}.network"] = (f"[Match]\nName=gre{p.index}\n\n[Link]\nRequiredForOnline=no\n\n"
                                                    "[Network]\nBond=bond0\n")
    NETWORKD_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (NETWORKD_DIR / name).write_text(header + text)
    UDEV_RULE.parent.mkdir(parents=True, exist_ok=True)
    UDEV_RULE.write_text(rule_text)
    subprocess.run(["udevadm", "control", "--reload"], check=True)
    try:
        def kernel() -> tuple[int, list[str], str]:
            out = lab.run("r2", "ip", "-d", "link", "show", "bond0", check=False).stdout
            index = int(out.split(":", 1)[0]) if out[:1].isdigit() else 0
            m = re.search(r"arp_missed_max (\d+)", out)
            return index, ns_targets(lab, "r2", "bond0") if index else [], m.group(1) if m else ""

        def working() -> bool:
            return kernel()[1:] == (["fd67::2"], "3") and lab.ping("r2", "fd67::2", count=1, wait=1).ok

        networkd.start()                                   # cold start, as at boot
        assert wait_for(working, timeout=40), (kernel(), networkd.text()[-2000:])
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
    finally:
        UDEV_RULE.unlink(missing_ok=True)
        subprocess.run(["udevadm", "control", "--reload"], check=False)
