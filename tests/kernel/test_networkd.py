"""The networkd backend against a real systemd-networkd 252 in the lab guest.

networkd only works in the guest's ROOT namespace (its udev sees no other), so r2 is the root
namespace and runs networkd; r1 is a namespace built by grebond's iproute2 script. What is
asserted is what a user sees: files on disk, kernel fields (``ip -d link``), ping across the
bond, ``grebond verify``'s exit status, and networkd's own log.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from lab.daemons import NETWORKD_DIR as NETDIR
from lab.daemons import Networkd
from lab.topology import Lab, wait_for
from models import SEED_TUNNELS, seed_link

pytestmark = pytest.mark.kernel(root_ns=True)

PREFIX = "40-grebond-"
PEER_BOND_IP = "10.67.0.2"
USER_FILE = NETDIR / "30-lab-user.network"
USER_BYTES = b"# the user's own file; grebond must never touch it\n[Match]\nName=gbluser0\n\n[Network]\nDHCP=no\n"


@pytest.fixture
def user_file() -> Iterator[Path]:
    NETDIR.mkdir(parents=True, exist_ok=True)
    USER_FILE.write_bytes(USER_BYTES)
    yield USER_FILE
    USER_FILE.unlink(missing_ok=True)


def model(mode: str = "balance-rr", interval: str = "100ms", tunnels: dict[str, tuple[str, str]] | None = None,
          extra: str = "", missed_max: int | None = None) -> str:
    """The seed model with ARP monitoring at ``interval``; ``tunnels`` maps name -> (r2 address, r1 address)."""
    paths = SEED_TUNNELS if tunnels is None else tuple((n, a, b) for n, (a, b) in tunnels.items())
    missed = "" if missed_max is None else f", missed-max: {missed_max}"
    return seed_link(mode, paths, link_lines=f"underlay-mtu: 1440\nmonitor: {{type: arp, interval: {interval}{missed}}}\n"
                                             f"{extra}")


def write_config(tmp_path: Path, text: str, name: str = "grebond.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def grebond(lab: Lab, router: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.grebond(router, *args, check=False, timeout=300)


def build_peer(lab: Lab, cfg: str) -> None:
    """r1 from scratch with grebond's own ip script (not persistent, so rebuilt after each change)."""
    links = lab.run("r1", "ip", "-o", "link", "show").stdout
    names = re.findall(r"^\d+:\s+(bond\d+|gre[1-9]\d*)[@:]", links, re.M)   # gre0 is the kernel's
    for name in sorted(names, key=lambda n: not n.startswith("bond")):
        lab.run("r1", "ip", "link", "del", name, check=False)
    done = grebond(lab, "r1", "apply", "--backend", "iproute2", "-c", cfg, "--node", "r1")
    assert done.returncode == 0, done.stdout + done.stderr


def verify(lab: Lab, cfg: str, settle: str = "20") -> subprocess.CompletedProcess[str]:
    return grebond(lab, "r2", "verify", "-c", cfg, "--node", "r2", "--settle", settle)


def ours_on_disk() -> list[str]:
    return sorted(p.name for p in NETDIR.glob(f"{PREFIX}*"))


def grebond_links(lab: Lab) -> list[str]:
    out = lab.run("r2", "ip", "-o", "link", "show").stdout
    return sorted(set(re.findall(r"^\d+:\s+(bond\d+|gre[1-9]\d*)[@:]", out, re.M)))   # gre0: the kernel's own


def detail(lab: Lab, name: str) -> str:
    return lab.run("r2", "ip", "-d", "link", "show", name).stdout


def assert_clean_log(log: str) -> None:
    """networkd accepted our files: no parse warning (``FILE:LINE: ...``) and no failure for our links.

    At info level networkd 252 names our files only in "Configuring with FILE" lines.
    """
    complaints = [line for line in log.splitlines()
                  if re.search(rf"{PREFIX}\S*:\d+:", line)
                  or re.search(r"(?i)\b(unknown|invalid|ignoring|failed|warning)\b", line)]
    assert not complaints, "\n".join(complaints)


def assert_working(lab: Lab, cfg: str, tunnels: list[str], mode: str = "balance-rr",
                   interval_ms: int = 100) -> None:
    v = verify(lab, cfg)
    assert v.returncode == 0, v.stdout + v.stderr
    assert wait_for(lambda: lab.ping("r2", PEER_BOND_IP, count=1, wait=1).ok, timeout=20), "no ping over bond0"
    # right after a change both ends' monitors may still be settling (active-backup elects its slave,
    # the peer was rebuilt a moment ago): allow that, then demand a clean run
    pings: list[str] = []

    def clean_run() -> bool:
        res = lab.ping("r2", PEER_BOND_IP, count=5, interval=0.1)
        pings.append(res.output)
        return res.ok

    assert wait_for(clean_run, timeout=15), pings[-1]
    bond = detail(lab, "bond0")
    assert f"mode {mode}" in bond and "mtu 1402" in bond, bond
    assert f"arp_interval {interval_ms} " in bond and "arp_ip_target 10.67.0.2" in bond, bond
    for t in tunnels:
        d = detail(lab, t)
        assert "master bond0" in d and "mtu 1402" in d and "ttl 255" in d, d
    assert grebond_links(lab) == sorted(["bond0", *tunnels])
    # `offloads: off`: GSO/TSO/GRO off through a .link file per device (udev applies it when networkd
    # creates the device); without it they are the kernel's and there is no .link file
    off = "offloads: off" in Path(cfg).read_text()
    exts = ("link", "netdev", "network") if off else ("netdev", "network")
    assert ours_on_disk() == sorted(f"{PREFIX}{n}.{ext}" for n in ["bond0", *tunnels] for ext in exts)
    if off:
        for dev in ["bond0", *tunnels]:
            assert lab.offloads("r2", dev) == {"gso": "off", "tso": "off", "tso6": "off", "gro": "off"}, dev


