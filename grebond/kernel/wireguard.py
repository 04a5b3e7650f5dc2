"""Each WireGuard device's peers with their latest handshake, for ``status`` and the metrics.

Why: a WireGuard path whose far end is gone keeps its device up and its route in place; only the
handshake ages. WireGuard re-keys after 2 minutes of a session while packets flow, and grebond's
ARP monitor keeps packets flowing on every path, so a latest handshake much older than that
(REJECT_AFTER_TIME is 180 s) means the session is dead.

Read over generic netlink with pyroute2's ``WireGuard`` client: its sync ``info(ifname)`` is a
dump of ``wgmsg`` with the peers under WGDEVICE_A_PEERS in both 0.7.2 and 0.9.x (0.9 wraps an
asyncio core, the call is the same). When pyroute2 cannot (its client fails to bind the
"wireguard" family, or a future pyroute2 drops it), ``wg show DEV dump`` from wireguard-tools is
the fallback, only when ``wg`` is installed. pyroute2 is imported inside functions so importing
this module (the reader does, for the dataclass) loads nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any

from grebond.kernel.state import WireGuardPeer, peer_for

__all__ = ["WireGuardPeer", "peer_for", "read_peers"]

WG_TIMEOUT_S = 5.0


def read_peers(devices: Iterable[str]) -> dict[str, tuple[WireGuardPeer, ...]]:
    """The peers of each WireGuard device in ``devices``; a device that cannot be read is left out.

    Leaving it out (not raising) is deliberate: the metrics then lack that path's handshake series,
    while the bond's own state, read over rtnetlink, still goes out.
    """
    names = list(dict.fromkeys(devices))
    if not names:
        return {}
    try:
        return _read_pyroute2(names)
    except (ImportError, OSError, AttributeError, TypeError, ValueError):
        return read_peers_wg_tool(names)


def _read_pyroute2(names: list[str]) -> dict[str, tuple[WireGuardPeer, ...]]:
    from pyroute2 import NetlinkError, WireGuard

    out: dict[str, tuple[WireGuardPeer, ...]] = {}
    try:
        wg = WireGuard()
    except NetlinkError as exc:     # no "wireguard" generic-netlink family: the module is not loaded
        raise OSError(f"cannot open WireGuard's generic netlink: {exc}") from exc
    try:
        for name in names:
            try:
                msgs = list(wg.info(name))
            except NetlinkError:        # ENODEV: gone since the link dump, or not a WireGuard device
                continue
            # a device with many peers comes in several messages of one dump, each with a part of them
            out[name] = tuple(_peer(p) for m in msgs for p in (m.get_attr("WGDEVICE_A_PEERS") or []))
    finally:
        wg.close()
    return out


def _field(nla: Any, key: str) -> Any:
    """A struct field of a decoded NLA (``tv_sec`` of the handshake time, ``addr`` of an endpoint)."""
    if nla is None:
        return None
    try:
        return nla[key]
    except (KeyError, TypeError, IndexError):
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _peer(p: Any) -> WireGuardPeer:
    key = p.get_attr("WGPEER_A_PUBLIC_KEY")
    handshake = p.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
    endpoint = p.get_attr("WGPEER_A_ENDPOINT")
    host, port = _field(endpoint, "addr"), _field(endpoint, "port")
    allowed = tuple(str(_field(a, "addr")) for a in (p.get_attr("WGPEER_A_ALLOWEDIPS") or [])
                    if _field(a, "addr"))
    return WireGuardPeer(
        public_key=_text(key if isinstance(key, (str, bytes)) else _field(key, "value") or ""),
        allowed_ips=allowed,
        latest_handshake=int(_field(handshake, "tv_sec") or 0),
        endpoint=(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}") if host and port else None,
        rx_bytes=int(p.get_attr("WGPEER_A_RX_BYTES") or 0),
        tx_bytes=int(p.get_attr("WGPEER_A_TX_BYTES") or 0),
    )


def read_peers_wg_tool(names: Iterable[str]) -> dict[str, tuple[WireGuardPeer, ...]]:
    """The same from ``wg show DEV dump`` (wireguard-tools), when it is installed; else nothing.

    Dump lines after the device's own: public key, preshared key, endpoint, allowed ips
    (comma-separated or "(none)"), latest handshake (Unix time, 0 never), rx, tx, keepalive; tab-separated.
    """
    import shutil

    wg = shutil.which("wg")
    out: dict[str, tuple[WireGuardPeer, ...]] = {}
    if wg is None:
        return out
    for name in names:
        try:
            done = subprocess.run([wg, "show", name, "dump"], capture_output=True, text=True, timeout=WG_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode != 0:
            continue
        out[name] = parse_wg_dump(done.stdout)
    return out


def parse_wg_dump(text: str) -> tuple[WireGuardPeer, ...]:
    """Peers from the output of ``wg show DEV dump`` (its first line is the device itself)."""
    peers = []
    for line in text.splitlines()[1:]:
        f = line.split("\t")
        if len(f) < 8:
            continue
        try:
            peers.append(WireGuardPeer(
                public_key=f[0], endpoint=None if f[2] == "(none)" else f[2],
                allowed_ips=tuple(a for a in f[3].split(",") if a and a != "(none)"),
                latest_handshake=int(f[4]), rx_bytes=int(f[5]), tx_bytes=int(f[6])))
        except ValueError:
            continue
    return tuple(peers)
