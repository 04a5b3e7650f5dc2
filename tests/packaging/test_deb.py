"""The .deb built by .ci/build-deb: metadata, contents and a clean lintian run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import grebond

from needs import need

pytestmark = pytest.mark.deb


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


def contents(deb: Path) -> dict[str, str]:
    """path (without the leading '.') -> mode string."""
    rows = {}
    for line in dpkg_deb("-c", str(deb)).splitlines():
        fields = line.split()
        rows[fields[5].lstrip(".").rstrip("/") or "/"] = fields[0]
    return rows


def test_version_matches_grebond(deb: Path) -> None:
    version = dpkg_deb("-f", str(deb), "Version").strip()
    assert version.rsplit("-", 1)[0] == grebond.__version__
    assert deb.name == f"grebond_{version}_all.deb"


def test_relationships(deb: Path) -> None:
    fields = {k: dpkg_deb("-f", str(deb), k).strip() for k in ("Depends", "Recommends", "Suggests", "Architecture")}
    depends = {d.strip().split()[0] for d in fields["Depends"].split(",")}
    assert {"python3-pyroute2", "python3-dbus-next", "python3-yaml"} <= depends
    assert fields["Recommends"] == "wireguard-tools"
    assert fields["Suggests"] == "network-manager, ethtool"      # ethtool: the iproute2 script sets offloads
    assert fields["Architecture"] == "all"


def test_contents(deb: Path) -> None:
    files = contents(deb)
    for path in ("/usr/bin/grebond", "/usr/share/man/man8/grebond.8.gz",
                 "/usr/share/bash-completion/completions/grebond", "/lib/systemd/system/grebond-verify.service",
                 "/usr/libexec/grebond/grebond-helper", "/usr/share/doc/grebond/copyright",
                 "/usr/share/doc/grebond/examples/seed.yaml", "/usr/share/doc/grebond/examples/ipv6.yaml",
                 "/usr/lib/python3/dist-packages/grebond/__init__.py"):
        assert path in files, path
    assert files["/usr/bin/grebond"].startswith("-rwxr-xr-x")
    assert files["/usr/libexec/grebond/grebond-helper"].startswith("-rwxr-xr-x")
    under_etc = {p for p, mode in files.items() if p.startswith("/etc/") and not mode.startswith("d")}
    assert under_etc == {"/etc/default/grebond"}, "only /etc/default/grebond may be shipped under /etc"
    assert not any(p.endswith(".yaml") and not p.startswith("/usr/share/doc/grebond/examples/") for p in files)
    assert not any("__pycache__" in p or "/tests" in p for p in files)


def test_conffiles(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path / "control")], check=True)
    assert (tmp_path / "control/conffiles").read_text().split() == ["/etc/default/grebond"]
    for script in ("postinst", "postrm"):
        text = (tmp_path / "control" / script).read_text()
        assert "grebond" in text and "set -e" in text
    assert "deb-systemd-helper" in (tmp_path / "control/postinst").read_text()  # enable snippet from dh


def test_lintian_clean(deb: Path) -> None:
    need(shutil.which("lintian"), "lintian is not installed (.ci/build-deb installs it)")
    done = subprocess.run(["lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", str(deb)],
                          capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"})
    tags = [line for line in done.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert done.returncode == 0 and not tags, done.stdout + done.stderr