def test_boot_persistence(lab_factory: Callable[..., Lab], networkd: Networkd, user_file: Path,
                          tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    cfg = write_config(tmp_path, model(extra="offloads: off"))
    build_peer(lab, cfg)
    # as an installer or image build would: files only, networkd not running yet
    done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", cfg, "--node", "r2", "--write-only")
    assert done.returncode == 0, done.stderr
    assert "bond0" not in grebond_links(lab)
    # at boot udevd starts with the .link files present; here it runs already, so it is told to reread
    # them now rather than within ~3 s (udev, not grebond, must set the offloads of networkd's devices)
    lab.run("r2", "udevadm", "control", "--reload")
    networkd.start()                                # cold start, as at boot
    assert_working(lab, cfg, ["gre1", "gre2"])
    # again, from no links at all
    networkd.stop()
    lab.run("r2", "ip", "link", "del", "bond0")
    lab.run("r2", "ip", "link", "del", "gre1")
    lab.run("r2", "ip", "link", "del", "gre2")
    networkd.start()
    assert_working(lab, cfg, ["gre1", "gre2"])
    assert user_file.read_bytes() == USER_BYTES
    assert_clean_log(networkd.text())


def test_model_changes_apply_live(lab_factory: Callable[..., Lab], networkd: Networkd, user_file: Path,
                                  tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2", paths=3)
    networkd.start()
    p1, p2, p3 = ("10.65.0.2", "10.65.0.6"), ("10.65.0.14", "10.65.0.10"), ("10.65.0.18", "10.65.0.22")
    steps = [
        ("seed", dict(), ["gre1", "gre2"]),
        ("mode", dict(mode="active-backup", extra="primary: gre1"), ["gre1", "gre2"]),
        ("remote", dict(mode="active-backup", extra="primary: gre1", tunnels={"gre1": p1, "gre2": p3}),
         ["gre1", "gre2"]),
        ("interval", dict(mode="active-backup", extra="primary: gre1", interval="200ms",
                          tunnels={"gre1": p1, "gre2": p3}), ["gre1", "gre2"]),
        ("third", dict(interval="200ms", tunnels={"gre1": p1, "gre2": p3, "gre3": p2}), ["gre1", "gre2", "gre3"]),
        ("remove", dict(interval="200ms", tunnels={"gre2": p3, "gre3": p2}), ["gre2", "gre3"]),
    ]
    for step, kwargs, tunnels in steps:
        cfg = write_config(tmp_path, model(**kwargs), f"{step}.yaml")
        build_peer(lab, cfg)
        if step == "mode":   # one dry run (each CLI call costs seconds under TCG): it says, and changes nothing
            before = ({p.name: p.read_bytes() for p in NETDIR.glob(f"{PREFIX}*")}, grebond_links(lab))
            dry = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", cfg, "--node", "r2", "--dry-run")
            assert dry.returncode == 0, f"{step}: {dry.stdout}{dry.stderr}"
            assert "would recreate bond0" in dry.stdout and "would write" in dry.stdout, dry.stdout
            assert before == ({p.name: p.read_bytes() for p in NETDIR.glob(f"{PREFIX}*")}, grebond_links(lab))
        done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", cfg, "--node", "r2", "--timeout", "60")
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
        mode = kwargs.get("mode", "balance-rr")
        assert_working(lab, cfg, tunnels, mode=str(mode), interval_ms=200 if "interval" in kwargs else 100)
        if step == "remote":
            assert "remote 10.65.0.22" in detail(lab, "gre2")
        assert user_file.read_bytes() == USER_BYTES, step
    done = grebond(lab, "r2", "remove", "--backend", "networkd", "-c", cfg, "--node", "r2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ours_on_disk() == [] and grebond_links(lab) == []
    assert user_file.read_bytes() == USER_BYTES
    assert_clean_log(networkd.text())


def test_failed_verification_rolls_back(lab_factory: Callable[..., Lab], networkd: Networkd, user_file: Path,
                                        tmp_path: Path) -> None:
    lab = lab_factory(root_router="r2")
    networkd.start()
    good = write_config(tmp_path, model(), "good.yaml")
    build_peer(lab, good)
    done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", good, "--node", "r2")
    assert done.returncode == 0, done.stdout + done.stderr
    files_before = {p.name: p.read_bytes() for p in NETDIR.glob(f"{PREFIX}*")}
    # gre2's remote has no route: the kernel takes it, networkd creates it, the verifier refuses it
    bad = write_config(tmp_path, model(tunnels={"gre1": ("10.65.0.2", "10.65.0.6"),
                                                "gre2": ("10.65.0.14", "10.99.0.10")}), "bad.yaml")
    done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", bad, "--node", "r2", "--timeout", "5")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "did not verify" in done.stderr and "10.99.0.10" in done.stderr, done.stderr
    assert {p.name: p.read_bytes() for p in NETDIR.glob(f"{PREFIX}*")} == files_before
    assert "remote 10.65.0.10" in detail(lab, "gre2")
    assert_working(lab, good, ["gre1", "gre2"])
    assert user_file.read_bytes() == USER_BYTES
