"""Install the built .deb for real with apt-get, use it, re-run its hooks, then purge it.

Root only (apt-get, dpkg). The machine is disposable, but the test still leaves it as it
found it: the package is purged at the end, an existing /etc/grebond/grebond.yaml is put
back, and the files it plants in /etc/systemd/network and /etc/NetworkManager are removed.
The tests run in file order and share one installation (module fixture).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from needs import need

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed.yaml"
CONFIG = Path("/etc/grebond/grebond.yaml")
DEFAULTS = Path("/etc/default/grebond")
NETWORKD = Path("/etc/systemd/network")
NM = Path("/etc/NetworkManager/system-connections")
USER_NETWORK = NETWORKD / "99-grebond-test-user.network"    # "grebond" in the name, but not generated
USER_KEYFILE = NM / "grebond-test-user.nmconnection"
SYSENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
          "HOME": "/root"}

pytestmark = pytest.mark.deb


@pytest.fixture(scope="module", autouse=True)
def installer() -> None:
    """Root and apt-get, checked before the module's installation fixture runs."""
    need(os.geteuid() == 0, "installing a .deb needs root")
    need(shutil.which("apt-get"), "not a Debian system (no apt-get)")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=SYSENV)
    if check:
        assert done.returncode == 0, f"{' '.join(argv)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def snapshot(*dirs: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in dirs if d.is_dir() for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()}


def installed() -> bool:
    done = sh("dpkg-query", "-W", "-f", "${Status}", "grebond", check=False)
    return done.returncode == 0 and "installed" in done.stdout and "not-installed" not in done.stdout


def reinstall(deb: Path) -> subprocess.CompletedProcess[str]:
    """apt-get install --reinstall: runs prerm upgrade and postinst configure again, as an upgrade does."""
    return sh("apt-get", "install", "-y", "--reinstall", "-o", "Dpkg::Options::=--force-confold", str(deb))


class State:
    deb: Path
    before: dict[str, str]
    files: list[str]


