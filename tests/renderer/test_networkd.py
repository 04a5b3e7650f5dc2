"""networkd rendering (golden files, parsed-back fields, options a target cannot express) and
NetworkdBackend.write into a --root tree (what lands on disk, what is removed, what is never touched)."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest

from grebond.backends.base import Context
from grebond.backends.networkd import NetworkdBackend
from grebond.cli import main
from grebond.errors import ConfigError, OwnershipError
from grebond.renderer import networkd
from grebond.renderer.ini import parse_ini
from grebond.validation import load_config, parse_config

from golden import assert_golden, assert_golden_set, golden_for
from models import base

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ("seed", "ipv6", "unequal-paths")


def render(text: str, node: str = "r2", target: int = 252) -> dict[str, dict[str, dict[str, list[str]]]]:
    config, _ = parse_config(textwrap.dedent(text), "test.yaml")
    r = networkd.render(config.bonds_of(node), config.source, node, target)
    return {f.name: parse_ini(f.content.decode()) for f in r.files}


@pytest.mark.parametrize("node", ["r1", "r2"])
@pytest.mark.parametrize("example", EXAMPLES)
def test_golden(in_repo: Path, example: str, node: str) -> None:
    config, _ = load_config(f"examples/{example}.yaml")
    rendering = networkd.render(config.bonds_of(node), config.source, node)
    assert rendering.files, "nothing rendered"
    for f in rendering.files:
        assert f.name.startswith(networkd.FILE_PREFIX)
        assert f.mode == 0o644
        assert_golden(f"networkd/{example}/{node}/{f.name}", f.content)
    assert_golden_set(f"networkd/{example}/{node}", [f.name for f in rendering.files])


def test_render_cli_matches_golden(in_repo: Path, tmp_path: Path) -> None:
    # the goldens are Debian 12's (systemd 252), whatever this host has installed
    assert main(["render", "--backend", "networkd", "-c", "examples/seed.yaml", "-o", str(tmp_path),
                 "--target-systemd", "252"]) == 0
    for node in ("r1", "r2"):
        written = sorted((tmp_path / node).iterdir())
        golden = sorted((REPO / "tests/golden/networkd/seed" / node).iterdir())
        assert [p.name for p in written] == [p.name for p in golden] and golden
        assert [p.read_bytes() for p in written] == [p.read_bytes() for p in golden]


def test_seed_fields_parse_back() -> None:
    files = render(base())
    bond = files["40-grebond-bond0.netdev"]
    assert bond["NetDev"]["Kind"] == ["bond"]
    assert bond["NetDev"]["MTUBytes"] == ["1398"]          # 1440 - 20 - 4 - 4 (key on gre2) - 14
    assert bond["NetDev"]["MACAddress"][0].startswith("02:")
    assert bond["Bond"] == {"Mode": ["balance-rr"], "ARPIntervalSec": ["100ms"], "ARPIPTargets": ["10.67.0.2"],
                            "ARPValidate": ["none"]}
    gre2 = files["40-grebond-gre2.netdev"]
    assert gre2["NetDev"] == {"Name": ["gre2"], "Kind": ["gretap"], "MTUBytes": ["1398"]}
    assert gre2["Tunnel"] == {"Local": ["10.65.0.14"], "Remote": ["10.65.0.10"], "TTL": ["255"], "Key": ["7"],
                              "Independent": ["yes"]}
    assert "Key" not in files["40-grebond-gre1.netdev"]["Tunnel"]
    assert files["40-grebond-gre1.network"] == {"Match": {"Name": ["gre1"]}, "Link": {"RequiredForOnline": ["no"]},
                                                "Network": {"Bond": ["bond0"]}}
    net = files["40-grebond-bond0.network"]
    assert net["Network"] == {"Address": ["10.67.0.1/24"], "LinkLocalAddressing": ["no"],
                              "ConfigureWithoutCarrier": ["yes"]}
    assert net["Link"] == {"RequiredForOnline": ["no"]}


def test_repeated_keys_survive_and_ip6gretap() -> None:
    files = render("""\
        version: 1
        links:
          bond6:
            ends:
              r2: {addresses: [10.68.0.1/24, "fd68::1/64", "fd69::1/64"]}
              r1: {addresses: [10.68.0.2/24, "fd68::2/64", "fd69::2/64"]}
            tunnels:
              t61: {ends: {r2: "fd65::2", r1: "fd65::6"}}
              t62: {ends: {r2: "fd65::e", r1: "fd65::a"}, encaplimit: 4}
        """, node="r1")
    assert files["40-grebond-bond6.network"]["Network"]["Address"] == ["10.68.0.2/24", "fd68::2/64", "fd69::2/64"]
    assert files["40-grebond-bond6.network"]["Network"]["LinkLocalAddressing"] == ["ipv6"]
    assert files["40-grebond-t61.netdev"]["NetDev"]["Kind"] == ["ip6gretap"]
    assert files["40-grebond-t61.netdev"]["Tunnel"]["EncapsulationLimit"] == ["none"]
    assert files["40-grebond-t62.netdev"]["Tunnel"]["EncapsulationLimit"] == ["4"]
    assert files["40-grebond-bond6.netdev"]["Bond"]["ARPIPTargets"] == ["10.68.0.1"]


def test_mii_and_options_carry_units() -> None:
    files = render(base("active-backup", """\
        monitor: {type: mii, interval: 200ms}
        updelay: 400ms
        downdelay: 1s
        primary: gre2
        """))
    bond = files["40-grebond-bond0.netdev"]["Bond"]
    assert bond == {"Mode": ["active-backup"], "MIIMonitorSec": ["200ms"], "UpDelaySec": ["400ms"],
                    "DownDelaySec": ["1000ms"]}
    assert files["40-grebond-gre2.network"]["Network"] == {"Bond": ["bond0"], "PrimarySlave": ["yes"]}
    assert files["40-grebond-gre1.network"]["Network"] == {"Bond": ["bond0"]}


def test_missed_max_needs_systemd_256() -> None:
    text = base(extra="monitor: {type: arp, interval: 100ms, missed-max: 3}")
    with pytest.raises(ConfigError) as err:
        render(text, target=252)
    (problem,) = err.value.problems
    assert problem.path == "links.bond0.monitor.missed-max"
    assert "256" in problem.message and problem.fix
    assert str(problem).startswith("test.yaml: links.bond0.monitor.missed-max: 3 needs ARPMissedMax=")
    assert render(text, target=256)["40-grebond-bond0.netdev"]["Bond"]["ARPMissedMax"] == ["3"]
    # the kernel default needs no key on 252, and is explicit where networkd can say it
    assert "ARPMissedMax" not in render(base(), target=252)["40-grebond-bond0.netdev"]["Bond"]
    assert render(base(), target=257)["40-grebond-bond0.netdev"]["Bond"]["ARPMissedMax"] == ["2"]


def test_every_inexpressible_option_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        render("""\
            version: 1
            links:
              bond6:
                mode: balance-xor
                xmit-hash-policy: vlan+srcmac
                monitor: {validate: filter, missed-max: 5}
                ends:
                  r2: {addresses: [10.68.0.1/24]}
                  r1: {addresses: [10.68.0.2/24]}
                tunnels:
                  t61: {ends: {r2: "fd65::2", r1: "fd65::6"}, encaplimit: 0}
            """, target=256)
    paths = sorted(p.path for p in err.value.problems)
    assert paths == ["links.bond6.monitor.validate", "links.bond6.tunnels.t61.encaplimit",
                     "links.bond6.xmit-hash-policy"]
    assert all(p.fix for p in err.value.problems)


# ---------------------------------------------------------------- write()
def _apply_root(root: Path, config: str, *extra: str) -> int:
    return main(["apply", "--backend", "networkd", "-c", config, "--node", "r2", "--root", str(root),
                 "--target-systemd", "252", *extra])      # the goldens are Debian 12's


def test_write_into_root(seed_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    netdir = tmp_path / "etc/systemd/network"
    netdir.mkdir(parents=True)
    user = netdir / "30-wg0.network"
    user.write_bytes(b"[Match]\nName=wg0\n")
    unprefixed = netdir / "50-other.netdev"      # carries our header but not our prefix: not ours
    unprefixed.write_bytes(b"# Generated by grebond long ago\n[NetDev]\nName=x\nKind=dummy\n")
    stale = netdir / "40-grebond-gre9.netdev"    # ours, no longer in the model
    stale.write_bytes(b"# Generated by grebond from old.yaml for node r2; do not edit.\n[NetDev]\nName=gre9\n")

    assert _apply_root(tmp_path, str(seed_copy), "--dry-run") == 0
    assert "would remove" in capsys.readouterr().out
    assert sorted(p.name for p in netdir.iterdir()) == ["30-wg0.network", "40-grebond-gre9.netdev",
                                                        "50-other.netdev"]

    assert _apply_root(tmp_path, str(seed_copy)) == 0
    out = capsys.readouterr().out
    assert f"removed {stale}" in out
    names = sorted(p.name for p in netdir.iterdir())
    assert names == ["30-wg0.network", "40-grebond-bond0.netdev", "40-grebond-bond0.network",
                     "40-grebond-gre1.netdev", "40-grebond-gre1.network", "40-grebond-gre2.netdev",
                     "40-grebond-gre2.network", "50-other.netdev"]
    for name in names:
        if name.startswith("40-"):
            path = netdir / name
            assert stat.S_IMODE(path.stat().st_mode) == 0o644
            assert path.read_bytes() == golden_for(seed_copy, (REPO / "tests/golden/networkd/seed/r2" / name).read_bytes())
    assert user.read_bytes() == b"[Match]\nName=wg0\n"
    assert unprefixed.read_bytes().startswith(b"# Generated by grebond long ago")
    assert not list(netdir.glob(".*grebond-tmp"))

    assert _apply_root(tmp_path, str(seed_copy)) == 0   # idempotent
    assert "wrote" not in capsys.readouterr().out


def test_write_refuses_a_users_file_with_our_name(seed_copy: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    netdir = tmp_path / "etc/systemd/network"
    netdir.mkdir(parents=True)
    mine = netdir / "40-grebond-gre2.netdev"
    mine.write_bytes(b"[NetDev]\nName=gre2\nKind=gretap\n")
    assert _apply_root(tmp_path, str(seed_copy)) == 3
    err = capsys.readouterr().err
    assert str(mine) in err and "not written by grebond" in err
    assert mine.read_bytes() == b"[NetDev]\nName=gre2\nKind=gretap\n"
    assert [p.name for p in netdir.iterdir()] == ["40-grebond-gre2.netdev"]   # nothing half-written

    config, _ = load_config(seed_copy)
    backend = NetworkdBackend()
    ctx = Context(config=config, node="r2", root=tmp_path)
    with pytest.raises(OwnershipError) as exc:
        backend.write(backend.render(ctx), ctx)
    assert exc.value.path == mine


def test_remove_from_root_only_removes_ours(seed_copy: Path, tmp_path: Path) -> None:
    netdir = tmp_path / "etc/systemd/network"
    netdir.mkdir(parents=True)
    (netdir / "10-user.network").write_bytes(b"[Match]\nName=eth0\n")
    assert _apply_root(tmp_path, str(seed_copy)) == 0
    assert main(["remove", "--backend", "networkd", "-c", str(seed_copy), "--node", "r2",
                 "--root", str(tmp_path)]) == 0
    assert [p.name for p in netdir.iterdir()] == ["10-user.network"]


def test_target_systemd_flag_on_render(in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text(base(extra="monitor: {missed-max: 4}"))
    os.chmod(cfg, 0o600)
    assert main(["render", "--backend", "networkd", "-c", str(cfg), "--node", "r2", "--target-systemd", "252"]) == 2
    assert "links.bond0.monitor.missed-max" in capsys.readouterr().err
    assert main(["render", "--backend", "networkd", "-c", str(cfg), "--node", "r2", "--target-systemd", "256"]) == 0
    assert "ARPMissedMax=4" in capsys.readouterr().out


def test_offloads_are_a_link_file_per_device_only_when_set() -> None:
    """offloads off: a .link per tunnel and bond turning the four offloads off (udev applies it when the
    device appears); auto leaves them to the kernel and writes none; 'on' writes true."""
    off = render(base(extra="offloads: off"))
    link = off["40-grebond-gre1.link"]
    assert link["Match"] == {"OriginalName": ["gre1"], "Kind": ["gretap"]}
    assert link["Link"] == {k: ["false"] for k in ("GenericSegmentationOffload", "TCPSegmentationOffload",
                                                    "TCP6SegmentationOffload", "GenericReceiveOffload")}
    assert off["40-grebond-bond0.link"]["Match"] == {"OriginalName": ["bond0"], "Kind": ["bond"]}
    assert not any(name.endswith(".link") for name in render(base()))
    on = render(base("balance-xor", "offloads: on"))
    assert all(v == ["true"] for v in on["40-grebond-gre2.link"]["Link"].values())


def test_offloads_for_older_systemd() -> None:
    """.link Kind= exists since 251 (left out before: OriginalName= alone still matches);
    TCP6SegmentationOffload= since 235 (refused before, not silently dropped)."""
    off = base(extra="offloads: off")
    assert render(off, target=250)["40-grebond-gre1.link"]["Match"] == {"OriginalName": ["gre1"]}
    with pytest.raises(ConfigError) as err:
        render(off, target=234)
    assert [p.path for p in err.value.problems] == ["links.bond0.offloads"]
    assert "235" in err.value.problems[0].message


@pytest.mark.parametrize("node", ["r1", "r2"])
def test_golden_offloads_off(tmp_path: Path, node: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`offloads: off`: a .link file per device (udev sets the features when the device appears)."""
    (tmp_path / "seed-offloads-off.yaml").write_text((REPO / "examples/seed.yaml").read_text() + "    offloads: off\n")
    monkeypatch.chdir(tmp_path)       # the header names the config by the path it was given
    config, _ = load_config("seed-offloads-off.yaml")
    rendering = networkd.render(config.bonds_of(node), config.source, node)
    names = [f.name for f in rendering.files]
    assert [n for n in names if n.endswith(".link")] == [f"40-grebond-{d}.link" for d in ("bond0", "gre1", "gre2")]
    for f in rendering.files:
        assert_golden(f"networkd/seed-offloads-off/{node}/{f.name}", f.content)
    assert_golden_set(f"networkd/seed-offloads-off/{node}", names)


