"""Issue 22: the bond keeps its modelled MAC when every tunnel's endpoints change and change back.

The sequence, per backend, with r2 under test and r1 built once by grebond's ip script:
1. the seed in active-backup with primary gre1; 2. the same with r2's two tunnel remotes swapped
(every tunnel is recreated, the peer is then unreachable); 3. the model of step 1 again.
Why it broke: recreating every tunnel of a bond releases its last slave, the kernel then gives
the bond a random MAC, and the first tunnel enslaved next hands the bond its own MAC; networkd
applies MACAddress= only when it creates the bond, and the kernel backend compared the MAC it
read before the tunnels went. After every step the bond's MAC, as ``ip -j link`` shows it, must
be the model's and marked set (sysfs addr_assign_type 3, NET_ADDR_SET: no slave can replace it);
``grebond verify`` must exit 0 at steps 1 and 3, and the peer's ARP cache must hold that MAC.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from grebond.validation import parse_config

from lab.daemons import Networkd, NetworkManager
from lab.topology import Lab, wait_for
from live.helpers import PEER_BOND_IP, build_peer, grebond, model, verify, write_config

pytestmark = pytest.mark.kernel

SWAPPED = {"gre1": ("10.65.0.2", "10.65.0.10"), "gre2": ("10.65.0.14", "10.65.0.6")}
"""r2's side of each path as (r2, r1) address: gre1's remote is gre2's and vice versa."""
NET_ADDR_SET = "3"
R2_BOND_IP = "10.67.0.1"


def bond_mac(lab: Lab) -> tuple[str, str]:
    """bond0's MAC as ``ip -j link`` prints it, and how the kernel says it was assigned (sysfs)."""
    out = lab.sh("r2", "ip -j link show bond0; cat /sys/class/net/bond0/addr_assign_type").stdout
    listing, _, assign = out.rpartition("]")
    return json.loads(listing + "]")[0]["address"], assign.strip()


def apply(lab: Lab, backend: str, cfg: str) -> str:
    done = grebond(lab, "r2", "apply", "--backend", backend, "-c", cfg, "--node", "r2", "--timeout", "30")
    assert done.returncode == 0, f"{Path(cfg).name}: {done.stdout}{done.stderr}"
    return done.stdout


def run_sequence(lab: Lab, backend: str, tmp_path: Path) -> tuple[str, str]:
    """Steps 1-3 against ``backend``; returns (the modelled MAC, step 1's config)."""
    step1 = write_config(tmp_path, model("active-backup", extra="primary: gre1"), "step1.yaml")
    step2 = write_config(tmp_path, model("active-backup", extra="primary: gre1", tunnels=SWAPPED), "step2.yaml")
    mac = parse_config(Path(step1).read_text())[0].bonds_of("r2")[0].mac
    build_peer(lab, step1)
    for step, cfg in ((1, step1), (2, step2), (3, step1)):
        apply(lab, backend, cfg)
        assert bond_mac(lab) == (mac, NET_ADDR_SET), f"step {step}"
        if cfg == step1:                              # the peer is reachable: verify passes
            v = verify(lab, cfg)
            assert v.returncode == 0, f"step {step}: {v.stdout}{v.stderr}"
    # what the fixed MAC is for: the peer, reaching r2 again, has the modelled MAC in its ARP cache
    assert wait_for(lambda: lab.ping("r1", R2_BOND_IP, count=1, wait=1).ok, timeout=30), "no ping over bond0"
    neigh = json.loads(lab.run("r1", "ip", "-j", "neigh", "show", R2_BOND_IP, "dev", "bond0").stdout)
    assert [n.get("lladdr") for n in neigh] == [mac], neigh
    assert lab.ping("r2", PEER_BOND_IP, count=3, interval=0.2).ok
    return mac, step1


@pytest.mark.kernel(root_ns=True)
def test_networkd_keeps_and_repairs_bond_mac(lab_factory: Callable[..., Lab], networkd: Networkd,
                                             tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    networkd.start()
    mac, step1 = run_sequence(lab, "networkd", tmp_path)
    # a bond whose MAC drifted (here by hand) is repaired by an apply with nothing else to do
    lab.run("r2", "ip", "link", "set", "bond0", "address", "02:00:00:00:22:22")
    out = apply(lab, "networkd", step1)
    assert f"set bond0 mac {mac}" in out, out
    assert bond_mac(lab) == (mac, NET_ADDR_SET)


@pytest.mark.kernel(root_ns=True)
def test_networkmanager_keeps_bond_mac(lab_factory: Callable[..., Lab], nm: NetworkManager,
                                       tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    nm.start()
    run_sequence(lab, "networkmanager", tmp_path)


def test_kernel_backend_keeps_bond_mac(lab: Lab, tmp_path: Path) -> None:
    run_sequence(lab, "kernel", tmp_path)
