"""NetworkManager rendering (golden keyfiles, D-Bus settings, what NM 1.42 cannot express), keyfiles
checked by the real libnm (``nmcli --offline``), the comparison after NM's defaults, and
NetworkManagerBackend.write into a --root tree."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grebond.backends.base import Context
from grebond.backends.networkmanager import NetworkManagerBackend
from grebond.backends.networkmanager.compare import differences, effective_bond_options
from grebond.cli import main
from grebond.errors import ConfigError, OwnershipError
from grebond.renderer import networkmanager as nm
from grebond.renderer.ini import parse_ini
from grebond.validation import load_config, parse_config

from golden import assert_golden, assert_golden_set, golden_for
from models import base
from needs import need

REPO = Path(__file__).resolve().parents[2]
NMCLI = shutil.which("nmcli")


def ipv6_encaplimit4(tmp_path: Path) -> Path:
    """examples/ipv6.yaml with encaplimit 4 on every tunnel: the form NetworkManager can express."""
    text = (REPO / "examples/ipv6.yaml").read_text()
    text = text.replace('ends: {r2: "fd65::2", r1: "fd65::6"}', 'ends: {r2: "fd65::2", r1: "fd65::6"}\n        encaplimit: 4')
    text = text.replace('ends: {r2: "fd65::e", r1: "fd65::a"}', 'ends: {r2: "fd65::e", r1: "fd65::a"}\n        encaplimit: 4')
    assert text.count("encaplimit: 4") == 2
    path = tmp_path / "ipv6-encaplimit-4.yaml"
    path.write_text(text)
    return path


def render(text: str, node: str = "r2", target: str = "1.42") -> dict[str, dict[str, dict[str, list[str]]]]:
    config, _ = parse_config(textwrap.dedent(text), "test.yaml")
    r = nm.render(config.bonds_of(node), config.source, node, target)
    return {f.name: parse_ini(f.content.decode()) for f in r.files}


# ---------------------------------------------------------------- golden
SEED_KEYFILES = ["grebond-bond0.nmconnection", "grebond-gre1.nmconnection", "grebond-gre2.nmconnection"]


def _check_golden(config_path: str, golden: str, node: str, names: list[str] = SEED_KEYFILES) -> None:
    config, _ = load_config(config_path)
    rendering = nm.render(config.bonds_of(node), config.source, node)
    assert [f.name for f in rendering.files] == names
    for f in rendering.files:
        assert f.mode == 0o600
        assert_golden(f"networkmanager/{golden}/{node}/{f.name}", f.content)
    assert_golden_set(f"networkmanager/{golden}/{node}", names)


@pytest.mark.parametrize("node", ["r1", "r2"])
def test_golden_seed(in_repo: Path, node: str) -> None:
    _check_golden("examples/seed.yaml", "seed", node)


@pytest.mark.parametrize("node", ["r1", "r2"])
def test_golden_ipv6(in_repo: Path, tmp_path: Path, node: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ipv6_encaplimit4(tmp_path)
    monkeypatch.chdir(tmp_path)       # the header names the config by the path it was given
    _check_golden(cfg.name, "ipv6-encaplimit-4", node,
                  ["grebond-bond6.nmconnection", "grebond-gre61.nmconnection", "grebond-gre62.nmconnection"])


def test_ipv6_example_as_shipped_is_refused(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """encaplimit none (the model's default) has no NetworkManager equivalent for ip6gretap."""
    assert main(["render", "--backend", "networkmanager", "-c", "examples/ipv6.yaml", "--node", "r1", "--target-nm", "1.42"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert "links.bond6.tunnels.gre61.encaplimit" in err[0] and "encaplimit: 4" in err[0]
    assert "links.bond6.tunnels.gre62.encaplimit" in err[1]


def test_render_cli_matches_golden(in_repo: Path, tmp_path: Path) -> None:
    # the goldens are Debian 12's (NetworkManager 1.42), whatever this host has installed
    assert main(["render", "--backend", "networkmanager", "-c", "examples/seed.yaml", "-o", str(tmp_path),
                 "--target-nm", "1.42"]) == 0
    for node in ("r1", "r2"):
        names = sorted(p.name for p in (tmp_path / node).iterdir())
        assert len(names) == 3
        for name in names:
            assert (tmp_path / node / name).read_bytes() == \
                (REPO / "tests/golden/networkmanager/seed" / node / name).read_bytes()


# ---------------------------------------------------------------- content
def test_seed_fields_parse_back() -> None:
    files = render(base())
    bond = files["grebond-bond0.nmconnection"]
    config, _ = parse_config(base(), "test.yaml")
    end = config.bonds_of("r2")[0]
    assert bond["connection"] == {"id": ["grebond-bond0"], "uuid": [end.uuid("bond0")], "type": ["bond"],
                                  "interface-name": ["bond0"], "autoconnect": ["true"],
                                  "autoconnect-slaves": ["1"]}
    assert bond["ethernet"] == {"cloned-mac-address": [end.mac], "mtu": ["1398"]}
    # explicit miimon=0 next to the ARP monitor: NM's own default is 100
    assert bond["bond"] == {"arp_interval": ["100"], "arp_ip_target": ["10.67.0.2"], "arp_validate": ["none"],
                            "miimon": ["0"], "mode": ["balance-rr"]}
    assert bond["ipv4"] == {"method": ["manual"], "address1": ["10.67.0.1/24"]}
    assert bond["ipv6"] == {"method": ["disabled"]}
    assert bond["user"] == {"net.grebond.generated": ["node=r2 link=bond0"]}
    gre2 = files["grebond-gre2.nmconnection"]
    assert gre2["connection"]["master"] == [end.uuid("bond0")]
    assert gre2["connection"]["slave-type"] == ["bond"]
    assert "controller" not in gre2["connection"] and "port-type" not in gre2["connection"]
    assert gre2["ip-tunnel"] == {"mode": ["10"], "local": ["10.65.0.14"], "remote": ["10.65.0.10"], "ttl": ["255"],
                                 "input-key": ["7"], "output-key": ["7"], "mtu": ["1398"]}
    assert "input-key" not in files["grebond-gre1.nmconnection"]["ip-tunnel"]
    assert "ipv4" not in gre2      # a port has no IP configuration


def test_ip6gretap_and_dual_stack_bond() -> None:
    files = render("""\
        version: 1
        links:
          bond6:
            ends:
              r2: {addresses: [10.68.0.1/24, "fd68::1/64", "fd69::1/64"]}
              r1: {addresses: [10.68.0.2/24, "fd68::2/64", "fd69::2/64"]}
            tunnels:
              t61: {ends: {r2: "fd65::2", r1: "fd65::6"}, encaplimit: 4, key: 3}
        """, node="r1")
    assert files["grebond-bond6.nmconnection"]["ipv6"] == {"method": ["manual"], "address1": ["fd68::2/64"],
                                                           "address2": ["fd69::2/64"]}
    tun = files["grebond-t61.nmconnection"]["ip-tunnel"]
    assert tun["mode"] == ["11"] and tun["encapsulation-limit"] == ["4"] and tun["input-key"] == ["3"]
    assert "flags" not in tun
    assert tun["mtu"] == ["1350"]      # 1420 - 40 - 8 (key) - 8 (encapsulation limit option) - 14


def test_monitors_are_explicit() -> None:
    mii = render(base(extra="monitor: {type: mii, interval: 200ms}\nupdelay: 400ms\ndowndelay: 200ms"))
    assert mii["grebond-bond0.nmconnection"]["bond"] == {"downdelay": ["200"], "miimon": ["200"],
                                                         "mode": ["balance-rr"], "updelay": ["400"]}
    none = render(base(extra="monitor: {type: none}"))
    assert none["grebond-bond0.nmconnection"]["bond"] == {"miimon": ["0"], "mode": ["balance-rr"]}
    lacp = render(base(mode="802.3ad", extra="monitor: {type: none}\nlacp-rate: fast\nxmit-hash-policy: layer3+4"))
    assert lacp["grebond-bond0.nmconnection"]["bond"] == {"lacp_rate": ["fast"], "mode": ["802.3ad"],
                                                          "xmit_hash_policy": ["layer3+4"]}
    ab = render(base(mode="active-backup", extra="primary: gre2\nmonitor: {validate: filter}"))
    assert ab["grebond-bond0.nmconnection"]["bond"]["primary"] == ["gre2"]
    assert ab["grebond-bond0.nmconnection"]["bond"]["arp_validate"] == ["filter"]


def test_missed_max_needs_nm_1_44(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        render(base(extra="monitor: {missed-max: 4}"))
    (problem,) = err.value.problems
    assert problem.path == "links.bond0.monitor.missed-max" and "1.44" in problem.message
    assert "arp_missed_max" not in render(base())["grebond-bond0.nmconnection"]["bond"]   # default: not sent
    newer = render(base(extra="monitor: {missed-max: 4}"), target="1.44.2")
    assert newer["grebond-bond0.nmconnection"]["bond"]["arp_missed_max"] == ["4"]
    cfg = tmp_path / "m.yaml"
    cfg.write_text(base(extra="monitor: {missed-max: 4}"))
    os.chmod(cfg, 0o600)
    assert main(["render", "--backend", "networkmanager", "-c", str(cfg), "--node", "r2", "--target-nm", "1.42"]) == 2
    assert "links.bond0.monitor.missed-max" in capsys.readouterr().err
    assert main(["render", "--backend", "networkmanager", "-c", str(cfg), "--node", "r2", "--target-nm", "1.44"]) == 0
    assert "arp_missed_max=4" in capsys.readouterr().out
    assert main(["render", "--backend", "networkmanager", "-c", str(cfg), "--node", "r2", "--target-nm", "x"]) == 2


def test_dbus_settings_match_the_keyfile() -> None:
    """The a{sa{sv}} library call: same content as the keyfile, with D-Bus signatures."""
    config, _ = parse_config(base(), "test.yaml")
    end = config.bonds_of("r2")[0]
    data = nm.settings(config.bonds_of("r2"), "test.yaml", "r2")
    assert list(data) == [end.uuid("gre1"), end.uuid("gre2"), end.uuid("bond0")]   # ports, then their bond
    bond = data[end.uuid("bond0")]
    assert bond["connection"]["autoconnect-slaves"] == ("i", 1)
    assert bond["802-3-ethernet"] == {"assigned-mac-address": ("s", end.mac), "mtu": ("u", 1398)}
    assert bond["bond"]["options"][0] == "a{ss}"
    assert bond["ipv4"]["address-data"] == ("aa{sv}", [{"address": ("s", "10.67.0.1"), "prefix": ("u", 24)}])
    assert bond["user"]["data"] == ("a{ss}", {"net.grebond.generated": "node=r2 link=bond0"})
    port = data[end.uuid("gre2")]
    assert port["ip-tunnel"]["mode"] == ("u", 10)
    assert port["ip-tunnel"]["input-key"] == ("s", "7")            # keys are decimal strings
    assert port["connection"]["master"] == ("s", end.uuid("bond0"))


def test_rendering_imports_no_dbus() -> None:
    code = ("import sys, grebond.renderer.networkmanager, grebond.backends.networkmanager; "
            "sys.exit(1 if {'dbus_next', 'pyroute2'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("node", ["r1", "r2"])
def test_libnm_accepts_every_keyfile(in_repo: Path, tmp_path: Path, node: str) -> None:
    """NetworkManager's own keyfile reader and verify() (nmcli --offline, no daemon) take each file."""
    need(NMCLI, "nmcli not installed (.ci/install-nm)")
    for config_path in ("examples/seed.yaml", str(ipv6_encaplimit4(tmp_path))):
        config, _ = load_config(config_path)
        for f in nm.render(config.bonds_of(node), config.source, node).files:
            done = subprocess.run([NMCLI, "--offline", "connection", "modify", "connection.zone", ""],
                                  input=f.content, capture_output=True, timeout=30)
            assert done.returncode == 0, (f.name, done.stderr.decode())
            back = parse_ini(done.stdout.decode())
            mine = parse_ini(f.content.decode())
            assert back["connection"]["uuid"] == mine["connection"]["uuid"]
            assert back["user"] == mine["user"]
            if "bond" in mine:
                assert effective_bond_options({k: v[0] for k, v in back["bond"].items()}) == \
                    effective_bond_options({k: v[0] for k, v in mine["bond"].items()})
            else:
                assert back["ip-tunnel"] == dict(mine["ip-tunnel"].items())


# ---------------------------------------------------------------- comparison after NM's defaults
def test_equal_after_filling_nm_defaults() -> None:
    """GetSettings leaves out defaults and NM drops miimon=0 beside arp_interval: still equal."""
    config, _ = parse_config(base(), "test.yaml")
    end = config.bonds_of("r2")[0]
    data = nm.settings(config.bonds_of("r2"), "test.yaml", "r2")
    want = data[end.uuid("bond0")]
    have = {
        "connection": {"id": ("s", "grebond-bond0"), "uuid": ("s", end.uuid("bond0")), "type": ("s", "bond"),
                       "interface-name": ("s", "bond0"), "autoconnect-slaves": ("i", 1)},
        "802-3-ethernet": {"cloned-mac-address": ("ay", bytes.fromhex(end.mac.replace(":", ""))),
                           "assigned-mac-address": ("s", end.mac.upper()), "mtu": ("u", 1398)},
        "bond": {"options": ("a{ss}", {"mode": "balance-rr", "arp_interval": "100", "arp_ip_target": "10.67.0.2"})},
        "ipv4": {"method": ("s", "manual"), "address-data": ("aa{sv}", [{"address": ("s", "10.67.0.1"),
                                                                          "prefix": ("u", 24)}])},
        "ipv6": {"method": ("s", "disabled")},
        "user": {"data": ("a{ss}", {"net.grebond.generated": "node=r2 link=bond0"})},
    }
    assert differences(want, have) == []
    have["bond"]["options"] = ("a{ss}", {"mode": "balance-rr", "miimon": "100"})     # NM's default monitor
    have["ipv4"]["address-data"] = ("aa{sv}", [])
    assert differences(want, have) == ["bond.options", "ipv4.address-data"]
    port = data[end.uuid("gre1")]
    bare = {k: dict(v) for k, v in port.items()}
    del bare["connection"]["autoconnect"]                   # default true: omitted by GetSettings
    assert differences(port, bare) == []
    bare["ip-tunnel"] = {k: v for k, v in bare["ip-tunnel"].items() if k != "ttl"}   # ttl 0 = inherit
    assert differences(port, bare) == ["ip-tunnel.ttl"]


def test_effective_bond_options() -> None:
    assert effective_bond_options({"mode": "0", "miimon": "0", "arp_interval": "100", "arp_validate": "4",
                                   "arp_ip_target": "10.0.0.2 10.0.0.1"}) == \
        {"arp_interval": "100", "arp_ip_target": "10.0.0.1,10.0.0.2", "arp_validate": "filter", "mode": "balance-rr"}
    assert effective_bond_options({"mode": "balance-rr"}) == {"mode": "balance-rr"}              # miimon 100 implied
    assert effective_bond_options({"mode": "balance-rr", "miimon": "0"}) == {"miimon": "0", "mode": "balance-rr"}


# ---------------------------------------------------------------- write()
def _apply_root(root: Path, config: str, *extra: str) -> int:
    return main(["apply", "--backend", "networkmanager", "-c", config, "--node", "r2", "--root", str(root),
                 "--target-nm", "1.42", *extra])          # the goldens are Debian 12's


def test_write_into_root(seed_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kdir = tmp_path / "etc/NetworkManager/system-connections"
    kdir.mkdir(parents=True)
    user = kdir / "Wired connection 1.nmconnection"
    user.write_bytes(b"[connection]\nid=Wired connection 1\ntype=ethernet\n")
    stale = kdir / "grebond-gre9.nmconnection"            # ours (header), no longer in the model
    stale.write_bytes(b"# Generated by grebond from old.yaml for node r2; do not edit.\n[connection]\nid=x\n")
    rewritten = kdir / "grebond-old.nmconnection"         # NM rewrote it (no header) but it carries our marker
    rewritten.write_bytes(b"[connection]\nid=grebond-old\n\n[user]\nnet.grebond.generated=node=r2 link=old\n")

    assert _apply_root(tmp_path, str(seed_copy), "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"would remove {stale}" in out and f"would remove {rewritten}" in out
    assert len(list(kdir.iterdir())) == 3

    assert _apply_root(tmp_path, str(seed_copy)) == 0
    out = capsys.readouterr().out
    assert f"removed {stale}" in out and f"removed {rewritten}" in out
    names = sorted(p.name for p in kdir.iterdir())
    assert names == ["Wired connection 1.nmconnection", "grebond-bond0.nmconnection", "grebond-gre1.nmconnection",
                     "grebond-gre2.nmconnection"]
    for name in names[1:]:
        path = kdir / name
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600       # NM ignores a keyfile others can read
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (0, 0)
        assert path.read_bytes() == golden_for(seed_copy, (REPO / "tests/golden/networkmanager/seed/r2" / name).read_bytes())
    assert user.read_bytes() == b"[connection]\nid=Wired connection 1\ntype=ethernet\n"
    assert not [p for p in kdir.iterdir() if p.name.startswith(".")]

    assert _apply_root(tmp_path, str(seed_copy)) == 0   # idempotent
    assert "wrote" not in capsys.readouterr().out

    # NM rewrote our bond's keyfile (comments gone, marker kept): still ours, replaced with ours
    bond = kdir / "grebond-bond0.nmconnection"
    bond.write_bytes(b"[connection]\nid=grebond-bond0\n\n[user]\nnet.grebond.generated=node=r2 link=bond0\n")
    os.chmod(bond, 0o600)
    assert _apply_root(tmp_path, str(seed_copy)) == 0
    assert bond.read_bytes() == golden_for(
        seed_copy, (REPO / "tests/golden/networkmanager/seed/r2/grebond-bond0.nmconnection").read_bytes())

    assert main(["remove", "--backend", "networkmanager", "-c", str(seed_copy), "--node", "r2",
                 "--root", str(tmp_path)]) == 0
    assert [p.name for p in kdir.iterdir()] == ["Wired connection 1.nmconnection"]


def test_write_refuses_a_users_file_with_our_name(seed_copy: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    kdir = tmp_path / "etc/NetworkManager/system-connections"
    kdir.mkdir(parents=True)
    mine = kdir / "grebond-gre2.nmconnection"
    mine.write_bytes(b"[connection]\nid=grebond-gre2\ntype=ip-tunnel\n")
    assert _apply_root(tmp_path, str(seed_copy)) == 3
    assert "not written by grebond" in capsys.readouterr().err
    assert [p.name for p in kdir.iterdir()] == ["grebond-gre2.nmconnection"]   # nothing half-written
    config, _ = load_config(seed_copy)
    backend = NetworkManagerBackend()
    ctx = Context(config=config, node="r2", root=tmp_path)
    with pytest.raises(OwnershipError):
        backend.write(backend.render(ctx), ctx)


def test_offloads_are_the_ethtool_setting_on_every_profile() -> None:
    """offloads off: feature-gso/tso/tx-tcp6-segmentation/gro false on the bond and each port; auto
    sends no ethtool setting; NM before 1.14 has none and is refused."""
    data = render(base(extra="offloads: off"))
    for name in ("grebond-bond0.nmconnection", "grebond-gre1.nmconnection", "grebond-gre2.nmconnection"):
        assert data[name]["ethtool"] == {k: ["false"] for k in
                                         ("feature-gso", "feature-tso", "feature-tx-tcp6-segmentation", "feature-gro")}
    assert not any("ethtool" in f for f in render(base()).values())
    with pytest.raises(ConfigError) as err:
        render(base(extra="offloads: off"), target="1.12")
    assert [p.path for p in err.value.problems] == ["links.bond0.offloads"]


@pytest.mark.parametrize("node", ["r1", "r2"])
def test_golden_offloads_off(tmp_path: Path, node: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`offloads: off`: the ethtool setting's four features off on the bond and every port."""
    (tmp_path / "seed-offloads-off.yaml").write_text((REPO / "examples/seed.yaml").read_text() + "    offloads: off\n")
    monkeypatch.chdir(tmp_path)
    _check_golden("seed-offloads-off.yaml", "seed-offloads-off", node)
    for f in nm.render(load_config("seed-offloads-off.yaml")[0].bonds_of(node), "x", node).files:
        assert parse_ini(f.content.decode())["ethtool"] == {
            k: ["false"] for k in ("feature-gso", "feature-tso", "feature-tx-tcp6-segmentation", "feature-gro")}


def test_another_profile_for_the_same_interface_is_warned_about(seed_copy: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    kdir = tmp_path / "etc/NetworkManager/system-connections"
    kdir.mkdir(parents=True)
    theirs = kdir / "my-bond.nmconnection"
    theirs.write_bytes(b"[connection]\nid=my-bond\ntype=bond\ninterface-name=bond0\n")
    assert _apply_root(tmp_path, str(seed_copy)) == 0
    out = capsys.readouterr().out
    assert f"warning: {theirs} is another profile for bond0" in out
    assert theirs.read_bytes() == b"[connection]\nid=my-bond\ntype=bond\ninterface-name=bond0\n"


def test_plan_warns_about_a_foreign_live_profile() -> None:
    from grebond.backends.networkmanager.plan import foreign_profiles

    config, _ = load_config(REPO / "examples/seed.yaml")
    desired = nm.settings(config.bonds_of("r2"), "x", "r2")
    theirs = {"connection": {"id": ("s", "Bond connection 1"), "uuid": ("s", "u-1"), "type": ("s", "bond"),
                             "interface-name": ("s", "bond0")}}
    [warning] = foreign_profiles(desired, {"u-1": ("/p/9", theirs)})
    assert warning.startswith("warning: NetworkManager also has the profile 'Bond connection 1' (u-1) for bond0")


def test_an_ipv6_only_bond_needs_nm_1_44_for_its_ns_targets() -> None:
    text = (REPO / "examples" / "ipv6.yaml").read_text().replace("10.68.0.1/24, ", "").replace("10.68.0.2/24, ", "")
    text = text.replace("    underlay-mtu: 1420\n", "    underlay-mtu: 1420\n    encaplimit: 4\n")
    options = render(text, target="1.52")["grebond-bond6.nmconnection"]["bond"]
    assert options["ns_ip6_target"] == ["fd68::2"] and "arp_ip_target" not in options
    with pytest.raises(ConfigError) as err:
        render(text, target="1.42")
    [problem] = err.value.problems
    assert problem.path == "links.bond6.monitor" and "only since 1.44" in problem.message


# ---------------------------------------------------------------- weight and delay
WEIGHTED = base(extra="").replace("      gre2:", "        weight: 2\n      gre2:", 1)


def test_weight_copies_are_ports_with_their_keys() -> None:
    files = render(WEIGHTED)
    assert sorted(files) == ["grebond-bond0.nmconnection", "grebond-gre1.nmconnection",
                             "grebond-gre1b.nmconnection", "grebond-gre2.nmconnection"]
    copy = files["grebond-gre1b.nmconnection"]["ip-tunnel"]
    assert copy["local"] == ["10.65.0.2"] and copy["remote"] == ["10.65.0.6"]
    assert copy["input-key"] == copy["output-key"] == ["1"]
    assert "input-key" not in files["grebond-gre1.nmconnection"]["ip-tunnel"]


@pytest.mark.parametrize("target", ["1.42", "1.52"])
def test_delay_is_refused_naming_the_version_and_the_alternative(in_repo: Path, target: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """NM cannot set a netem delay (test_nm_drops_netem_parameters): one line, at the delay, exit 2."""
    rc = main(["validate", "-c", "examples/unequal-paths.yaml", "--backend", "networkmanager", "--target-nm", target])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"examples/unequal-paths.yaml:38: links.bond0.tunnels.gre1.delay: NetworkManager (target {target}) "
                   "cannot set a netem delay: its tc setting drops netem's parameters (1.42 to 1.52 at least); use "
                   "the networkd, kernel or iproute2 backend for this link, or remove delay"]


def test_nm_drops_netem_parameters(tmp_path: Path) -> None:
    """Why grebond refuses a delay for NetworkManager, shown by the installed libnm: a netem qdisc's
    delay is accepted and silently dropped (a tbf's unknown parameter, by contrast, is an error)."""
    need(NMCLI, "nmcli not installed (.ci/install-nm)")
    common = ["nmcli", "--offline", "connection", "add", "type", "ip-tunnel", "ifname", "gre1", "con-name", "t",
              "ip-tunnel.mode", "10", "ip-tunnel.remote", "10.65.0.6"]
    done = subprocess.run([*common, "tc.qdiscs", "root netem delay 9ms limit 10000"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert parse_ini(done.stdout)["tc"] == {"qdisc.root": ["netem"]}      # no delay, no limit
    bad = subprocess.run([*common, "tc.qdiscs", "root tbf rate 1000 burst 10 limit 10 latency 5 delay 9"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown attribute 'delay'" in bad.stderr
