"""The kernel backend in the lab: both ends of the seed applied over WireGuard, then drift,
re-apply, failover, and Debian's pyroute2 0.7.2. Each test asserts what a user sees: ping,
kernel fields from ``ip``, grebond's output and exit status.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.topology import SEED_V6, Lab, wait_for
from needs import need

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed.yaml"
PYROUTE2_072 = REPO / ".lab" / "pyroute2-0.7.2"   # .venv/bin/pip install --target .lab/pyroute2-0.7.2 pyroute2==0.7.2
BOND_IP = {"r2": "10.67.0.1", "r1": "10.67.0.2"}

V6_KEYED = """\
version: 1
links:
  bond6:
    ends:
      r2: {addresses: [10.68.0.1/24, "fd68::1/64"]}
      r1: {addresses: [10.68.0.2/24, "fd68::2/64"]}
    tunnels:
      gre61:
        ends: {r2: "fd65::2", r1: "fd65::6"}
        key: 4242
      gre62:
        ends: {r2: "fd65::e", r1: "fd65::a"}
    underlay-mtu: 1420
"""


def config_copy(tmp_path: Path, text: str | None = None) -> str:
    """A root-owned, 0644 copy (grebond refuses configs others could write)."""
    path = tmp_path / "grebond.yaml"
    path.write_text(text if text is not None else SEED.read_text())
    path.chmod(0o644)
    return str(path)


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "GREBOND_LOCK": "/tmp/grebond-lab.lock", **(extra or {})}


def grebond(lab: Lab, router: str, *args: str, extra_env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return lab.grebond(router, *args, check=False, env=env(extra_env))


def apply(lab: Lab, router: str, cfg: str, *extra: str, extra_env: dict[str, str] | None = None) -> str:
    cp = grebond(lab, router, "apply", "--backend", "kernel", "-c", cfg, "--timeout", "10", *extra,
                 extra_env=extra_env)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp.stdout


def link_field(lab: Lab, router: str, dev: str, pattern: str) -> str:
    m = re.search(pattern, lab.run(router, "ip", "-d", "link", "show", dev).stdout)
    assert m, f"{pattern!r} not in ip -d link show {dev}"
    return m.group(1)


def test_seed_apply_verify_drift_and_restore(lab: Lab, tmp_path: Path) -> None:
    cfg = config_copy(tmp_path, SEED.read_text() + "    offloads: off\n")
    out_r2 = apply(lab, "r2", cfg, "--node", "r2")
    apply(lab, "r1", cfg)                                        # node detected from its underlay addresses
    assert "created bond bond0" in out_r2
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=20), "bond never passed ping"
    assert lab.ping("r2", BOND_IP["r1"], count=10, interval=0.1).ok
    assert lab.ping("r1", BOND_IP["r2"], count=5, interval=0.1).ok
    for router in ("r2", "r1"):
        cp = grebond(lab, router, "verify", "-c", cfg)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "[ OK ] bond0 mode balance-rr" in cp.stdout and "[ OK ] gre1 underlay wireguard" in cp.stdout
    # kernel fields as `ip` shows them
    assert link_field(lab, "r2", "bond0", r"mtu (\d+)") == "1402"
    assert link_field(lab, "r2", "gre1", r"mtu (\d+)") == "1402"
    assert link_field(lab, "r2", "bond0", r"arp_missed_max (\d+)") == "2"
    assert link_field(lab, "r2", "bond0", r"link/ether (\S+)") == \
        __import__("grebond.validation", fromlist=["x"]).load_config(cfg)[0].bonds_of("r2")[0].mac
    # `offloads: off`: GSO/TSO/GRO off on the bond and its tunnels, both ends, as ethtool shows them
    for router in ("r2", "r1"):
        for dev in ("bond0", "gre1", "gre2"):
            assert lab.offloads(router, dev) == {"gso": "off", "tso": "off", "tso6": "off", "gro": "off"}, \
                (router, dev)
    # largest DF payload = MTU - 28, one more fails
    assert lab.ping("r2", BOND_IP["r1"], count=3, size=1402 - 28, df=True).ok
    assert lab.ping("r2", BOND_IP["r1"], count=3, size=1402 - 28 + 1, df=True).received == 0
    # idempotent
    again = apply(lab, "r2", cfg)
    assert again.strip().splitlines()[-1] == "nothing to change", again

    # drift: mode (needs the bond empty and down), a slave removed, a remote changed, MTU 1500
    lab.sh("r2", "ip link set gre1 nomaster; ip link set gre2 nomaster; ip link set bond0 down;"
                 "ip link set bond0 type bond mode active-backup; ip link set gre2 down;"
                 "ip link set gre2 type gretap remote 10.65.0.99; ip link set gre2 master bond0;"
                 "ip link set bond0 up; ip link set bond0 mtu 1500; ethtool -K gre1 rx-gro on")
    cp = grebond(lab, "r2", "verify", "-c", cfg)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    for line in ("[FAIL] bond0 mode: expected balance-rr, got active-backup",
                 "[FAIL] gre1 master: expected bond0, got none",
                 "[FAIL] gre2 remote: expected 10.65.0.10, got 10.65.0.99",
                 "[FAIL] bond0 mtu: expected 1402, got 1500",
                 "[FAIL] bond0 slaves: expected gre1,gre2, got gre2",
                 "[FAIL] gre1 offloads: expected off, got gso=off tso=off tso6=off gro=on"):
        assert line in cp.stdout, cp.stdout
    data = json.loads(grebond(lab, "r2", "verify", "-c", cfg, "--json").stdout)
    assert data["ok"] is False
    assert {"subject": "bond0", "field": "mtu", "expected": 1402, "actual": 1500, "ok": False,
            "severity": "error"} in data["checks"]

    # re-apply restores (recreating what cannot change in place), then verify passes again
    out = apply(lab, "r2", cfg)
    assert "recreated bond0 (mode changed: active-backup -> balance-rr)" in out, out
    assert "recreated gre2 (remote changed)" in out, out
    assert "set gre1 offloads off (gso, tso, tso6, gro)" in out, out
    cp = grebond(lab, "r2", "verify", "-c", cfg)
    assert cp.returncode == 0, cp.stdout
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=20)
    assert apply(lab, "r2", cfg).strip().splitlines()[-1] == "nothing to change"

    # an in-place change: only the changed option is set, nothing recreated
    lab.sh("r2", "echo 5 > /sys/class/net/bond0/bonding/arp_missed_max; ip link set gre1 mtu 1300")
    out = apply(lab, "r2", cfg)
    assert "set bond0 arp_missed_max 2" in out and "set gre1 mtu 1402" in out and "recreated" not in out, out

    # remove deletes exactly the modelled devices
    cp = grebond(lab, "r2", "remove", "--backend", "kernel", "-c", cfg, "--node", "r2")
    assert cp.returncode == 0 and "removed bond0" in cp.stdout, cp.stdout + cp.stderr
    links = lab.run("r2", "ip", "-o", "link").stdout
    assert "bond0" not in links and "gre1" not in links and "wg1" in links
    cp = grebond(lab, "r2", "verify", "-c", cfg, "--node", "r2")
    assert cp.returncode == 1 and "[FAIL] bond0 exists: expected yes, got no" in cp.stdout


def test_failover_marks_slave_down_and_ping_continues(lab: Lab, tmp_path: Path) -> None:
    cfg = config_copy(tmp_path)
    apply(lab, "r2", cfg)
    apply(lab, "r1", cfg)
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=20)

    def gre1_monitor() -> str:
        data = json.loads(grebond(lab, "r2", "status", "-c", cfg, "--json").stdout)
        return next(t for t in data[0]["tunnels"] if t["name"] == "gre1")["monitor_status"]

    assert gre1_monitor() == "up"
    lab.break_path(1)
    t0 = time.monotonic()
    # each end's ARP monitor must notice on its own: requests and replies pick slaves independently
    for router in ("r2", "r1"):
        assert wait_for(lambda r=router: "MII Status: up" not in _slave_block(lab, r, "gre1"), timeout=5,  # type: ignore[misc]
                        interval=0.05)
        detected = time.monotonic() - t0
        assert detected < 2.0, f"{router} marked gre1 down after {detected:.2f}s"
    res = lab.ping("r2", BOND_IP["r1"], count=20, interval=0.1)
    assert res.loss == 0, res.output
    status = grebond(lab, "r2", "status", "-c", cfg)
    assert re.search(r"gre1 .* (down|fail) ", status.stdout), status.stdout
    lab.heal_path(1)
    assert wait_for(lambda: gre1_monitor() == "up", timeout=10)


def _slave_block(lab: Lab, router: str, slave: str) -> str:
    text = lab.run(router, "cat", "/proc/net/bonding/bond0").stdout
    return text.split(f"Slave Interface: {slave}", 1)[1].split("Slave Interface:", 1)[0]


def _pyroute2_072() -> dict[str, str]:
    if not (PYROUTE2_072 / "pyroute2").is_dir():
        need(False, f"pyroute2 0.7.2 not installed in {PYROUTE2_072}; run: .venv/bin/pip install --target "
                    f"{PYROUTE2_072.relative_to(REPO)} pyroute2==0.7.2")
    return {"PYTHONPATH": str(PYROUTE2_072)}


@pytest.mark.parametrize("pyroute2", ["installed", "0.7.2"])
def test_ipv6_keyed_tunnels_apply_and_verify(lab_factory, tmp_path: Path, pyroute2: str) -> None:  # type: ignore[no-untyped-def]
    """ip6gretap (host-order IP6GRE flags) with a key, on both pyroute2 generations."""
    extra = _pyroute2_072() if pyroute2 == "0.7.2" else {}
    version = subprocess.run([sys.executable, "-c", "import pyroute2; print(pyroute2.__version__)"],
                             capture_output=True, text=True, env=env(extra)).stdout.strip()
    assert version == "0.7.2" if pyroute2 == "0.7.2" else version.startswith("0.9"), version
    lab = lab_factory(addresses=SEED_V6[:2], wg_mtu=1420)
    cfg = config_copy(tmp_path, V6_KEYED)
    for router in ("r2", "r1"):
        apply(lab, router, cfg, extra_env=extra)
    assert "key 0.0.16.146" in lab.run("r2", "ip", "-d", "link", "show", "gre61").stdout   # 4242 as dotted quad
    assert "encaplimit none" in lab.run("r2", "ip", "-d", "link", "show", "gre62").stdout
    assert wait_for(lambda: lab.ping("r2", "10.68.0.2", count=1, wait=1).ok, timeout=20)
    assert lab.ping("r1", "fd68::1", count=3, interval=0.1).ok
    assert lab.ping("r2", "10.68.0.2", count=3, size=1358 - 28, df=True).ok
    for router in ("r2", "r1"):
        cp = grebond(lab, router, "verify", "-c", cfg, extra_env=extra)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "[ OK ] gre61 key 4242" in cp.stdout
    assert apply(lab, "r2", cfg, extra_env=extra).strip().splitlines()[-1] == "nothing to change"
    lab.run("r2", "ip", "link", "set", "bond6", "mtu", "1400")
    cp = grebond(lab, "r2", "verify", "-c", cfg, extra_env=extra)
    assert cp.returncode == 1 and "[FAIL] bond6 mtu: expected 1358, got 1400" in cp.stdout


def test_failed_apply_restores_changed_devices(lab: Lab, tmp_path: Path) -> None:
    """A change that cannot verify (gre2's new remote has no route): the mode and interval changed
    in place or by recreating the bond, gre2 recreated; the rollback puts all of it back."""
    good = config_copy(tmp_path)
    apply(lab, "r2", good, "--node", "r2")
    apply(lab, "r1", good, "--node", "r1")
    assert wait_for(lambda: grebond(lab, "r2", "verify", "-c", good, "--node", "r2").returncode == 0, timeout=30)
    bad_text = SEED.read_text().replace("mode: balance-rr", "mode: active-backup").replace(
        "r1: 10.65.0.10", "r1: 10.99.0.10").replace("interval: 100ms", "interval: 200ms")
    assert bad_text.count("10.99.0.10") == 1 and "active-backup" in bad_text and "200ms" in bad_text
    bad = tmp_path / "bad.yaml"
    bad.write_text(bad_text)
    cp = grebond(lab, "r2", "apply", "--backend", "kernel", "-c", str(bad), "--node", "r2", "--timeout", "3")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "rolled back: restored bond0 and its tunnels as they were" in cp.stderr, cp.stderr
    assert link_field(lab, "r2", "bond0", r"bond mode (\S+)") == "balance-rr"
    assert link_field(lab, "r2", "bond0", r"arp_interval (\d+)") == "100"
    assert link_field(lab, "r2", "gre2", r"remote (\S+)") == "10.65.0.10"
    cp = grebond(lab, "r2", "verify", "-c", good, "--node", "r2", "--settle", "20")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert lab.ping("r2", BOND_IP["r1"], count=5, interval=0.1).ok
