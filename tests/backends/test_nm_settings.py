"""NetworkManager settings as grebond passes them around: to D-Bus Variants and back, and to JSON
(a pending try's snapshot) and back; plus the profile plan on hand-made NM answers."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # Debian's dbus-next imports its GLib flavour on import, and python3-gi warns (ImportWarning)
    # under pytest's import hooks; it is not grebond's code, and grebond never uses that flavour
    warnings.simplefilter("ignore", ImportWarning)
    from dbus_next.signature import Variant

    from grebond.backends.networkmanager.dbus import from_dbus, to_dbus

from grebond.backends.networkmanager.compare import plain_from_json, plain_to_json
from grebond.backends.networkmanager.plan import Plan, plan_profiles
from grebond.renderer import networkmanager as renderer
from grebond.validation import load_config

from kernel_states import SEED


def seed_profiles() -> dict[str, renderer.Plain]:
    config = load_config(str(SEED))[0]
    return renderer.settings(config.bonds_of("r2"), config.source, "r2", "1.42")


def test_settings_to_variants_and_back_unchanged() -> None:
    for plain in seed_profiles().values():
        dbus = to_dbus(plain)
        assert isinstance(dbus["connection"]["id"], Variant) and dbus["connection"]["id"].signature == "s"
        if "ipv4" in plain and "address-data" in plain["ipv4"]:
            addresses = dbus["ipv4"]["address-data"]
            assert addresses.signature == "aa{sv}" and isinstance(addresses.value[0]["prefix"], Variant)
        assert from_dbus(dbus) == plain


def test_settings_with_bytes_round_trip_through_json() -> None:
    plain = {"802-3-ethernet": {"cloned-mac-address": ("ay", b"\x02\x53\x97\x02\xf4\x8a"), "mtu": ("u", 1402)},
             "bond": {"options": ("a{ss}", {"mode": "balance-rr"})}}
    assert plain_from_json(plain_to_json(plain)) == plain
    for profile in seed_profiles().values():
        assert plain_from_json(plain_to_json(profile)) == profile


def test_plan_adds_updates_deletes_and_leaves_others_alone() -> None:
    desired = seed_profiles()
    bond_uuid = next(u for u, p in desired.items() if p["connection"]["type"][1] == "bond")
    stale = {"connection": {"id": ("s", "grebond-gre9"), "uuid": ("s", "stale"), "type": ("s", "ip-tunnel"),
                            "interface-name": ("s", "gre9")},
             "user": {"data": ("a{ss}", {renderer.USER_KEY: "node=r2 link=bond0"})}}
    users = {"connection": {"id": ("s", "eth0"), "uuid": ("s", "user"), "type": ("s", "802-3-ethernet")}}
    changed = {s: dict(k) for s, k in desired[bond_uuid].items()}
    changed["bond"] = {"options": ("a{ss}", {"mode": "active-backup"})}
    existing = {bond_uuid: ("/p/1", changed), "stale": ("/p/2", stale), "user": ("/p/3", users)}
    plan = plan_profiles(desired, existing)
    assert [u for u, _n in plan.delete] == ["stale"]
    assert [(u, d) for u, _n, d in plan.update] == [(bond_uuid, ["bond.options"])]
    assert len(plan.add) == 2 and "user" not in plan.paths
    again = Plan.from_json(plan.to_json())
    assert again == plan
