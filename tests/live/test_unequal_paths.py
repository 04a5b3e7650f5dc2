"""Unequal paths in the lab (issue 20): ``weight`` (GRE-keyed copies of a tunnel) and ``delay`` (a
netem root qdisc on each of them), as examples/unequal-paths.yaml has them, applied by the kernel
backend on both ends, checked the way a user would: ``tc qdisc show``, ``ip -d link``, ``grebond
verify``'s exit status, a ping across the bond; then drift of the delay by hand, and an apply that
repairs it, and a failed apply that puts the delays back.

The second test is the same model under systemd-networkd (r2 in the root namespace, r1 built by
grebond's iproute2 script): whether networkd puts ``[NetworkEmulator]`` on an enslaved gretap,
and that an apply with unchanged files puts back a delay changed by hand.
Each test keeps its grebond runs few: every CLI call costs seconds in the TCG guest.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.daemons import Networkd
from lab.topology import Lab, wait_for
from live.helpers import NETDIR, PREFIX, assert_clean_log, build_peer, verify, write_config

REPO = Path(__file__).resolve().parents[2]
UNEQUAL = REPO / "examples" / "unequal-paths.yaml"
BOND_IP = {"r2": "10.67.0.1", "r1": "10.67.0.2"}
DELAYED = ("gre1", "gre1b")          # gre1 weight 2 -> gre1 (no key) + gre1b (key 1), both delay 9.3ms
NETEM = re.compile(r"qdisc netem \S+ root .*\blimit (\d+) delay (\S+)")


def grebond(lab: Lab, router: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.grebond(router, *args, check=False, timeout=300, env={**os.environ, "GREBOND_LOCK": "/tmp/grebond-lab.lock"})


def netem(lab: Lab, router: str, dev: str) -> tuple[str, str] | None:
    """(limit, delay) of ``dev``'s netem root qdisc as ``tc qdisc show`` prints it; None without one."""
    m = NETEM.search(lab.run(router, "tc", "qdisc", "show", "dev", dev).stdout)
    return (m.group(1), m.group(2)) if m else None


def link(lab: Lab, router: str, dev: str) -> str:
    return lab.run(router, "ip", "-d", "link", "show", dev).stdout