@pytest.fixture(scope="module")
def pkg(deb: Path) -> Iterator[State]:
    state = State()
    state.deb = deb
    saved = CONFIG.read_bytes() if CONFIG.exists() else None
    if installed():
        sh("apt-get", "purge", "-y", "grebond")
    created = [d for d in (NM.parent, NM, NETWORKD) if not d.exists()]
    NETWORKD.mkdir(parents=True, exist_ok=True)
    NM.mkdir(parents=True, exist_ok=True)
    USER_NETWORK.write_text("[Match]\nName=grebondtest0\n")
    USER_KEYFILE.write_text("[connection]\nid=user\ntype=dummy\n")
    USER_KEYFILE.chmod(0o600)
    if CONFIG.exists():
        CONFIG.unlink()
    state.before = snapshot(NETWORKD, NM)
    sh("apt-get", "install", "-y", str(deb))
    state.files = [line for line in sh("dpkg", "-L", "grebond").stdout.splitlines() if Path(line).is_file()]
    try:
        yield state
    finally:
        if installed():
            sh("apt-get", "purge", "-y", "grebond", check=False)
        USER_NETWORK.unlink(missing_ok=True)
        USER_KEYFILE.unlink(missing_ok=True)
        for d in sorted(created, key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
        if saved is not None:
            CONFIG.parent.mkdir(exist_ok=True)
            CONFIG.write_bytes(saved)
        elif CONFIG.exists():
            CONFIG.unlink()
            try:
                CONFIG.parent.rmdir()
            except OSError:
                pass


def test_help_and_version(pkg: State) -> None:
    done = sh("grebond", "--help")
    for command in ("validate", "render", "apply", "remove", "verify"):
        assert command in done.stdout
    version = sh("dpkg-query", "-W", "-f", "${Version}", "grebond").stdout
    assert sh("grebond", "--version").stdout.strip() == f"grebond {version.rsplit('-', 1)[0]}"
    assert sh("/usr/bin/grebond", "validate", "-c", "/usr/share/doc/grebond/examples/seed.yaml").returncode == 0


def test_man_page(pkg: State) -> None:
    need(shutil.which("man"), "man-db is not installed")
    text = sh("man", "-P", "cat", "grebond").stdout
    assert "EXIT STATUS" in text and "grebond-verify.service" in text


def test_completion(pkg: State) -> None:
    done = sh("bash", "-c", "source /usr/share/bash-completion/completions/grebond; "
              "COMP_WORDS=(grebond ap); COMP_CWORD=1; _grebond; echo ${COMPREPLY[*]}; complete -p grebond")
    assert done.stdout.splitlines() == ["apply", "complete -F _grebond grebond"]


def test_verify_unit_enabled_not_started(pkg: State) -> None:
    assert Path("/etc/systemd/system/multi-user.target.wants/grebond-verify.service").is_symlink()
    assert sh("systemctl", "is-enabled", "grebond-verify.service", check=False).stdout.strip() == "enabled"
    analyze = sh("systemd-analyze", "verify", "/lib/systemd/system/grebond-verify.service", check=False)
    assert "grebond-verify.service" not in analyze.stderr, analyze.stderr


def test_install_created_no_config(pkg: State) -> None:
    assert not CONFIG.exists()
    assert snapshot(NETWORKD, NM) == pkg.before


def test_postinst_writes_config_for_backend(pkg: State) -> None:
    CONFIG.parent.mkdir(exist_ok=True)
    shutil.copy(SEED, CONFIG)
    CONFIG.chmod(0o644)
    DEFAULTS.write_text(DEFAULTS.read_text() + "backend=iproute2\nnode=r1\n")
    done = reinstall(pkg.deb)
    script = Path("/etc/grebond/grebond-r1.sh")
    assert "Generated by grebond" in script.read_text(), done.stdout + done.stderr
    first = script.read_bytes()
    reinstall(pkg.deb)                       # twice: idempotent
    assert script.read_bytes() == first


def test_postinst_writes_networkd_files(pkg: State) -> None:
    DEFAULTS.write_text(DEFAULTS.read_text().replace("backend=iproute2", "backend=networkd"))
    done = reinstall(pkg.deb)
    written = sorted(NETWORKD.glob("40-grebond-*"))
    assert written, done.stdout + done.stderr
    assert all("Generated by grebond" in p.read_text().splitlines()[0] for p in written)
    assert USER_NETWORK.read_text() == "[Match]\nName=grebondtest0\n"


def test_invalid_config_does_not_fail_install_and_keeps_files(pkg: State) -> None:
    before = snapshot(NETWORKD, Path("/etc/grebond"))
    CONFIG.write_text(SEED.read_text().replace("mode: balance-rr", "mode: balance-rrr"))
    done = reinstall(pkg.deb)
    assert "is not valid" in done.stdout + done.stderr
    after = snapshot(NETWORKD, Path("/etc/grebond"))
    after.pop(str(CONFIG))
    before.pop(str(CONFIG))
    assert after == before


def test_purge_removes_every_grebond_file_and_nothing_else(pkg: State) -> None:
    sh("apt-get", "purge", "-y", "grebond")
    assert not installed()
    left = [f for f in pkg.files if Path(f).exists()]
    assert not left, f"files of the package left after purge: {left}"
    assert not DEFAULTS.exists()
    assert not Path("/etc/systemd/system/multi-user.target.wants/grebond-verify.service").exists()
    for d in (NETWORKD, NM, Path("/etc/grebond")):
        generated = [p for p in d.rglob("*") if p.is_file() and "Generated by grebond" in p.read_text(errors="replace")]
        assert not generated, generated
    assert snapshot(NETWORKD, NM) == pkg.before, "purge changed files grebond did not generate"
    assert CONFIG.exists(), "the administrator's model is kept"
