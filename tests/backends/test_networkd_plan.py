"""The networkd backend's plan on hand-made kernel states: which links it deletes for networkd to
recreate, and which bonds' MACs it sets over netlink because networkd would not (issue 22)."""

from __future__ import annotations

import dataclasses

from grebond.backends.networkd import plan
from grebond.kernel.state import KernelState
from grebond.renderer import networkd
from grebond.validation import load_config, parse_config

from kernel_states import SEED, matching_state
from models import SEED_TUNNELS, seed_link

SWAPPED = (("gre1", "10.65.0.2", "10.65.0.10"), ("gre2", "10.65.0.14", "10.65.0.6"))
"""The seed with r2's two tunnel remotes swapped: every tunnel's .netdev changes, the bond's does not."""


def files(text: str) -> dict[str, bytes]:
    config, _ = parse_config(text, "test.yaml")
    return {f.name: f.content for f in networkd.render(config.bonds_of("r2"), config.source, "r2", 252).files}


def state(**bond: object) -> KernelState:
    s = matching_state(load_config(str(SEED))[0])
    return KernelState(links={**s.links, "bond0": dataclasses.replace(s.links["bond0"], **bond)},  # type: ignore[arg-type]
                       routes=s.routes)


def mac() -> str:
    return parse_config(seed_link(tunnels=SEED_TUNNELS), "test.yaml")[0].bonds_of("r2")[0].mac


def test_recreating_every_tunnel_of_a_kept_bond_sets_its_mac() -> None:
    # deleting the last slave randomises the bond's MAC; networkd sets MACAddress= only at creation
    steps = plan(files(seed_link()), files(seed_link(tunnels=SWAPPED)), state())
    assert steps.delete_links == ["gre1", "gre2"] and steps.recreate == ["gre1", "gre2"]
    assert steps.macs == {"bond0": mac()}


def test_a_bond_that_keeps_a_slave_and_its_mac_needs_nothing() -> None:
    one = (SEED_TUNNELS[0], SWAPPED[1])        # only gre2 changes: gre1 stays enslaved
    assert plan(files(seed_link()), files(seed_link(tunnels=one)), state()).macs == {}
    assert plan(files(seed_link()), files(seed_link()), state()).macs == {}


def test_a_drifted_mac_is_set_without_a_reload() -> None:
    steps = plan(files(seed_link()), files(seed_link()), state(mac="fa:2f:47:ea:53:8c"))
    assert steps.empty and steps.macs == {"bond0": mac()}


def test_a_recreated_bond_gets_its_mac_from_networkd() -> None:
    steps = plan(files(seed_link()), files(seed_link(mode="active-backup")), state(mac="fa:2f:47:ea:53:8c"))
    assert "bond0" in steps.recreate and steps.macs == {}


def test_the_files_say_each_ports_delay() -> None:
    """What the backend converges over netlink after networkd's reload: every port of the files, with
    its [NetworkEmulator] delay or None (a netem qdisc the files no longer have is removed)."""
    from grebond.backends.networkd.files import read_files

    unequal = load_config(str(SEED.parent / "unequal-paths.yaml"))[0]
    rendered = {f.name: f.content for f in networkd.render(unequal.bonds_of("r2"), unequal.source, "r2", 252).files}
    assert read_files(rendered).delays == {"gre1": 9300, "gre1b": 9300, "gre2": None}
    assert read_files(files(seed_link())).delays == {"gre1": None, "gre2": None}
