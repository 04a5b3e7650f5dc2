"""The installed Debian package at boot: its install hook writes the configuration, the daemon
starts cold, and the command of grebond-verify.service tells a matching kernel from a broken one.

The .deb built by .ci/build-deb is installed with dpkg in a private mount namespace of the lab
guest (tests/lab/package.py): the package's own /usr/bin/grebond with Debian's python3-pyroute2,
its postinst, its unit file. r2 is the guest's root network namespace, where the daemon runs;
r1 is built by grebond's iproute2 script. Nothing is started by the package: as at boot, the
daemon starts from the files the install hook left.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.daemons import Daemon, Networkd, NetworkManager
from lab.package import InstalledPackage, find_deb
from lab.topology import Lab, wait_for
from live.helpers import (
    PEER_BOND_IP,
    PREFIX,
    build_peer,
    grebond_links,
    model,
    write_config,
)
from needs import need

pytestmark = pytest.mark.kernel(root_ns=True)

CONFIG = "/etc/grebond/grebond.yaml"
DEFAULTS = "/etc/default/grebond"
VERIFY_UNIT = "grebond-verify.service"
NETDIR = "/etc/systemd/network"
KEYDIR = "/etc/NetworkManager/system-connections"
# Settle time of the verify unit's command: long enough for a cold daemon under TCG; a drift
# that cannot converge costs it in full, so the broken case below shortens it (GREBOND_SETTLE).
SETTLE = "60"


@pytest.fixture
def package() -> Iterator[InstalledPackage]:
    deb, why = find_deb()
    need(deb, why)
    assert deb is not None
    pkg = InstalledPackage(deb).start()
    yield pkg
    pkg.close()


def install_with(pkg: InstalledPackage, backend: str, config: str) -> str:
    """Pre-seed the model and /etc/default/grebond, install the .deb; return dpkg's output."""
    pkg.write(CONFIG, config, 0o600)
    pkg.write(DEFAULTS, f"backend={backend}\nnode=r2\nsettle={SETTLE}\n")
    done = pkg.install()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert pkg.status() == "install ok installed", out
    assert f"persistent configuration for backend '{backend}' is up to date" in out, out
    enabled = pkg.path(f"/etc/systemd/system/multi-user.target.wants/{VERIFY_UNIT}")
    assert enabled.is_symlink(), f"{VERIFY_UNIT} not enabled by the package\n{out}"
    return out


def run_verify_unit(pkg: InstalledPackage, **env: str) -> subprocess.CompletedProcess[str]:
    """What systemd would run for grebond-verify.service, run by hand (no systemd as PID 1 here)."""
    return pkg.run(pkg.unit_command(VERIFY_UNIT), env=env)


def break_and_verify(pkg: InstalledPackage) -> None:
    """Edit the model without applying it: the verify unit's command must fail and say why."""
    pkg.write(CONFIG, model(mode="active-backup", extra="primary: gre1"), 0o600)
    done = run_verify_unit(pkg, GREBOND_SETTLE="2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[FAIL] bond0 mode: expected active-backup, got balance-rr" in done.stdout, done.stdout


def installed_with_peer(lab_factory: Callable[..., Lab], pkg: InstalledPackage, backend: str,
                        tmp_path: Path) -> Lab:
    """r1 on the seed model, the package installed on r2 with it; the running network untouched."""
    lab = lab_factory(root_router="r2")
    cfg = model(extra="offloads: off")      # so the verify unit checks what udev or NM set at boot
    build_peer(lab, write_config(tmp_path, cfg))
    install_with(pkg, backend, cfg)
    assert grebond_links(lab) == [], "the install hook must not touch the running network"
    return lab


def boot_and_verify(lab: Lab, pkg: InstalledPackage, daemon: Daemon) -> None:
    """The daemon starts cold, as at boot; the verify unit passes, the bond carries pings, and a
    broken model then fails the unit."""
    try:
        daemon.start()
        assert wait_for(lambda: grebond_links(lab) == ["bond0", "gre1", "gre2"], timeout=60), daemon.text()
        done = run_verify_unit(pkg)
        assert done.returncode == 0, done.stdout + done.stderr + daemon.text()
        assert wait_for(lambda: lab.ping("r2", PEER_BOND_IP, count=1, wait=1).ok, timeout=20), "no ping over bond0"
        break_and_verify(pkg)
    finally:
        daemon.close()


def test_networkd_cold_start_from_install_hook(lab_factory: Callable[..., Lab], package: InstalledPackage,
                                               tmp_path: Path) -> None:
    lab = installed_with_peer(lab_factory, package, "networkd", tmp_path)
    written = sorted(p.name for p in package.path(NETDIR).glob(f"{PREFIX}*"))
    assert written == sorted(f"{PREFIX}{n}.{e}" for n in ("bond0", "gre1", "gre2") for e in ("link", "netdev", "network"))
    # The .link files (offloads) are udev's, and the guest's udevd runs outside the package's mount
    # namespace: show it the installed ones, as a boot would, so that it, not grebond, sets the
    # offloads of the devices networkd creates (the verify unit checks them).
    Path(NETDIR).mkdir(parents=True, exist_ok=True)
    shown = [Path(NETDIR) / p.name for p in package.path(NETDIR).glob(f"{PREFIX}*.link")]
    for p in shown:
        p.write_bytes(package.path(p).read_bytes())
    lab.run("r2", "udevadm", "control", "--reload")
    try:
        boot_and_verify(lab, package, Networkd(tmp_path / "networkd.log", prefix=package.prefix, root=package.root))
    finally:
        for p in shown:
            p.unlink(missing_ok=True)
        lab.run("r2", "udevadm", "control", "--reload")


def test_networkmanager_cold_start_from_install_hook(lab_factory: Callable[..., Lab], package: InstalledPackage,
                                                     tmp_path: Path) -> None:
    lab = installed_with_peer(lab_factory, package, "networkmanager", tmp_path)
    keyfiles = sorted(package.path(KEYDIR).glob("grebond-*.nmconnection"))
    assert [p.name for p in keyfiles] == [f"grebond-{n}.nmconnection" for n in ("bond0", "gre1", "gre2")]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in keyfiles)
    boot_and_verify(lab, package, NetworkManager(tmp_path / "nm.log", prefix=package.prefix, root=package.root))
