"""examples/ipv6-only.yaml: NetworkManager 1.52's keyfiles as golden files (the NM goldens of the
other examples are 1.42's, which cannot express this one), and each refusal naming its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from grebond.backends import registry
from grebond.backends.base import Context
from grebond.errors import ConfigError
from grebond.renderer import networkmanager as nm
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


def test_networkd_refuses_naming_the_missing_key() -> None:
    assert refusals("networkd") == [
        "links.bond6.monitor: probing fd67::2 needs the bond's NS monitor (ns_ip6_target), which no "
        "systemd-networkd release can set"]


def test_networkmanager_1_42_refuses_naming_1_44() -> None:
    found = refusals("networkmanager", target_nm="1.42")
    assert found[0] == ("links.bond6.monitor: probing fd67::2 needs the bond option ns_ip6_target (the NS monitor), "
                        "which NetworkManager has only since 1.44 (target: 1.42)")
    assert all("1.44" in line for line in found) and len(found) == 3      # and each tunnel's encaplimit none
