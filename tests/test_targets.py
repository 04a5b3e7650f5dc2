"""Which versions files are rendered for, read from a tree as dpkg and os-release describe it."""

from __future__ import annotations

from pathlib import Path

from grebond.targets import detect

STATUS = """Package: libsystemd0
Status: install ok installed
Version: 257.9-1~deb13u1

Package: systemd
Status: install ok installed
Priority: important
Version: 257.9-1~deb13u1
Description: system and service manager
 Package: network-manager
 (a description line that looks like a field)

Package: network-manager
Status: deinstall ok config-files
Version: 1.42.4-1

"""


def tree(tmp_path: Path, status: str | None = None, os_release: str | None = None) -> Path:
    if status is not None:
        (tmp_path / "var/lib/dpkg").mkdir(parents=True)
        (tmp_path / "var/lib/dpkg/status").write_text(status)
    if os_release is not None:
        (tmp_path / "etc").mkdir(exist_ok=True)
        (tmp_path / "etc/os-release").write_text(os_release)
    return tmp_path


def test_installed_packages_decide_and_removed_ones_do_not(tmp_path: Path) -> None:
    found = detect(tree(tmp_path, STATUS, 'ID=debian\nVERSION_ID="13"\n'))
    assert (found.systemd, found.nm, found.assumed) == (257, "1.52", False)    # NM only config-files: Debian 13's
    assert found.source == f"installed on {tmp_path}"


def test_os_release_gives_the_release_versions(tmp_path: Path) -> None:
    found = detect(tree(tmp_path, os_release='PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'))
    assert (found.systemd, found.nm) == (252, "1.42") and "Debian 12" in found.source


def test_nothing_to_read_is_debian_13_and_says_so(tmp_path: Path) -> None:
    found = detect(tmp_path)
    assert (found.systemd, found.nm, found.assumed) == (257, "1.52", True)
    assert "nothing installed" in found.describe()
