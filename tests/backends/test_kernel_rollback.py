"""The kernel backend's rollback target: ``as_it_was`` reads a bond end back from a kernel snapshot.

Round trip: for a kernel that matches the model, the end read back asks the kernel for what the
model asked (same tunnel parameters, addresses, MTU; every bond option the model sets, plus the
kernel's current values of the others, which a failed apply may have changed), and everything it
asks is what the kernel held, so converging to it after a failed apply restores that kernel.
"""

from __future__ import annotations

import dataclasses

from grebond.backends.kernel import as_it_was
from grebond.kernel.desired import expected_addresses, expected_bond, expected_tunnel
from grebond.kernel.state import KernelState
from grebond.validation import load_config

from kernel_states import SEED, matching_state


def test_matching_kernel_reads_back_as_the_model() -> None:
    config = load_config(str(SEED))[0]
    end = config.bonds_of("r2")[0]
    state = matching_state(config)
    back = as_it_was(end, state)
    assert back is not None
    asked, held = expected_bond(back), state.links["bond0"].bond
    assert expected_bond(end).items() <= asked.items()
    assert all((tuple(str(x) for x in getattr(held, k)) if k == "arp_ip_targets" else getattr(held, k)) == v
               for k, v in asked.items()), asked
    assert [expected_tunnel(t) for t in back.tunnels] == [expected_tunnel(t) for t in end.tunnels]
    assert [t.mtu for t in back.tunnels] == [t.mtu for t in end.tunnels]
    assert expected_addresses(back) == expected_addresses(end) and back.mtu == end.mtu and back.mac == end.mac


def test_changed_kernel_reads_back_as_it_was() -> None:
    config = load_config(str(SEED))[0]
    end = config.bonds_of("r2")[0]
    state = matching_state(config)
    bond = state.links["bond0"]
    assert bond.bond is not None
    old_bond = dataclasses.replace(bond, bond=dataclasses.replace(bond.bond, mode="active-backup", arp_interval=200,
                                                                  primary="gre2", lacp_rate="slow"))
    back = as_it_was(end, KernelState(links={**state.links, "bond0": old_bond}, routes=state.routes))
    assert back is not None
    options = expected_bond(back)
    assert options["mode"] == "active-backup" and options["arp_interval"] == 200 and options["primary"] == "gre2"
    assert "lacp_rate" not in options          # the kernel refuses it outside 802.3ad


def test_no_bond_before_means_nothing_to_restore() -> None:
    config = load_config(str(SEED))[0]
    end = config.bonds_of("r2")[0]
    assert as_it_was(end, KernelState()) is None
