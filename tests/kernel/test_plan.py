"""The kernel plan on hand-made kernel states: what the kernel backend would do, and what it reports."""

from __future__ import annotations

import dataclasses

from grebond.kernel.plan import Op, plan_ops
from grebond.kernel.state import BondInfo, KernelState, LinkState, QdiscInfo
from grebond.model import LocalBond
from grebond.validation import load_config, parse_config

from kernel_states import SEED, matching_state


def seed_bond(extra: str = "") -> tuple[LocalBond, KernelState]:
    config = parse_config(SEED.read_text() + extra, str(SEED))[0] if extra else load_config(str(SEED))[0]
    return config.bonds_of("r2")[0], matching_state(load_config(str(SEED))[0])


def shown(ops: list[Op]) -> list[str]:
    return [op.text(done=True) for op in ops if op.shown]


def with_link(state: KernelState, name: str, **changes: object) -> KernelState:
    links = dict(state.links)
    links[name] = dataclasses.replace(links[name], **changes)  # type: ignore[arg-type]
    return KernelState(links=links, routes=state.routes)


def with_bond(state: KernelState, **changes: object) -> KernelState:
    bond = state.links["bond0"].bond
    assert bond is not None
    return with_link(state, "bond0", bond=dataclasses.replace(bond, **changes))  # type: ignore[arg-type]


def test_matching_kernel_needs_nothing() -> None:
    bond, state = seed_bond()
    assert plan_ops(bond, state) == []


def test_empty_kernel_builds_everything_in_order_and_reports_only_the_creations() -> None:
    bond, state = seed_bond()
    empty = KernelState(links={n: link for n, link in state.links.items() if n.startswith("wg")}, routes=state.routes)
    ops = plan_ops(bond, empty)
    assert [op.action for op in ops] == ["create-tunnel", "create-tunnel", "create-bond", "set", "enslave", "enslave",
                                         "add-address", "up"]
    create = ops[2]
    assert ("mac", None, bond.mac) in create.fields and ("mtu", None, 1402) in create.fields
    assert ops[3].fields == (("arp_missed_max", None, 2),) and not ops[3].shown   # after creation, by bond_attrs
    assert shown(ops) == ["created gretap gre1", "created gretap gre2", "created bond bond0"]


def test_mode_change_recreates_the_bond_and_enslaves_again() -> None:
    bond, state = seed_bond()
    ops = plan_ops(bond, with_bond(state, mode="active-backup"))
    assert ops[0].text(done=True) == "recreated bond0 (mode changed: active-backup -> balance-rr)"
    assert ops[0].diff() == ["bond0 mode: active-backup -> balance-rr"]
    assert [op.action for op in ops[1:]] == ["set", "enslave", "enslave", "add-address", "up"]
    assert shown(ops) == ["recreated bond0 (mode changed: active-backup -> balance-rr)"]


def test_changed_remote_recreates_that_tunnel_and_enslaves_it_again() -> None:
    bond, state = seed_bond()
    gre2 = state.links["gre2"]
    assert gre2.tunnel is not None
    ops = plan_ops(bond, with_link(state, "gre2", tunnel=dataclasses.replace(gre2.tunnel, remote="10.65.0.99")))
    assert shown(ops) == ["recreated gre2 (remote changed)", "enslaved gre2 to bond0"]
    assert ops[0].diff() == ["gre2 remote: 10.65.0.99 -> 10.65.0.10"]


def test_options_change_in_place_and_missed_max_on_its_own() -> None:
    bond, state = seed_bond()
    ops = plan_ops(bond, with_bond(state, arp_interval=200, arp_validate="filter", arp_missed_max=5))
    assert shown(ops) == ["set bond0 arp_interval 100, arp_validate none", "set bond0 arp_missed_max 2"]
    assert ops[0].diff() == ["bond0 arp_interval: 200 -> 100", "bond0 arp_validate: filter -> none"]


def v6_only(state: KernelState) -> tuple[LocalBond, KernelState]:
    """The seed with IPv6-only bond addresses: the NS monitor probes r1's fd67::2."""
    text = SEED.read_text().replace("10.67.0.1/24", "fd67::1/64").replace("10.67.0.2/24", "fd67::2/64")
    bond = parse_config(text, str(SEED))[0].bonds_of("r2")[0]
    assert bond.ns_targets and not bond.arp_targets
    return bond, with_link(with_bond(state, arp_ip_targets=(), ns_ip6_targets=("fd67::2",)), "bond0",
                           addresses=("fd67::1/64", "fe80::1/64"))


