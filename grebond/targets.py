"""Which systemd and NetworkManager the files are for, when no running daemon can be asked.

What networkd and NetworkManager accept depends on their version (ARPMissedMax= since systemd
256, arp_missed_max and ip6gretap flags since NM 1.44...). A running NetworkManager says its own
version over D-Bus; otherwise (``render``, ``--write-only``, ``--root DIR``, the install hooks)
grebond reads what is installed on the target: dpkg's status file of this host or of the tree,
then the tree's os-release for the Debian release's own versions. With nothing to read, the
target is Debian 13's (the current stable) and grebond says it assumed so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEBIAN_RELEASES = {"12": (252, "1.42"), "13": (257, "1.52")}
DEFAULT = DEBIAN_RELEASES["13"]


@dataclass(frozen=True)
class Targets:
    systemd: int
    nm: str
    source: str                   # where the versions came from, for the user
    assumed: bool = False         # nothing to read: Debian 13's defaults

    def describe(self) -> str:
        return f"systemd {self.systemd} and NetworkManager {self.nm} ({self.source})"


def detect(root: Path = Path("/")) -> Targets:
    """The versions installed under ``root``: dpkg first, then the Debian release, then Debian 13's."""
    where = "this host" if root == Path("/") else str(root)
    packages = _dpkg_versions(root / "var/lib/dpkg/status", ("systemd", "network-manager"))
    release = _debian_release(root / "etc/os-release")
    fallback = DEBIAN_RELEASES.get(release or "", DEFAULT)
    systemd = _major(packages.get("systemd"))
    nm = _major_minor(packages.get("network-manager"))
    if systemd is not None or nm is not None:
        return Targets(systemd if systemd is not None else fallback[0], nm or fallback[1],
                       f"installed on {where}")
    if release in DEBIAN_RELEASES:
        return Targets(*fallback, f"Debian {release}'s, from {where}'s os-release")
    return Targets(*DEFAULT, "Debian 13's: nothing installed to read", assumed=True)


def _dpkg_versions(status: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Version of each installed package of ``names`` in a dpkg status file."""
    try:
        text = status.read_text(errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.M))
        if fields.get("Package") in names and fields.get("Status", "").endswith(" installed"):
            out[fields["Package"]] = fields.get("Version", "")
    return out


def _debian_release(os_release: Path) -> str | None:
    try:
        text = os_release.read_text(errors="replace")
    except OSError:
        return None
    fields = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', text, re.M))
    return fields.get("VERSION_ID") if fields.get("ID") == "debian" else None


def _major(version: str | None) -> int | None:
    """'257.13-1~deb13u1' -> 257; '252.39-1~deb12u1' -> 252."""
    match = re.match(r"(?:\d+:)?(\d+)", version or "")
    return int(match.group(1)) if match else None


def _major_minor(version: str | None) -> str | None:
    """'1.52.1-1' -> '1.52'; '1.42.4-1' -> '1.42'."""
    match = re.match(r"(?:\d+:)?(\d+)\.(\d+)", version or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None
