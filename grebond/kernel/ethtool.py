"""Reading and setting a device's offload features through the ethtool ioctl (SIOCETHTOOL).

With ``offloads: off`` grebond turns generic segmentation, TCP segmentation (IPv4 and IPv6) and
generic receive offload off on a bond and its tunnels (see ``model.Link.offloads``). systemd-networkd
sets them from a ``.link`` file through udev, NetworkManager from its ``ethtool`` setting; the
kernel backend and the verifier use this module. It speaks the feature-string interface
(ETHTOOL_GSTRINGS / GFEATURES / SFEATURES) that ``ethtool -k/-K`` uses, by the kernel's own
names, so one feature is one bit: the legacy per-offload ioctls lump several bits together.
pyroute2's ethtool helpers changed their API between 0.7 and 0.9, hence the plain ioctl.
"""

from __future__ import annotations

import struct

from grebond.errors import SystemAccessError
from grebond.kernel.desired import offload_features, on_off
from grebond.model import OFFLOADS

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GFEATURES = 0x3A
ETHTOOL_SFEATURES = 0x3B
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32
IFNAMSIZ = 16
IFREQ_SIZE = 40


def _ioctl(ifname: str, payload: bytearray) -> int:
    """Run one ethtool command in ``payload`` (changed in place) on ``ifname``; returns the ioctl's value."""
    import ctypes
    import fcntl
    import socket

    buffer = (ctypes.c_char * len(payload)).from_buffer(payload)
    ifreq = struct.pack(f"{IFNAMSIZ}sP", ifname.encode(), ctypes.addressof(buffer))
    ifreq += bytes(IFREQ_SIZE - len(ifreq))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            return int(fcntl.ioctl(sock.fileno(), SIOCETHTOOL, bytearray(ifreq), True))
        except OSError as exc:
            raise SystemAccessError(f"{ifname}: ethtool request failed: {exc.strerror or exc}") from exc
        finally:
            del buffer   # release the export of ``payload`` before the caller reads it


_bit_index: dict[str, int] = {}


def _bits(ifname: str) -> tuple[dict[str, int], int]:
    """Feature name -> bit, and the number of 32-bit blocks. One list for every device of the
    kernel (netdev_features_strings), so it is asked for once, through whichever device comes first."""
    if not _bit_index:
        _bit_index.update((name, i) for i, name in enumerate(_feature_names(ifname)))
    return _bit_index, (len(_bit_index) + 31) // 32


def _feature_names(ifname: str) -> tuple[str, ...]:
    info = bytearray(struct.pack("=IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
    _ioctl(ifname, info)
    count = struct.unpack_from("=I", info, 16)[0]
    strings = bytearray(struct.pack("=III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count)
                        + bytes(count * ETH_GSTRING_LEN))
    _ioctl(ifname, strings)
    return parse_strings(bytes(strings[12:]), count)


def parse_strings(raw: bytes, count: int) -> tuple[str, ...]:
    """ETHTOOL_GSTRINGS' table: ``count`` NUL-padded names of ETH_GSTRING_LEN bytes each."""
    return tuple(raw[i * ETH_GSTRING_LEN:(i + 1) * ETH_GSTRING_LEN].split(b"\0", 1)[0].decode()
                 for i in range(count))


def active_states(reply: bytes, blocks: int, index: dict[str, int], names: tuple[str, ...]) -> dict[str, bool]:
    """From an ETHTOOL_GFEATURES reply: each name's bit in the ``active`` word of its 32-bit block
    (a block is available, requested, active, never_changed)."""
    active = [struct.unpack_from("=IIII", reply, 8 + 16 * b)[2] for b in range(blocks)]
    return {n: bool(active[index[n] // 32] >> (index[n] % 32) & 1) for n in names if n in index}


def set_request(index: dict[str, int], blocks: int, wanted: dict[str, bool]) -> bytearray:
    """An ETHTOOL_SFEATURES request: per block, the bits to change (valid) and their new values."""
    valid = [0] * blocks
    requested = [0] * blocks
    for name, on in wanted.items():
        bit = index[name]
        valid[bit // 32] |= 1 << (bit % 32)
        if on:
            requested[bit // 32] |= 1 << (bit % 32)
    return bytearray(struct.pack("=II", ETHTOOL_SFEATURES, blocks)
                     + b"".join(struct.pack("=II", v, r) for v, r in zip(valid, requested)))


def features(ifname: str, names: tuple[str, ...] = tuple(OFFLOADS.values())) -> dict[str, bool]:
    """The active state of each feature in ``names`` on ``ifname`` (features the kernel lacks are left out)."""
    index, blocks = _bits(ifname)
    request = bytearray(struct.pack("=II", ETHTOOL_GFEATURES, blocks) + bytes(16 * blocks))
    _ioctl(ifname, request)
    return active_states(bytes(request), blocks, index, names)


def set_features(ifname: str, wanted: dict[str, bool]) -> None:
    """Request each feature of ``wanted`` on or off; SystemAccessError if one does not take.

    The kernel may refuse a change silently (a feature fixed by the driver, or one that depends
    on another), so the active state is read back and compared.
    """
    index, blocks = _bits(ifname)
    unknown = sorted(set(wanted) - set(index))
    if unknown:
        raise SystemAccessError(f"{ifname}: this kernel has no feature {', '.join(unknown)}")
    _ioctl(ifname, set_request(index, blocks, wanted))
    have = features(ifname, tuple(wanted))
    refused = sorted(n for n, on in wanted.items() if have.get(n) != on)
    if refused:
        raise SystemAccessError(f"{ifname}: the kernel kept {', '.join(f'{n} {_word(have.get(n))}' for n in refused)}")


def _word(state: bool | None) -> str:
    return "on" if state else "off" if state is not None else "absent"


def converge_offloads(wanted: dict[str, bool], dry_run: bool = False) -> dict[str, str]:
    """Set each interface's offloads to ``wanted`` (on/off) wherever the kernel differs.

    Returns what was (or, with ``dry_run``, would be) done, by interface. Interfaces that do not
    exist are skipped: whoever creates them sets their features (udev from the .link file, NM
    from its profile, the kernel backend right after creating them).
    """
    done: dict[str, str] = {}
    for name, on in wanted.items():
        try:
            have = features(name)
        except SystemAccessError:
            continue
        if have != offload_features(on):
            if not dry_run:
                set_features(name, offload_features(on))
            done[name] = f"set {name} offloads {on_off(on)} (gso, tso, tso6, gro)"
    return done