def test_a_new_ipv6_only_bond_gets_its_ns_targets_right_after_creation() -> None:
    bond, state = v6_only(seed_bond()[1])
    assert plan_ops(bond, state) == []
    empty = KernelState(links={n: link for n, link in state.links.items() if n.startswith("wg")}, routes=state.routes)
    ops = plan_ops(bond, empty)
    assert ("ns_ip6_targets", None, ("fd67::2",)) in ops[2].fields            # shown in a dry run's creation
    assert ops[3].fields == (("arp_missed_max", None, 2), ("ns_ip6_targets", None, ("fd67::2",)))
    assert not ops[3].shown                                                    # bond_attrs, after creation


def test_ns_targets_change_in_place_and_stale_ones_are_cleared() -> None:
    bond, state = v6_only(seed_bond()[1])
    ops = plan_ops(bond, with_bond(state, ns_ip6_targets=("fd67::9",), arp_missed_max=4))
    assert shown(ops) == ["set bond0 arp_missed_max 2, ns_ip6_targets fd67::2"]
    assert ops[0].diff() == ["bond0 arp_missed_max: 4 -> 2", "bond0 ns_ip6_targets: fd67::9 -> fd67::2"]
    ipv4, state4 = seed_bond()
    ops = plan_ops(ipv4, with_bond(state4, ns_ip6_targets=("fd67::2",)))
    assert shown(ops) == ["set bond0 ns_ip6_targets (none)"]


def test_an_extra_slave_is_released_and_a_released_one_enslaved() -> None:
    bond, state = seed_bond()
    gre9 = dataclasses.replace(state.links["gre1"], index=99, name="gre9")
    state = with_link(state, "gre1", master=None)
    state = KernelState(links={**state.links, "gre9": gre9}, routes=state.routes)
    assert shown(plan_ops(bond, state)) == ["released gre9 from bond0", "enslaved gre1 to bond0"]


def test_bond_mtu_propagates_to_slaves_so_only_a_lone_tunnel_mtu_is_set() -> None:
    bond, state = seed_bond()
    assert shown(plan_ops(bond, with_link(state, "bond0", mtu=1500))) == ["set bond0 mtu 1402"]
    assert shown(plan_ops(bond, with_link(state, "gre1", mtu=1300))) == ["set gre1 mtu 1402"]


def test_wrong_mac_and_addresses_are_repaired() -> None:
    bond, state = seed_bond()
    state = with_link(state, "bond0", mac="fa:2f:47:ea:53:8c", addresses=("10.67.0.9/24",))
    assert shown(plan_ops(bond, state)) == [f"set bond0 mac {bond.mac}", "removed address 10.67.0.9/24 from bond0",
                                           "added address 10.67.0.1/24 to bond0"]


def swapped(state: KernelState) -> KernelState:
    """gre1's remote is gre2's and vice versa: every tunnel of bond0 differs from the model."""
    gre1, gre2 = state.links["gre1"].tunnel, state.links["gre2"].tunnel
    assert gre1 is not None and gre2 is not None
    state = with_link(state, "gre1", tunnel=dataclasses.replace(gre1, remote=gre2.remote))
    return with_link(state, "gre2", tunnel=dataclasses.replace(gre2, remote=gre1.remote))


def test_recreating_every_slave_sets_the_mac_again_before_the_first_enslave() -> None:
    # issue 22: deleting the bond's last slave gives it a random MAC, which the first slave enslaved
    # next would replace with its own; the snapshot's MAC (read before) is the model's
    bond, state = seed_bond()
    ops = plan_ops(bond, swapped(state))
    assert [(op.action, op.target) for op in ops] == [
        ("recreate-tunnel", "gre1"), ("recreate-tunnel", "gre2"), ("set", "bond0"),
        ("enslave", "gre1"), ("enslave", "gre2")]
    assert shown(ops) == ["recreated gre1 (remote changed)", "recreated gre2 (remote changed)",
                          f"set bond0 mac {bond.mac}", "enslaved gre1 to bond0", "enslaved gre2 to bond0"]
    assert ops[2].diff() == [f"bond0 mac: random -> {bond.mac}"]
    # a MAC that had drifted as well is set once, after the slaves went
    ops = plan_ops(bond, with_link(swapped(state), "bond0", mac="fa:2f:47:ea:53:8c"))
    macs = [i for i, op in enumerate(ops) if op.action == "set" and op.fields[0][0] == "mac"]
    assert macs == [2] and ops[2].diff() == [f"bond0 mac: fa:2f:47:ea:53:8c -> {bond.mac}"]


