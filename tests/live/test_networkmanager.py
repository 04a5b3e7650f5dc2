"""The networkmanager backend against a real NetworkManager 1.42 and dbus-daemon in the lab guest.

NM only works in the guest's ROOT namespace (its udev sees no other), so r2 is the root
namespace and runs NM; r1 is a namespace built by grebond's iproute2 script. NM is installed on
the host by .ci/install-nm (never started there) and started here by hand, with a conf.d file
that leaves every device unmanaged except grebond's (bond0, gre1-3; not the kernel's gre0) and this
test's own dummy.
What is asserted is what a user sees: kernel fields (sysfs, ``ip -d link``), ping across the
bond, ``grebond verify``'s exit status, NM's profiles (``nmcli``) and keyfiles on disk.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.daemons import NetworkManager
from lab.topology import Lab, wait_for
from live.helpers import (
    KEYDIR,
    PEER_BOND_IP,
    UNRELATED,
    build_peer,
    detail,
    grebond,
    keyfiles,
    model,
    nmcli,
    profiles,
    verify,
    write_config,
)

pytestmark = pytest.mark.kernel(root_ns=True)

BOND_FIELDS = ("mode", "miimon", "arp_interval", "arp_ip_target", "arp_validate", "arp_missed_max", "primary",
               "updelay", "downdelay")


def grebond_links(lab: Lab) -> list[str]:
    """bond*/gre* links on r2, without gre0: the kernel's fallback device, made when ip_gre loads."""
    out = lab.run("r2", "ip", "-o", "link", "show").stdout
    return sorted(set(re.findall(r"^\d+:\s+((?:bond|gre)\d+)[@:]", out, re.M)) - {"gre0"})





def bond_state(lab: Lab, router: str = "r2") -> dict[str, str]:
    """What the kernel holds for bond0 (sysfs, the way a user reads it), plus the MTUs."""
    script = "; ".join(f"echo {f}=$(cat /sys/class/net/bond0/bonding/{f})" for f in BOND_FIELDS)
    out = lab.sh(router, script + "; for d in bond0 gre1 gre2; do echo mtu_$d=$(cat /sys/class/net/$d/mtu); done")
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def unrelated_snapshot() -> tuple[bytes, str]:
    """The user's own profile: its keyfile bytes and NM's view of it (it must never change)."""
    return ((KEYDIR / f"{UNRELATED}.nmconnection").read_bytes(),
            nmcli("-t", "-f", "connection.uuid,connection.id,ipv4.addresses,GENERAL.STATE",
                  "connection", "show", UNRELATED))


def assert_working(lab: Lab, cfg: str, nm: NetworkManager, tunnels: tuple[str, ...] = ("gre1", "gre2"),
                   interval_ms: int = 100) -> None:
    v = verify(lab, cfg)
    assert v.returncode == 0, v.stdout + v.stderr + nm.text()
    assert wait_for(lambda: lab.ping("r2", PEER_BOND_IP, count=1, wait=1).ok, timeout=20), "no ping over bond0"
    res = lab.ping("r2", PEER_BOND_IP, count=5, interval=0.1)
    assert res.ok, res.output
    bond = detail(lab, "bond0")
    assert "mtu 1402" in bond and f"arp_interval {interval_ms} " in bond and "miimon 0 " in bond, bond
    for t in tunnels:
        d = detail(lab, t)
        assert "master bond0" in d and "mtu 1402" in d and "ttl 255" in d, d
    assert grebond_links(lab) == sorted(["bond0", *tunnels])
    assert profiles() == sorted([UNRELATED, *(f"grebond-{n}" for n in ("bond0", *tunnels))])


