"""The MTU arithmetic of issue 2, through the library and through `grebond mtu`."""

from __future__ import annotations

from pathlib import Path

import pytest

from grebond import mtu
from grebond.cli import main

REPO = Path(__file__).resolve().parents[1]

# (underlay device MTU, tunnel family, keyed, encaplimit) -> bond MTU
CASES = {
    "wg4-base1500-gretap": ((1440, 4, False, None), 1402),
    "wg4-base1500-gretap-keyed": ((1440, 4, True, None), 1398),
    "wg6-base1500-ip6gretap-encaplimit-none": ((1420, 6, False, None), 1362),
    "wg6-base1500-ip6gretap-kernel-default": ((1420, 6, False, 4), 1354),
    "wg6-base1500-ip6gretap-keyed": ((1420, 6, True, None), 1358),
    "wg6-base1500-ip6gretap-keyed-kernel-default": ((1420, 6, True, 4), 1350),
    "wg-default-1420-gretap": ((1420, 4, False, None), 1382),
    "wg-default-1420-gretap-keyed": ((1420, 4, True, None), 1378),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tunnel_breakdown(case: str) -> None:
    (underlay, family, keyed, encaplimit), expected = CASES[case]
    breakdown = mtu.tunnel_breakdown(underlay, family, keyed, encaplimit)
    assert breakdown.mtu == expected
    assert breakdown.lines()[-1].split()[-1] == str(expected)


@pytest.mark.parametrize(("base", "family", "expected"), [(1500, 4, 1440), (1500, 6, 1420), (9000, 4, 8940)],
                         ids=["ipv4", "ipv6", "jumbo"])
def test_wireguard_mtu(base: int, family: int, expected: int) -> None:
    assert mtu.wireguard_mtu(base, family) == expected


CLI_CASES = {
    "base1500-ipv4": (["--base", "1500"], "bond MTU 1402"),
    "base1500-ipv4-keyed": (["--base", "1500", "--key"], "bond MTU 1398"),
    "base1500-ipv6-encaplimit-none": (["--base", "1500", "--wireguard", "ipv6"], "bond MTU 1362"),
    "base1500-ipv6-kernel-default": (["--base", "1500", "--wireguard", "ipv6", "--encaplimit", "4"], "bond MTU 1354"),
    "wireguard-default-1420": (["--underlay-mtu", "1420"], "bond MTU 1382"),
    "wireguard-default-1420-keyed": (["--underlay-mtu", "1420", "--key"], "bond MTU 1378"),
    "no-wireguard": (["--base", "1500", "--wireguard", "none"], "bond MTU 1462"),
    "too-small-for-ipv6": (["--underlay-mtu", "1300"], "bond MTU 1262 (below 1280: no IPv6 on the bond)"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_mtu_calculator_cli(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    args, last = CLI_CASES[case]
    assert main(["mtu", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == last


def test_mtu_calculator_shows_each_layer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mtu", "--base", "1500"]) == 0
    out = capsys.readouterr().out
    assert "1500 - 60 (IPv4 20 + UDP 8 + WireGuard 32) = 1440" in out
    for layer in ("outer IPv4 header", "GRE header", "inner Ethernet header"):
        assert layer in out


def test_bad_encaplimit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mtu", "--base", "1500", "--wireguard", "ipv6", "--encaplimit", "lots"]) == 2
    assert capsys.readouterr().err.strip() == "grebond: --encaplimit lots: use 'none' or 0-255"


@pytest.mark.parametrize(("example", "first_line"), [
    ("seed.yaml", "bond0: bond MTU 1402 (auto: the smallest tunnel)"),
    ("ipv6.yaml", "bond6: bond MTU 1362 (auto: the smallest tunnel)"),
])
def test_mtu_of_a_config(example: str, first_line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mtu", "-c", str(REPO / "examples" / example)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == first_line
    assert sum(line.strip().startswith("= bond and tunnel MTU") for line in out) == 2


def test_keyed_tunnel_lowers_the_auto_mtu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "examples" / "seed.yaml").read_text().replace(
        "ends: {r2: 10.65.0.14, r1: 10.65.0.10}", "ends: {r2: 10.65.0.14, r1: 10.65.0.10}\n        key: 2")
    config = tmp_path / "keyed.yaml"
    config.write_text(text)
    assert main(["mtu", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "bond0: bond MTU 1398 (auto: the smallest tunnel)"
    assert " gre2 (gretap, key):" in out