def test_releasing_the_last_slave_that_stays_sets_the_mac_again() -> None:
    bond, state = seed_bond()
    gre9 = dataclasses.replace(state.links["gre1"], index=99, name="gre9")
    gre2 = state.links["gre2"]
    assert gre2.tunnel is not None
    state = with_link(state, "gre1", master=None)
    state = with_link(state, "gre2", tunnel=dataclasses.replace(gre2.tunnel, remote="10.65.0.99"))
    state = KernelState(links={**state.links, "gre9": gre9}, routes=state.routes)
    actions = [(op.action, op.target) for op in plan_ops(bond, state)]
    assert actions.index(("set", "bond0")) > actions.index(("release", "gre9"))
    assert actions.index(("set", "bond0")) < actions.index(("enslave", "gre1"))
    # one slave that stays keeps the bond's MAC: nothing to set
    kept = plan_ops(bond, with_link(state, "gre1", master="bond0"))
    assert ("set", "bond0") not in [(op.action, op.target) for op in kept]


def test_offloads_set_only_where_they_differ() -> None:
    bond, state = seed_bond("    offloads: off\n")
    assert plan_ops(bond, state) == []                       # the matching state has them off
    gre1 = state.links["gre1"]
    on = with_link(state, "gre1", features={**gre1.features, "rx-gro": True})
    ops = plan_ops(bond, on)
    assert shown(ops) == ["set gre1 offloads off (gso, tso, tso6, gro)"]
    assert ops[0].diff() == ["gre1 offloads: gso=off tso=off tso6=off gro=on -> off"]


def test_primary_is_set_after_its_slave() -> None:
    _bond, state = seed_bond()
    config = parse_config(SEED.read_text().replace("mode: balance-rr", "mode: active-backup\n    primary: gre1"),
                          str(SEED))[0]
    ab = config.bonds_of("r2")[0]
    state = with_bond(state, mode="active-backup")
    assert shown(plan_ops(ab, state)) == ["set bond0 primary gre1"]
    ops = plan_ops(ab, with_bond(state, mode="balance-rr"))
    actions = [op.action for op in ops]
    assert actions.index("set", actions.index("enslave")) > actions.index("enslave")   # primary after the slaves


def test_a_link_of_another_kind_under_the_bonds_name_is_recreated() -> None:
    bond, state = seed_bond()
    dummy = dataclasses.replace(state.links["bond0"], kind="dummy", bond=None)
    ops = plan_ops(bond, with_link(state, "bond0", kind=dummy.kind, bond=None))
    assert ops[0].text(done=True) == "recreated bond0 (mode changed: dummy -> balance-rr)"


def test_link_state_round_trips_through_json() -> None:
    from grebond.kernel.state import state_from_json, state_to_json

    _bond, state = seed_bond()
    state = with_bond(state, arp_ip_targets=("10.67.0.2", "10.67.0.3"))
    assert state_from_json(state_to_json(state)) == state
    assert isinstance(state_from_json(state_to_json(state)).links["bond0"].bond, BondInfo)
    assert isinstance(state.links["gre1"], LinkState)


# --- weight and delay: keyed copies, and each delayed tunnel's netem root qdisc ----------------
UNEQUAL = SEED.parent / "unequal-paths.yaml"


def unequal_bond() -> tuple[LocalBond, KernelState]:
    config = load_config(str(UNEQUAL))[0]
    return config.bonds_of("r2")[0], matching_state(config)


def test_unequal_example_from_nothing_sets_each_copys_delay_unreported() -> None:
    bond, state = unequal_bond()
    empty = KernelState(links={n: link for n, link in state.links.items() if n.startswith("wg")}, routes=state.routes)
    ops = plan_ops(bond, empty)
    qdisc = [op for op in ops if op.action == "qdisc"]
    assert [(op.target, op.fields, op.shown) for op in qdisc] == [
        (name, (("qdisc", None, "netem"), ("delay", None, "9.3ms"), ("qdisc-limit", None, 10000)), False)
        for name in ("gre1", "gre1b")]
    assert ops.index(qdisc[0]) > max(i for i, op in enumerate(ops) if op.action == "enslave")
    assert shown(ops) == ["created gretap gre1", "created gretap gre1b", "created gretap gre2", "created bond bond0"]
    diff = [line for op in ops if op.action.startswith("create") for line in op.diff()]
    assert diff[:3] == ["gre1: (absent) -> gretap local 10.65.0.2 remote 10.65.0.6 ttl 255 mtu 1398 delay 9.3ms",
                        "gre1b: (absent) -> gretap local 10.65.0.2 remote 10.65.0.6 ttl 255 key 1 mtu 1398 delay 9.3ms",
                        "gre2: (absent) -> gretap local 10.65.0.14 remote 10.65.0.10 ttl 255 mtu 1398"]