def test_a_users_file_for_the_same_interface_is_warned_about(seed_copy: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """networkd would use the user's 10-bond0.netdev/.network, not grebond's: apply says so (and still writes)."""
    netdir = tmp_path / "etc/systemd/network"
    netdir.mkdir(parents=True)
    (netdir / "10-bond0.netdev").write_bytes(b"[NetDev]\nName=bond0\nKind=bond\n")
    (tmp_path / "usr/lib/systemd/network").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/network/20-tunnels.network").write_bytes(b"[Match]\nName=gre1 gre9\n")
    (netdir / "90-late.network").write_bytes(b"[Match]\nName=gre2\n")     # sorts after ours: not used
    assert _apply_root(tmp_path, str(seed_copy)) == 0
    out = capsys.readouterr().out
    assert f"warning: {netdir}/10-bond0.netdev also defines bond0" in out
    assert (f"warning: {tmp_path}/usr/lib/systemd/network/20-tunnels.network matches gre1 and sorts before "
            "40-grebond-gre1.network") in out
    assert "90-late.network" not in out
    assert (netdir / "10-bond0.netdev").read_bytes() == b"[NetDev]\nName=bond0\nKind=bond\n"


def test_delay_is_a_network_emulator_section_on_each_copy() -> None:
    files = render(base().replace("      gre2:", "        weight: 2\n        delay: 9.501ms\n      gre2:", 1))
    for name in ("gre1", "gre1b"):
        assert files[f"40-grebond-{name}.network"]["NetworkEmulator"] == {"DelaySec": ["9.501ms"],
                                                                         "PacketLimit": ["10000"]}
    assert "NetworkEmulator" not in files["40-grebond-gre2.network"]
    assert files["40-grebond-gre1b.netdev"]["Tunnel"]["Key"] == ["1"]


def test_delay_needs_systemd_245_and_is_refused_once_per_tunnel() -> None:
    """[NetworkEmulator] exists since 245 (243-244 called it differently): refused before, naming the
    tunnel of the file (its weight copy carries the same delay, and is not a second problem)."""
    text = base().replace("      gre2:", "        weight: 2\n        delay: 9.3ms\n      gre2:", 1)
    with pytest.raises(ConfigError) as err:
        render(text, target=244)
    (problem,) = err.value.problems
    assert str(problem) == ("test.yaml: links.bond0.tunnels.gre1.delay: needs the [NetworkEmulator] section, which "
                            "systemd-networkd has only since 245 (target: 244); use --target-systemd 245 or later, "
                            "or the kernel backend")
    assert render(text, target=245)["40-grebond-gre1b.network"]["NetworkEmulator"]["DelaySec"] == ["9.3ms"]
