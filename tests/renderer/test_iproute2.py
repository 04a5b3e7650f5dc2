"""The iproute2 renderer: golden scripts, and the corrections over the hand-typed recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from grebond.backends.base import Context
from grebond.backends.registry import get
from grebond.renderer.iproute2 import commands_of
from grebond.validation import parse_config

from golden import assert_golden

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("node", ["r1", "r2"])
def test_golden(example: Path, node: str) -> None:
    config, _ = parse_config(example.read_bytes(), f"examples/{example.name}")
    rendering = get("iproute2").render(Context(config=config, node=node))
    for f in rendering.files:
        assert_golden(f"iproute2/{example.stem}/{node}/{f.name}", f.content)


def _commands(text: str, node: str = "r2") -> list[list[str]]:
    config, _ = parse_config(text)
    return commands_of(config.bonds_of(node))


SEED = (REPO / "examples" / "seed.yaml").read_text()


def test_slaves_down_before_enslaving_and_up_after() -> None:
    cmds = [" ".join(c) for c in _commands(SEED)]
    for name in ("gre1", "gre2"):
        down = cmds.index(f"ip link set dev {name} down")
        master = cmds.index(f"ip link set dev {name} master bond0")
        up = cmds.index(f"ip link set dev {name} up")
        assert down < master < up


def test_bond_created_with_mtu_mac_and_arp_monitor_before_enslaving() -> None:
    cmds = _commands(SEED)
    bond = next(c for c in cmds if c[:4] == ["ip", "link", "add", "bond0"])
    text = " ".join(bond)
    assert "mtu 1402" in text and "address 02:" in text
    assert "arp_interval 100 arp_ip_target 10.67.0.2 arp_validate none arp_missed_max 2" in text
    assert cmds.index(bond) < cmds.index(["ip", "link", "set", "dev", "gre1", "master", "bond0"])


def test_keyed_ipv6_tunnel() -> None:
    cmds = _commands((REPO / "examples" / "ipv6.yaml").read_text().replace(
        'ends: {r2: "fd65::2", r1: "fd65::6"}', 'ends: {r2: "fd65::2", r1: "fd65::6"}\n        key: 7'))
    gre = " ".join(next(c for c in cmds if c[3] == "gre61"))
    assert gre == "ip link add gre61 mtu 1358 type ip6gretap local fd65::2 remote fd65::6 ttl 255 key 7 encaplimit none"


def test_mii_monitor_and_active_backup_primary() -> None:
    text = SEED.replace("mode: balance-rr", "mode: active-backup\n    primary: gre2").replace(
        "type: arp", "type: mii").replace("      missed-max: 2\n      validate: none\n", "")
    cmds = [" ".join(c) for c in _commands(text)]
    assert any("type bond mode active-backup miimon 100" in c for c in cmds)
    assert cmds.index("ip link set dev bond0 type bond primary gre2") > cmds.index("ip link set dev gre2 master bond0")


def test_an_ipv6_only_bond_is_probed_by_the_ns_monitor() -> None:
    text = (REPO / "examples" / "ipv6.yaml").read_text().replace("10.68.0.1/24, ", "").replace("10.68.0.2/24, ", "")
    [bond_cmd] = [c for c in _commands(text) if c[:4] == ["ip", "link", "add", "bond6"]]
    i = bond_cmd.index("ns_ip6_target")
    assert bond_cmd[i + 1] == "fd68::2" and "arp_ip_target" not in bond_cmd and "arp_interval" in bond_cmd


def test_delay_is_a_netem_root_qdisc_on_each_copy_after_the_tunnels_are_up() -> None:
    text = SEED.replace("        ends: {r2: 10.65.0.2, r1: 10.65.0.6}",
                        "        ends: {r2: 10.65.0.2, r1: 10.65.0.6}\n        weight: 2\n        delay: 9.5ms")
    cmds = [" ".join(c) for c in _commands(text, "r1")]
    assert "ip link add gre1b mtu 1398 type gretap local 10.65.0.6 remote 10.65.0.2 ttl 255 key 1" in cmds
    tc = [c for c in cmds if c.startswith("tc ")]
    assert tc == ["tc qdisc replace dev gre1 root netem delay 9.5ms limit 10000",
                  "tc qdisc replace dev gre1b root netem delay 9.5ms limit 10000"]
    assert cmds.index(tc[0]) > cmds.index("ip link set dev gre1b up") and cmds[-1] == "ip link set dev bond0 up"
