"""Steps shared by the live tests: the seed model, the peer router, grebond runs and what a user checks.

r2 is the router under test (the guest's root namespace when a daemon runs it); r1 is its peer,
built by grebond's iproute2 script. Not a test module: test modules import from here, never
from each other.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from lab.daemons import NETWORKD_DIR as NETDIR
from lab.daemons import NM_KEYDIR as KEYDIR
from lab.topology import Lab, wait_for
from models import SEED_TUNNELS, seed_link

PREFIX = "40-grebond-"
PEER_BOND_IP = "10.67.0.2"
USER_FILE = NETDIR / "30-lab-user.network"
USER_BYTES = b"# the user's own file; grebond must never touch it\n[Match]\nName=gbluser0\n\n[Network]\nDHCP=no\n"


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


# --- NetworkManager

UNRELATED = "lab-unrelated"
OURS = ("grebond-bond0", "grebond-gre1", "grebond-gre2", "grebond-gre3")
"""This test's profiles. The guest's /etc overlays the host's, so other files may appear there."""


def nmcli(*args: str) -> str:
    done = subprocess.run(["nmcli", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"nmcli {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def profiles() -> list[str]:
    """NM's profiles among this test's own (the unrelated one and grebond's)."""
    return sorted(n for n in nmcli("-t", "-f", "NAME", "connection", "show").splitlines() if n in (*OURS, UNRELATED))


def keyfiles() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in KEYDIR.glob("grebond-*.nmconnection") if p.stem in OURS}