def apply(lab: Lab, cfg: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return grebond(lab, "r2", "apply", "--backend", "networkmanager", "-c", cfg, "--node", "r2", *extra)


def test_apply_change_rollback_remove(lab_factory: Callable[..., Lab], nm: NetworkManager, tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2", paths=3)
    cfg = write_config(tmp_path, model(), "seed.yaml")
    build_peer(lab, cfg)
    nm.start()
    nmcli("connection", "add", "type", "dummy", "ifname", "gbldummy0", "con-name", UNRELATED,
          "ipv4.method", "manual", "ipv4.addresses", "192.0.2.1/24", "ipv6.method", "disabled")
    unrelated = unrelated_snapshot()

    dry = apply(lab, cfg, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "add connection grebond-bond0" in dry.stdout and "add connection grebond-gre2" in dry.stdout
    assert profiles() == [UNRELATED] and grebond_links(lab) == []

    done = apply(lab, cfg)
    assert done.returncode == 0, done.stdout + done.stderr + nm.text()
    assert_working(lab, cfg, nm)
    assert nmcli("-g", "connection.master,connection.slave-type", "connection", "show", "grebond-gre1").split() \
        == [nmcli("-g", "connection.uuid", "connection", "show", "grebond-bond0").strip(), "bond"]
    via_nm = bond_state(lab)

    again = apply(lab, cfg)                                  # equal: nothing to do
    assert again.returncode == 0 and "added" not in again.stdout and "updated" not in again.stdout, again.stdout

    # a changed model: interval, and gre2 moves to path 3 (its endpoints cannot change in place)
    p1, p3 = ("10.65.0.2", "10.65.0.6"), ("10.65.0.18", "10.65.0.22")
    changed = write_config(tmp_path, model(interval="200ms", tunnels={"gre1": p1, "gre2": p3}), "changed.yaml")
    build_peer(lab, changed)
    done = apply(lab, changed)
    assert done.returncode == 0, done.stdout + done.stderr + nm.text()
    assert "updated connection grebond-bond0" in done.stdout and "updated connection grebond-gre2" in done.stdout
    assert "grebond-gre1" not in done.stdout.replace("activated", "")     # unchanged profile left alone
    assert_working(lab, changed, nm, interval_ms=200)
    assert "remote 10.65.0.22" in detail(lab, "gre2")
    assert unrelated_snapshot() == unrelated

    # one tunnel fewer: its profile is deleted, nobody else's
    fewer = write_config(tmp_path, model(interval="200ms", tunnels={"gre1": p1}), "fewer.yaml")
    build_peer(lab, fewer)
    done = apply(lab, fewer)
    assert done.returncode == 0, done.stdout + done.stderr + nm.text()
    assert "deleted connection grebond-gre2" in done.stdout
    assert wait_for(lambda: grebond_links(lab) == ["bond0", "gre1"], timeout=20), grebond_links(lab)
    assert profiles() == sorted([UNRELATED, "grebond-bond0", "grebond-gre1"])

    # the same model through the kernel backend gives the same kernel state as through NM
    done = grebond(lab, "r2", "remove", "--backend", "networkmanager", "-c", fewer, "--node", "r2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert wait_for(lambda: grebond_links(lab) == [], timeout=20), grebond_links(lab)
    assert profiles() == [UNRELATED] and keyfiles() == {}
    assert unrelated_snapshot() == unrelated
    build_peer(lab, cfg)
    done = grebond(lab, "r2", "apply", "--backend", "kernel", "-c", cfg, "--node", "r2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert bond_state(lab) == via_nm

    # Last, so every step above is checked strictly first: a change that cannot verify (gre2's
    # remote has no route) must be rolled back by the checkpoint.
    done = grebond(lab, "r2", "remove", "--backend", "kernel", "-c", cfg, "--node", "r2")
    assert done.returncode == 0, done.stdout + done.stderr
    build_peer(lab, changed)
    done = apply(lab, changed)
    assert done.returncode == 0, done.stdout + done.stderr + nm.text()
    assert_working(lab, changed, nm, interval_ms=200)
    before = keyfiles()
    bad = write_config(tmp_path, model(interval="200ms", tunnels={"gre1": p1, "gre2": ("10.65.0.18", "10.99.0.22")}),
                       "bad.yaml")
    done = apply(lab, bad, "--timeout", "8")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "10.99.0.22" in done.stderr, done.stderr
    # NM 1.42.4's CheckpointRollback answers 'failed' for a profile updated in place; grebond
    # then writes back the settings it saved before the change and re-activates.
    assert "rolled back" in done.stderr, done.stderr
    assert wait_for(lambda: "remote 10.65.0.22" in detail(lab, "gre2"), timeout=30), detail(lab, "gre2")
    assert keyfiles() == before
    assert_working(lab, changed, nm, interval_ms=200)
    assert unrelated_snapshot() == unrelated


def test_keyfiles_offline_then_cold_start_and_restart(lab_factory: Callable[..., Lab], nm: NetworkManager,
                                                      tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    cfg = write_config(tmp_path, model(extra="offloads: off"))
    build_peer(lab, cfg)
    # NM installed but not running (an install hook, an image build): keyfiles only
    done = apply(lab, cfg)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NetworkManager is not running" in done.stdout
    names = sorted(keyfiles())
    assert names == ["grebond-bond0.nmconnection", "grebond-gre1.nmconnection", "grebond-gre2.nmconnection"]
    assert all((KEYDIR / n).stat().st_mode & 0o777 == 0o600 for n in names)
    assert grebond_links(lab) == []
    nm.start()                                           # cold start, as at boot
    assert wait_for(lambda: grebond_links(lab) == ["bond0", "gre1", "gre2"], timeout=60), nm.text()
    v = verify(lab, cfg, settle="60")
    assert v.returncode == 0, v.stdout + v.stderr + nm.text()
    assert wait_for(lambda: lab.ping("r2", PEER_BOND_IP, count=1, wait=1).ok, timeout=20), "no ping over bond0"
    for dev in ("bond0", "gre1", "gre2"):    # `offloads: off`: NM's ethtool setting turned GSO/TSO/GRO off
        assert lab.offloads("r2", dev) == {"gso": "off", "tso": "off", "tso6": "off", "gro": "off"}, dev
    # restart from no links at all: NM brings everything back from its profiles
    nm.stop()
    for link in ("bond0", "gre1", "gre2"):
        lab.run("r2", "ip", "link", "del", link)
    nm.start()
    assert wait_for(lambda: grebond_links(lab) == ["bond0", "gre1", "gre2"], timeout=60), nm.text()
    v = verify(lab, cfg, settle="60")
    assert v.returncode == 0, v.stdout + v.stderr + nm.text()
    assert lab.ping("r2", PEER_BOND_IP, count=3, interval=0.2).ok
    # apply over D-Bus now finds every profile equal and active
    done = apply(lab, cfg)
    assert done.returncode == 0, done.stdout + done.stderr + nm.text()
    assert "added" not in done.stdout and "updated" not in done.stdout, done.stdout
