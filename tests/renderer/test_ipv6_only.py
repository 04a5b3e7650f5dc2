"""examples/ipv6-only.yaml: NetworkManager 1.52's keyfiles as golden files (the NM goldens of the
other examples are 1.42's, which cannot express this one), networkd's files and udev rule for
systemd 252 and 257, and each refusal naming its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from grebond.backends import registry
from grebond.backends.base import Context
from grebond.errors import ConfigError
from grebond.renderer import networkd
from grebond.renderer import networkmanager as nm
from grebond.renderer.networkd_ns import UDEV_RULES_DIR
from grebond.validation import load_config

from golden import assert_golden, assert_golden_set

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/ipv6-only.yaml"
KEYFILES = ["grebond-bond6.nmconnection", "grebond-gre61.nmconnection", "grebond-gre62.nmconnection"]


@pytest.mark.parametrize("node", ["r1", "r2"])
def test_golden_networkmanager_1_52(in_repo: Path, node: str) -> None:
    config, _ = load_config(EXAMPLE)
    rendering = nm.render(config.bonds_of(node), config.source, node, "1.52")
    assert [f.name for f in rendering.files] == KEYFILES
    for f in rendering.files:
        assert_golden(f"networkmanager/ipv6-only/{node}/{f.name}", f.content)
    assert_golden_set(f"networkmanager/ipv6-only/{node}", KEYFILES)


def test_the_default_monitor_probes_the_peers_ipv6_bond_address(in_repo: Path) -> None:
    config, _ = load_config(EXAMPLE)
    r2, r1 = config.bonds_of("r2")[0], config.bonds_of("r1")[0]
    assert (r2.arp_targets, tuple(map(str, r2.ns_targets))) == ((), ("fd67::2",))
    assert tuple(map(str, r1.ns_targets)) == ("fd67::1",) and r2.mtu == 1362


def refusals(backend: str, systemd: int = 257, target_nm: str = "1.52") -> list[str]:
    config, _ = load_config(REPO / EXAMPLE)
    with pytest.raises(ConfigError) as err:
        registry.get(backend).render(Context(config=config, node="r2", target_systemd=systemd, target_nm=target_nm))
    return [f"{p.path}: {p.message}" for p in err.value.problems]


@pytest.mark.parametrize("systemd", [252, 257])
@pytest.mark.parametrize("node", ["r1", "r2"])
def test_golden_networkd_with_its_udev_rule(in_repo: Path, node: str, systemd: int) -> None:
    """The NS targets in grebond's udev rule (arp_missed_max too on 252, which lacks ARPMissedMax=),
    and no DAD on the bond, whose carrier waits for the NS monitor."""
    config, _ = load_config(EXAMPLE)
    rendering = networkd.render(config.bonds_of(node), config.source, node, systemd)
    names = [f.name for f in rendering.files]
    assert names[-1] == "90-grebond-bond6.rules" and len(names) == 7, names
    assert {f.name: f.directory for f in rendering.files if f.directory} == {"90-grebond-bond6.rules": UDEV_RULES_DIR}
    for f in rendering.files:
        assert_golden(f"networkd/ipv6-only-{systemd}/{node}/{f.name}", f.content)
    assert_golden_set(f"networkd/ipv6-only-{systemd}/{node}", names)
    bond = {f.name: f.content.decode() for f in rendering.files}
    assert "IPv6DuplicateAddressDetection=0" in bond["40-grebond-bond6.network"]
    assert ("ARPMissedMax=2" in bond["40-grebond-bond6.netdev"]) == (systemd >= 256)
    assert bond["90-grebond-bond6.rules"].rstrip().endswith(
        ("fd67::2" if node == "r2" else "fd67::1") + (" arp_missed_max 2" if systemd < 256 else "") + '"')


def test_networkmanager_1_42_refuses_naming_1_44() -> None:
    found = refusals("networkmanager", target_nm="1.42")
    assert found[0] == ("links.bond6.monitor: probing fd67::2 needs the bond option ns_ip6_target (the NS monitor), "
                        "which NetworkManager has only since 1.44 (target: 1.42)")
    assert all("1.44" in line for line in found) and len(found) == 3      # and each tunnel's encaplimit none