def test_unequal_example_matching_needs_nothing() -> None:
    bond, state = unequal_bond()
    assert plan_ops(bond, state) == []


def test_changed_delay_is_set_in_place() -> None:
    bond, state = unequal_bond()
    ops = plan_ops(bond, with_link(state, "gre1b", qdisc=QdiscInfo("netem", 3000, 10000)))
    assert [op.action for op in ops] == ["qdisc"]
    assert shown(ops) == ["set gre1b delay 9.3ms (its netem root qdisc)"]
    assert ops[0].diff() == ["gre1b delay: 3ms -> 9.3ms"]


def test_another_root_qdisc_is_replaced_by_netem() -> None:
    bond, state = unequal_bond()
    ops = plan_ops(bond, with_link(state, "gre1", qdisc=QdiscInfo("fq_codel")))
    assert ops[0].diff() == ["gre1 qdisc: fq_codel -> netem", "gre1 delay: none -> 9.3ms",
                             "gre1 qdisc-limit: none -> 10000"]
    limit = plan_ops(bond, with_link(state, "gre1", qdisc=QdiscInfo("netem", 9300, 1000)))
    assert limit[0].diff() == ["gre1 qdisc-limit: 1000 -> 10000"]


def test_a_netem_delay_the_model_does_not_have_is_removed_and_other_qdiscs_are_left() -> None:
    bond, state = unequal_bond()
    ops = plan_ops(bond, with_link(state, "gre2", qdisc=QdiscInfo("netem", 5000, 1000)))
    assert shown(ops) == ["removed gre2's netem delay 5ms"] and ops[0].diff() == ["gre2 delay: 5ms -> none"]
    assert plan_ops(bond, with_link(state, "gre2", qdisc=QdiscInfo("cake"))) == []
    assert plan_ops(bond, with_link(state, "gre2", qdisc=None)) == []


def test_rollback_restores_the_delays_the_tunnels_had() -> None:
    from grebond.backends.kernel import as_it_was

    bond, state = unequal_bond()
    before = with_link(with_link(state, "gre1", qdisc=QdiscInfo("netem", 4000, 10000)), "gre1b",
                       qdisc=QdiscInfo("fq_codel"))
    previous = as_it_was(bond, before)
    assert previous is not None
    assert {t.name: t.delay_us for t in previous.tunnels} == {"gre1": 4000, "gre1b": None, "gre2": None}
    # converging the applied state back: gre1 to 4 ms, gre1b's netem removed
    assert shown(plan_ops(previous, state)) == ["set gre1 delay 4ms (its netem root qdisc)",
                                                "removed gre1b's netem delay 9.3ms"]


def test_one_definition_of_a_matching_delay() -> None:
    """The plan, the verifier and the networkd backend's convergence decide alike: a delayed tunnel
    needs netem with its delay and grebond's limit; one without a delay needs only no netem."""
    from grebond.kernel.desired import delay_drift

    assert delay_drift(9300, QdiscInfo("netem", 9300, 10000)) == {}
    assert delay_drift(9300, QdiscInfo("netem", 9300, 1000)) == {"qdisc-limit": (1000, 10000)}
    assert delay_drift(9300, QdiscInfo("noqueue")) == {"qdisc": ("noqueue", "netem"), "delay": ("none", "9.3ms"),
                                                       "qdisc-limit": (None, 10000)}
    assert delay_drift(None, QdiscInfo("fq_codel")) == {} and delay_drift(None, None) == {}
    assert delay_drift(None, QdiscInfo("netem", 0, 1000)) == {"delay": ("0ms", "none")}


def test_a_delay_needs_sch_netem_asked_before_anything_changes() -> None:
    from grebond.kernel.modules import needed

    bond, _ = unequal_bond()
    assert needed([bond]) == ["bond", "gretap", "gretap", "gretap", "netem"]
    seed = load_config(str(SEED))[0].bonds_of("r2")
    assert needed(seed) == ["bond", "gretap", "gretap"]
