"""The networkd backend against a real systemd-networkd 252 in the lab guest.

networkd only works in the guest's ROOT namespace (its udev sees no other), so r2 is the root
namespace and runs networkd; r1 is a namespace built by grebond's iproute2 script. What is
asserted is what a user sees: files on disk, kernel fields (``ip -d link``), ping across the
bond, ``grebond verify``'s exit status, and networkd's own log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.daemons import Networkd
from lab.topology import Lab
from live.helpers import (
    NETDIR,
    PREFIX,
    USER_BYTES,
    USER_FILE,
    assert_clean_log,
    assert_working,
    build_peer,
    detail,
    grebond,
    grebond_links,
    model,
    ours_on_disk,
    write_config,
)

pytestmark = pytest.mark.kernel(root_ns=True)


@pytest.fixture
def user_file() -> Iterator[Path]:
    NETDIR.mkdir(parents=True, exist_ok=True)
    USER_FILE.write_bytes(USER_BYTES)
    yield USER_FILE
    USER_FILE.unlink(missing_ok=True)


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
