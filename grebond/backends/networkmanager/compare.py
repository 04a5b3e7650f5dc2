"""Whether a profile NetworkManager holds already says what grebond would send: normalising both sides.

Pure. GetSettings omits properties at their default values, and NM normalises bond options (it
drops ``miimon=0`` next to an ARP monitor), so "differs" is judged after filling NM's defaults
and normalising numbers to names. Also: recognising grebond's own profiles (by the user-data
marker, never by name), and settings as JSON for a snapshot kept on disk.
"""

from __future__ import annotations

import base64
from ipaddress import ip_address
from typing import Any

from grebond.model import ARP_VALIDATE, LACP_RATES, XMIT_HASH_POLICIES, BondMode
from grebond.renderer.networkmanager import USER_KEY, Plain

# NM's defaults for what grebond sends: GetSettings leaves these out.
_DEFAULTS: dict[tuple[str, str], tuple[str, Any]] = {
    ("connection", "autoconnect"): ("b", True),
    ("connection", "autoconnect-slaves"): ("i", -1),
    ("connection", "master"): ("s", ""),
    ("connection", "slave-type"): ("s", ""),
    ("802-3-ethernet", "mtu"): ("u", 0),
    ("802-3-ethernet", "assigned-mac-address"): ("s", ""),
    ("ip-tunnel", "local"): ("s", ""),
    ("ip-tunnel", "ttl"): ("u", 0),
    ("ip-tunnel", "input-key"): ("s", ""),
    ("ip-tunnel", "output-key"): ("s", ""),
    ("ip-tunnel", "encapsulation-limit"): ("u", 0),
    ("ip-tunnel", "flags"): ("u", 0),
    ("ip-tunnel", "mtu"): ("u", 0),
    ("ipv4", "address-data"): ("aa{sv}", []),
    ("ipv6", "address-data"): ("aa{sv}", []),
    ("user", "data"): ("a{ss}", {}),
}
# NM 1.42's bond option defaults (nm-setting-bond.c); miimon's depends on arp_interval, see below
_BOND_DEFAULTS = {"arp_interval": "0", "arp_validate": "none", "arp_ip_target": "", "updelay": "0",
                  "downdelay": "0", "xmit_hash_policy": "layer2", "min_links": "0", "packets_per_slave": "1",
                  "lacp_rate": "slow", "primary": "", "arp_missed_max": "2", "arp_all_targets": "any"}
_BOND_NAMES = {"mode": [m.value for m in BondMode], "arp_validate": list(ARP_VALIDATE),
               "xmit_hash_policy": list(XMIT_HASH_POLICIES), "lacp_rate": list(LACP_RATES)}


def effective_bond_options(options: dict[str, str]) -> dict[str, str]:
    """Bond options as NM means them: names for numbers, defaults removed.

    NM's miimon default is 100, but 0 when arp_interval is set (NM then drops an explicit
    ``miimon=0``), so ``{miimon: 0, arp_interval: 100}`` and ``{arp_interval: 100}`` are equal.
    """
    out: dict[str, str] = {}
    for key, value in options.items():
        value = str(value).strip()
        names = _BOND_NAMES.get(key)
        if names and value.isdigit() and int(value) < len(names):
            value = names[int(value)]
        if key == "arp_ip_target":
            value = ",".join(sorted(v for v in value.replace(" ", ",").split(",") if v))
        out[key] = value
    miimon_default = "0" if out.get("arp_interval", "0") not in ("", "0") else "100"
    return {k: v for k, v in sorted(out.items())
            if v != (miimon_default if k == "miimon" else _BOND_DEFAULTS.get(k))}


def _norm(setting: str, key: str, value: Any) -> Any:
    """One property in a form where equal meaning compares equal."""
    if (setting, key) == ("bond", "options"):
        return effective_bond_options(value)
    if key == "address-data":
        return sorted((str(ip_address(d["address"][1])), int(d["prefix"][1])) for d in value)
    if (setting, key) in (("ip-tunnel", "local"), ("ip-tunnel", "remote")) and value:
        return str(ip_address(value))
    if key == "assigned-mac-address":
        return str(value).lower()
    return value


def actual_value(actual: Plain, setting: str, key: str) -> Any:
    found = actual.get(setting, {}).get(key)
    if found is None and (setting, key) == ("802-3-ethernet", "assigned-mac-address"):
        cloned = actual.get(setting, {}).get("cloned-mac-address")   # 'ay' on older daemons
        if cloned is not None:
            return ":".join(f"{b:02x}" for b in cloned[1])
    if found is None:
        return _DEFAULTS[(setting, key)][1] if (setting, key) in _DEFAULTS else None
    return found[1]


def differences(desired: Plain, actual: Plain) -> list[str]:
    """'setting.key' of every property grebond sets whose value NM holds differently."""
    out = []
    for setting, keys in desired.items():
        for key, (_sig, value) in keys.items():
            if _norm(setting, key, value) != _norm(setting, key, actual_value(actual, setting, key)):
                out.append(f"{setting}.{key}")
    return out


def is_grebonds(settings: Plain) -> bool:
    """A profile grebond made: it carries the user-data marker (which NM keeps when it rewrites a keyfile)."""
    data = settings.get("user", {}).get("data")
    return bool(data and USER_KEY in data[1])


def restorable(settings: Plain) -> Plain:
    """GetSettings' answer minus what NM maintains itself (connection.timestamp), so writing it
    back restores the profile byte for byte instead of adding a timestamp= line."""
    out = {name: dict(keys) for name, keys in settings.items()}
    out.get("connection", {}).pop("timestamp", None)
    return out


def name_of(settings: Plain) -> str:
    return str(settings.get("connection", {}).get("id", ("s", "?"))[1])


def uuid_of(settings: Plain) -> str:
    return str(settings.get("connection", {}).get("uuid", ("s", ""))[1])


def ifname_of(settings: Plain) -> str:
    return str(settings.get("connection", {}).get("interface-name", ("s", ""))[1])


def is_bond(settings: Plain) -> bool:
    return bool(settings.get("connection", {}).get("type", ("s", ""))[1] == "bond")


def controller_of(settings: Plain) -> str:
    return str(settings.get("connection", {}).get("master", ("s", ""))[1])


# ----------------------------------------------------------------------------- JSON (snapshots on disk)

def plain_to_json(plain: Plain) -> dict[str, Any]:
    return {setting: {key: [sig, _value_to_json(sig, value)] for key, (sig, value) in keys.items()}
            for setting, keys in plain.items()}


def plain_from_json(data: dict[str, Any]) -> Plain:
    return {setting: {key: (sig, _value_from_json(sig, value)) for key, (sig, value) in keys.items()}
            for setting, keys in data.items()}


def _value_to_json(sig: str, value: Any) -> Any:
    if sig == "ay":
        return base64.b64encode(bytes(value)).decode()
    if sig == "a{sv}":
        return {k: [s, _value_to_json(s, v)] for k, (s, v) in value.items()}
    if sig == "aa{sv}":
        return [{k: [s, _value_to_json(s, v)] for k, (s, v) in d.items()} for d in value]
    if sig == "aay":
        return [base64.b64encode(bytes(v)).decode() for v in value]
    return value


def _value_from_json(sig: str, value: Any) -> Any:
    if sig == "ay":
        return base64.b64decode(value)
    if sig == "a{sv}":
        return {k: (s, _value_from_json(s, v)) for k, (s, v) in value.items()}
    if sig == "aa{sv}":
        return [{k: (s, _value_from_json(s, v)) for k, (s, v) in d.items()} for d in value]
    if sig == "aay":
        return [base64.b64decode(v) for v in value]
    return value
