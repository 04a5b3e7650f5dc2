"""Validation of NS monitor targets (issue 17), on examples/ipv6-only.yaml edited in one place:
the line a user reads for each mistake, and the targets each end probes when it is right."""

from __future__ import annotations

from pathlib import Path

import pytest

from grebond.errors import ConfigError
from grebond.validation import parse_config

EXAMPLE = (Path(__file__).resolve().parents[1] / "examples" / "ipv6-only.yaml").read_text()
MONITOR = "    monitor: {type: arp, interval: 100ms, missed-max: 2}"
AT = f"f.yaml:{EXAMPLE.splitlines().index(MONITOR) + 1}"     # the line a user is pointed at: the monitor's


def with_targets(targets: str, text: str = EXAMPLE) -> str:
    assert MONITOR in text
    return text.replace(MONITOR, f"    monitor: {{type: arp, interval: 100ms, missed-max: 2, targets: {targets}}}")


def problems(text: str) -> list[str]:
    try:
        _, found = parse_config(text, "f.yaml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return [str(p) for p in found]


def test_the_example_is_valid_without_warnings_and_probes_the_peer_by_ns() -> None:
    config, found = parse_config(EXAMPLE, "f.yaml")
    assert found == []
    assert [(b.node, b.arp_targets, tuple(map(str, b.ns_targets))) for n in config.nodes for b in config.bonds_of(n)] \
        == [("r1", (), ("fd67::1",)), ("r2", (), ("fd67::2",))]


def test_mixed_targets_on_a_dual_stack_bond_split_by_family() -> None:
    text = with_targets('["fd67::9", 10.67.0.9]', EXAMPLE.replace('"fd67::1/64"]', '"fd67::1/64", 10.67.0.1/24]')
                        .replace('"fd67::2/64"]', '"fd67::2/64", 10.67.0.2/24]'))
    config, found = parse_config(text, "f.yaml")
    bond = config.bonds_of("r2")[0]
    assert found == [] and tuple(map(str, bond.arp_targets)) == ("10.67.0.9",) \
        and tuple(map(str, bond.ns_targets)) == ("fd67::9",)


@pytest.mark.parametrize(("targets", "line"), [
    ("[10.67.0.9]", f"{AT}: links.bond6.monitor.targets: r1's bond has no IPv4 address to send its probes of "
                    "10.67.0.9 from; give r1's bond an IPv4 address, or probe the other family"),
    ('["fe80::2"]', f"{AT}: warning: links.bond6.monitor.targets: 'fe80::2' is link-local: with such a target the "
                    "kernel's NS monitor never brought a slave up in grebond's tests (Linux 6.1); probe the peer's "
                    "global or unique-local bond address (leave targets out to do so)"),
    ('["ff02::1"]', f"{AT}: links.bond6.monitor.targets: 'ff02::1' cannot answer a probe; use a unicast "
                    "address of the peer"),
], ids=["ipv4-target-on-ipv6-only-bond", "link-local-warning", "multicast"])
def test_what_a_user_reads(targets: str, line: str) -> None:
    assert line in problems(with_targets(targets))


def test_seventeen_ns_targets_are_more_than_the_kernel_holds() -> None:
    many = "[" + ", ".join(f'"fd67::{i:x}"' for i in range(3, 20)) + "]"
    assert any("has 17 IPv6 targets; the kernel's NS monitor allows 16" in p for p in problems(with_targets(many)))