@pytest.mark.kernel
def test_weight_and_delay_apply_verify_drift_repair(lab: Lab, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, UNEQUAL.read_text())
    for router in ("r2", "r1"):
        done = grebond(lab, router, "apply", "--backend", "kernel", "-c", cfg, "--node", router, "--timeout", "10")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "created gretap gre1b" in done.stdout and "created bond bond0" in done.stdout, done.stdout

    # the keyed copy and the delays, as ip and tc show them, on both ends
    for router in ("r2", "r1"):
        for dev in DELAYED:
            assert netem(lab, router, dev) == ("10000", "9.3ms"), (router, dev)
        assert netem(lab, router, "gre2") is None, router
        copy = link(lab, router, "gre1b")
        assert "master bond0" in copy and "mtu 1398" in copy, copy
        assert "ikey 0.0.0.1" in copy and "okey 0.0.0.1" in copy, copy
        assert f"local {lab.local(router, 1)}" in copy and f"remote {lab.remote(router, 1)}" in copy, copy
        first = link(lab, router, "gre1")
        assert "master bond0" in first and "ikey" not in first, first        # gre1 itself stays unkeyed
        assert "master bond0" in link(lab, router, "gre2")
        slaves = lab.run(router, "cat", "/sys/class/net/bond0/bonding/slaves").stdout.split()
        assert sorted(slaves) == ["gre1", "gre1b", "gre2"], slaves

    for router in ("r2", "r1"):
        v = grebond(lab, router, "verify", "-c", cfg, "--node", router, "--settle", "20")
        assert v.returncode == 0, v.stdout + v.stderr
        for line in ("[ OK ] gre1 delay 9.3ms", "[ OK ] gre1b delay 9.3ms", "[ OK ] gre1b qdisc-limit 10000",
                     "[ OK ] gre1b key 1"):
            assert line in v.stdout, v.stdout

    # a ping crosses the bond; two of every three frames wait 9.3 ms on the way out of each end
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=20), "no ping over bond0"
    ping = lab.ping("r2", BOND_IP["r1"], count=15, interval=0.1)
    assert ping.ok, ping.output
    assert ping.rtt_avg_ms is not None and ping.rtt_avg_ms > 5, ping.output

    # drift by hand: gre1's delay changed, a netem delay put on gre2 (which has none in the model)
    lab.sh("r2", "tc qdisc change dev gre1 root netem delay 20ms; tc qdisc replace dev gre2 root netem delay 5ms")
    v = grebond(lab, "r2", "verify", "-c", cfg, "--node", "r2", "--settle", "0")
    assert v.returncode == 1, v.stdout + v.stderr
    assert "[FAIL] gre1 delay: expected 9.3ms, got 20ms" in v.stdout, v.stdout
    assert "[FAIL] gre2 delay: expected none, got 5ms" in v.stdout, v.stdout
    dry = grebond(lab, "r2", "apply", "--backend", "kernel", "-c", cfg, "--node", "r2", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "gre1 delay: 20ms -> 9.3ms" in dry.stdout and "gre2 delay: 5ms -> none" in dry.stdout, dry.stdout
    assert (netem(lab, "r2", "gre1") or ("", ""))[1] == "20ms"          # a dry run changes nothing

    # apply repairs exactly that, in place (nothing recreated)
    done = grebond(lab, "r2", "apply", "--backend", "kernel", "-c", cfg, "--node", "r2", "--timeout", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "set gre1 delay 9.3ms" in done.stdout and "removed gre2's netem delay 5ms" in done.stdout, done.stdout
    assert "recreated" not in done.stdout, done.stdout
    assert netem(lab, "r2", "gre1") == ("10000", "9.3ms") and netem(lab, "r2", "gre2") is None

    # a change that cannot verify (gre2's new remote has no route) puts the delays back with the rest
    bad = write_config(tmp_path, UNEQUAL.read_text().replace("delay: 9.3ms", "delay: 15ms")
                       .replace("r1: 10.65.0.10", "r1: 10.99.0.10"), "bad.yaml")
    done = grebond(lab, "r2", "apply", "--backend", "kernel", "-c", bad, "--node", "r2", "--timeout", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "rolled back" in done.stderr, done.stderr
    for dev in DELAYED:
        assert netem(lab, "r2", dev) == ("10000", "9.3ms"), dev
    v = grebond(lab, "r2", "verify", "-c", cfg, "--node", "r2", "--settle", "20")
    assert v.returncode == 0, v.stdout + v.stderr


@pytest.mark.kernel(root_ns=True)
def test_networkd_sets_the_delay_on_enslaved_copies(lab_factory: Callable[..., Lab], networkd: Networkd,
                                                     tmp_path: Path) -> None:
    """networkd 252: [NetworkEmulator] in each delayed port's .network; a delay changed by hand is put
    back by an apply whose files are unchanged (grebond converges it over netlink); and networkd
    itself sets the section on an enslaved gretap when it reconfigures it."""
    lab = lab_factory(root_router="r2")
    networkd.start()
    cfg = write_config(tmp_path, UNEQUAL.read_text())
    build_peer(lab, cfg)                # r1: grebond's iproute2 script, tc qdisc replace ... netem included
    for dev in DELAYED:
        assert netem(lab, "r1", dev) == ("10000", "9.3ms"), dev
    done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", cfg, "--node", "r2", "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[NetworkEmulator]\nDelaySec=9.3ms\nPacketLimit=10000\n" in (NETDIR / f"{PREFIX}gre1b.network").read_text()
    for dev in DELAYED:
        assert netem(lab, "r2", dev) == ("10000", "9.3ms"), dev
        assert "master bond0" in link(lab, "r2", dev)
    assert netem(lab, "r2", "gre2") is None
    v = verify(lab, cfg)
    assert v.returncode == 0, v.stdout + v.stderr
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=20), "no ping over bond0"

    # grebond's part: files unchanged, a delay changed by hand, apply puts it back over netlink
    lab.run("r2", "tc", "qdisc", "change", "dev", "gre1b", "root", "netem", "delay", "20ms")
    assert verify(lab, cfg, settle="0").returncode == 1
    done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", cfg, "--node", "r2", "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "set gre1b delay 9.3ms" in done.stdout, done.stdout
    assert netem(lab, "r2", "gre1b") == ("10000", "9.3ms")
    assert_clean_log(networkd.text())

    # networkd's own part (until now unconfirmed): it sets [NetworkEmulator] on an enslaved gretap
    # when it configures it. Last, because reconfiguring a port may bounce it.
    lab.run("r2", "tc", "qdisc", "del", "dev", "gre1", "root")
    lab.run("r2", "networkctl", "reconfigure", "gre1")
    assert wait_for(lambda: netem(lab, "r2", "gre1") == ("10000", "9.3ms"), timeout=20), \
        f"networkd did not set [NetworkEmulator] on gre1: {lab.run('r2', 'tc', 'qdisc', 'show', 'dev', 'gre1').stdout}"
