"""grebond.renderer.networkd_ns: the udev rule that gives a networkd-created bond its NS targets."""

from __future__ import annotations

from pathlib import Path

from grebond.generated import GENERATED_MARKER
from grebond.renderer.networkd_ns import rule_name, udev_rule
from grebond.validation import load_config

REPO = Path(__file__).resolve().parents[2]


def test_the_rule_for_the_ipv6_only_example() -> None:
    config, _ = load_config(REPO / "examples/ipv6-only.yaml")
    rule = udev_rule(config.bonds_of("r2")[0], "examples/ipv6-only.yaml", "r2", 257)
    assert rule is not None and rule.name == rule_name("bond6") == "90-grebond-bond6.rules"
    lines = rule.content.decode().splitlines()
    assert lines[0] == f"# {GENERATED_MARKER} from examples/ipv6-only.yaml for node r2; do not edit."
    assert lines[-1] == ('ACTION=="add", SUBSYSTEM=="net", KERNEL=="bond6", ENV{DEVTYPE}=="bond", '
                         'RUN+="/sbin/ip link set dev bond6 type bond ns_ip6_target fd67::2"')


def test_missed_max_rides_along_before_systemd_256_and_ipv4_bonds_get_no_rule() -> None:
    config, _ = load_config(REPO / "examples/ipv6-only.yaml")
    rule = udev_rule(config.bonds_of("r1")[0], "x.yaml", "r1", 252)
    assert rule is not None and rule.content.decode().endswith(" ns_ip6_target fd67::1 arp_missed_max 2\"\n")
    seed, _ = load_config(REPO / "examples/seed.yaml")
    assert udev_rule(seed.bonds_of("r2")[0], "x.yaml", "r2", 257) is None
