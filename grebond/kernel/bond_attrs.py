"""The two bond attributes pyroute2 cannot carry: IFLA_BOND_MISSED_MAX and IFLA_BOND_NS_IP6_TARGET.

Why not pyroute2: its bond attribute map stops at IFLA_BOND_TLB_DYNAMIC_LB (27) in 0.7.2, 0.7.7
and 0.9.x, and it silently drops keyword arguments it does not know (``bond_missed_max=``,
``bond_ns_ip6_target=``). Extending that map at run time would mean writing into pyroute2's
compiled class internals, which differ between 0.7 and 0.9 and may change in any release. So
this module speaks rtnetlink itself, over the standard library's ``AF_NETLINK`` socket: one
RTM_NEWLINK (change) to set the attributes on an existing bond, and one RTM_GETLINK to read
them back. It depends on no pyroute2 version at all, and it works inside an asyncio loop.

The kernel's encoding (``drivers/net/bonding/bond_netlink.c``, the same in 6.1 and 6.12):

- IFLA_BOND_MISSED_MAX (30): u8, 1..255 (Linux >= 5.17); always reported in a link dump.
- IFLA_BOND_NS_IP6_TARGET (31): nested; one 16-byte IPv6 address per nested attribute, whose
  type the kernel ignores on input and sets to the slot number (0..15) on output; up to 16.
  On input the attribute *replaces* the whole list (``bond_option_ns_ip6_targets_clear`` runs
  first), so an empty nest clears every target. On output the kernel sets NLA_F_NESTED and
  omits the attribute when there is no target (Linux >= 5.18).
- A kernel older than an attribute ignores it without an error (``IFLA_INFO_DATA`` is parsed
  liberally), so ``set_bond_attrs`` reads the bond back and fails when the kernel did not take it.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

from grebond.errors import SystemAccessError

IFLA_BOND_MISSED_MAX = 30
IFLA_BOND_NS_IP6_TARGET = 31
MAX_NS_TARGETS = 16                  # BOND_MAX_NS_TARGETS
MISSED_MAX_RANGE = (1, 255)          # bond_options.c: bond_missed_max_tbl

# rtnetlink numbers (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF
NLMSGERR_ATTR_MSG = 1
IFLA_IFNAME, IFLA_LINKINFO, IFLA_EXT_MASK = 3, 18, 29
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
RTEXT_FILTER_SKIP_STATS = 1 << 3     # a bond's stats are of no use here
SOL_NETLINK = getattr(socket, "SOL_NETLINK", 270)
NETLINK_CAP_ACK, NETLINK_EXT_ACK = 10, 11

_NLMSGHDR = struct.Struct("=IHHII")        # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")      # family, pad, type, index, flags, change
_NLA = struct.Struct("=HH")                # len, type
RECV_BUFFER = 1 << 16                      # a dump's skb is at most 32 KiB (netlink_recvmsg)


@dataclass(frozen=True)
class BondAttrs:
    """What the kernel reports for the two attributes of one bond.

    ``missed_max`` is None when the kernel did not report it (Linux < 5.17).
    ``ns_ip6_targets`` are compressed IPv6 addresses in the kernel's slot order; empty when none
    are set (or the kernel has no NS monitor, Linux < 5.18: the dump cannot tell the two apart).
    """

    missed_max: int | None = None
    ns_ip6_targets: tuple[str, ...] = ()


# ------------------------------------------------------------------------- pure encode/decode

def _nla(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes (the length field excludes the padding)."""
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _nlas(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type without flags, payload) for each attribute in ``data``; stops at a malformed one."""
    offset = 0
    while offset + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size or offset + length > len(data):
            return
        yield kind & NLA_TYPE_MASK, data[offset + _NLA.size:offset + length]
        offset += (length + 3) & ~3


def normalise_ns_targets(targets: Iterable[str | IPv6Address]) -> tuple[str, ...]:
    """Compressed IPv6 addresses; ValueError for what the kernel would refuse (bond_is_ip6_target_ok).

    The kernel takes link-local targets since 5.19 (commit 5e1eeef69c0f; so 6.1 and 6.12 do);
    it refuses the unspecified, loopback and multicast addresses, duplicates and more than 16.
    """
    out: list[str] = []
    for target in targets:
        addr = ip_address(str(target))
        if addr.version != 6:
            raise ValueError(f"ns_ip6_target {target}: not an IPv6 address")
        if isinstance(addr, IPv6Address) and addr.scope_id:
            raise ValueError(f"ns_ip6_target {target}: no %scope (the target belongs to the bond)")
        if addr.is_unspecified or addr.is_loopback or addr.is_multicast:
            raise ValueError(f"ns_ip6_target {target}: the kernel refuses an unspecified, loopback "
                             "or multicast target")
        if str(addr) in out:
            raise ValueError(f"ns_ip6_target {target}: listed twice (the kernel refuses duplicates)")
        out.append(str(addr))
    if len(out) > MAX_NS_TARGETS:
        raise ValueError(f"ns_ip6_target: {len(out)} targets, the kernel holds at most {MAX_NS_TARGETS}")
    return tuple(out)


def encode_bond_attrs(missed_max: int | None = None,
                      ns_ip6_targets: Sequence[str | IPv6Address] | None = None) -> bytes:
    """The IFLA_INFO_DATA payload carrying only the given attributes (None: leave it alone).

    ``ns_ip6_targets=()`` sends an empty nest, which clears every NS target. Entries are numbered
    from 0, as the kernel and iproute2 number them (the kernel ignores the number).
    """
    out = b""
    if missed_max is not None:
        low, high = MISSED_MAX_RANGE
        if isinstance(missed_max, bool) or not isinstance(missed_max, int) or not low <= missed_max <= high:
            raise ValueError(f"arp_missed_max {missed_max!r}: must be an integer {low}..{high}")
        out += _nla(IFLA_BOND_MISSED_MAX, struct.pack("=B", missed_max))
    if ns_ip6_targets is not None:
        targets = normalise_ns_targets(ns_ip6_targets)
        inner = b"".join(_nla(i, IPv6Address(t).packed) for i, t in enumerate(targets))
        out += _nla(IFLA_BOND_NS_IP6_TARGET | NLA_F_NESTED, inner)
    return out


def decode_bond_attrs(info_data: bytes) -> BondAttrs:
    """The two attributes from a bond's IFLA_INFO_DATA payload (other attributes are skipped)."""
    missed_max: int | None = None
    targets: list[str] = []
    for kind, payload in _nlas(info_data):
        if kind == IFLA_BOND_MISSED_MAX and payload:
            missed_max = payload[0]
        elif kind == IFLA_BOND_NS_IP6_TARGET:
            targets += [str(IPv6Address(p[:16])) for _, p in _nlas(payload) if len(p) >= 16]
    return BondAttrs(missed_max, tuple(targets))


def changelink_request(bond: str, seq: int = 1, *, missed_max: int | None = None,
                       ns_ip6_targets: Sequence[str | IPv6Address] | None = None) -> bytes:
    """RTM_NEWLINK changing an existing bond, named by IFLA_IFNAME (no lookup race, no create)."""
    name = bond.encode() + b"\0"
    data = encode_bond_attrs(missed_max, ns_ip6_targets)
    linkinfo = _nla(IFLA_INFO_KIND, b"bond") + _nla(IFLA_INFO_DATA, data)
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _nla(IFLA_IFNAME, name) + _nla(IFLA_LINKINFO, linkinfo)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def getlink_request(bond: str | None = None, seq: int = 1) -> bytes:
    """RTM_GETLINK for one link by name, or (``None``) a dump the kernel filters to kind 'bond'."""
    attrs = _nla(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
    if bond is None:
        flags = NLM_F_REQUEST | NLM_F_DUMP
        attrs += _nla(IFLA_LINKINFO, _nla(IFLA_INFO_KIND, b"bond"))   # rtnl_dump_ifinfo's kind filter
    else:
        flags = NLM_F_REQUEST
        attrs += _nla(IFLA_IFNAME, bond.encode() + b"\0")
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attrs
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETLINK, flags, seq, 0) + body


def decode_link(message: bytes) -> tuple[int, str | None, BondAttrs | None]:
    """(ifindex, name, the bond attributes or None when not a bond) from one RTM_NEWLINK message
    (its netlink header included)."""
    _, msg_type, _, _, _ = _NLMSGHDR.unpack_from(message, 0)
    if msg_type != RTM_NEWLINK:
        raise ValueError(f"not an RTM_NEWLINK message (type {msg_type})")
    _, _, index, _, _ = _IFINFOMSG.unpack_from(message, _NLMSGHDR.size)
    name: str | None = None
    kind: bytes | None = None
    info_data = b""
    for attr, payload in _nlas(message[_NLMSGHDR.size + _IFINFOMSG.size:]):
        if attr == IFLA_IFNAME:
            name = payload.split(b"\0", 1)[0].decode(errors="replace")
        elif attr == IFLA_LINKINFO:
            for sub, value in _nlas(payload):
                if sub == IFLA_INFO_KIND:
                    kind = value.split(b"\0", 1)[0]
                elif sub == IFLA_INFO_DATA:
                    info_data = value
    return index, name, decode_bond_attrs(info_data) if kind == b"bond" else None


def split_messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, whole message) for each netlink message in one datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, flags, seq, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return
        yield msg_type, flags, seq, data[offset:offset + length]
        offset += (length + 3) & ~3


def decode_error(message: bytes) -> tuple[int, str | None]:
    """(errno, the kernel's extended-ack text or None) from an NLMSG_ERROR; errno 0 is an ACK."""
    _, _, flags, _, _ = _NLMSGHDR.unpack_from(message, 0)
    (error,) = struct.unpack_from("=i", message, _NLMSGHDR.size)
    text = None
    if flags & NLM_F_ACK_TLVS:
        offset = _NLMSGHDR.size + 4
        if flags & NLM_F_CAPPED:
            offset += _NLMSGHDR.size
        else:
            offset += _NLMSGHDR.unpack_from(message, offset)[0]
        for kind, payload in _nlas(message[(offset + 3) & ~3:]):
            if kind == NLMSGERR_ATTR_MSG:
                text = payload.split(b"\0", 1)[0].decode(errors="replace") or None
    return -error, text


# ------------------------------------------------------------------------------------- I/O

class _Rtnl:
    """A NETLINK_ROUTE socket in the caller's network namespace, asking for extended acks."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      socket.NETLINK_ROUTE)
        except OSError as exc:
            raise SystemAccessError(f"cannot open netlink: {exc.strerror or exc}") from exc
        for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):   # error text; no copy of our request
            try:
                self.sock.setsockopt(SOL_NETLINK, option, 1)
            except OSError:
                pass   # older kernels: plain errno only
        self.sock.bind((0, 0))
        self.seq = int.from_bytes(os.urandom(2), "little") + 1

    def close(self) -> None:
        self.sock.close()

    def request(self, build: bytes) -> Iterator[tuple[int, bytes]]:
        """Send one request; yield (type, message) of its replies until the ACK, error or DONE.

        Raises OSError(errno, text) for an NLMSG_ERROR, with the kernel's extended-ack text.
        """
        seq = _NLMSGHDR.unpack_from(build, 0)[3]
        self.sock.sendto(build, (0, 0))
        while True:
            data, _, msg_flags, _ = self.sock.recvmsg(RECV_BUFFER)
            if msg_flags & socket.MSG_TRUNC:
                raise SystemAccessError("netlink reply larger than the receive buffer")
            for msg_type, flags, msg_seq, message in split_messages(data):
                if msg_seq != seq:
                    continue       # a late reply to an earlier request
                if msg_type == NLMSG_ERROR:
                    code, text = decode_error(message)
                    if code:
                        raise OSError(code, text or os.strerror(code))
                    return
                if msg_type == NLMSG_DONE:
                    return
                yield msg_type, message
                if not flags & NLM_F_MULTI:
                    return

    def next_seq(self) -> int:
        self.seq = self.seq % 0xFFFFFFFF + 1
        return self.seq


def _system_error(action: str, exc: OSError) -> SystemAccessError:
    hint = {errno.EPERM: "; run as root",
            errno.EACCES: " (802.3ad, balance-tlb and balance-alb have no ARP/NS monitor)",
            errno.ENODEV: " (no such interface)", errno.EOPNOTSUPP: " (not a bond)"}
    return SystemAccessError(f"{action}: {exc.strerror or exc}{hint.get(exc.errno or 0, '')}")


def read_bond_attrs(bond: str | None = None) -> dict[str, BondAttrs]:
    """The attributes of one bond (by name) or of every bond in this namespace, keyed by name.

    One RTM_GETLINK: a dump filtered by the kernel to kind 'bond' when ``bond`` is None. Raises
    SystemAccessError when netlink cannot be read, or ``bond`` does not exist or is no bond.
    """
    rtnl = _Rtnl()
    out: dict[str, BondAttrs] = {}
    what = f"cannot read bond {bond}" if bond else "cannot read the bonds"
    try:
        for _, message in rtnl.request(getlink_request(bond, rtnl.next_seq())):
            _, name, attrs = decode_link(message)
            if name is not None and attrs is not None:
                out[name] = attrs
    except OSError as exc:
        raise _system_error(what, exc) from exc
    finally:
        rtnl.close()
    if bond is not None and bond not in out:
        raise SystemAccessError(f"{what}: it is not a bond")
    return out


def set_bond_attrs(bond: str, *, missed_max: int | None = None,
                   ns_ip6_targets: Sequence[str | IPv6Address] | None = None) -> BondAttrs:
    """Set arp_missed_max and/or the NS targets of an existing bond, then read them back.

    None leaves an attribute as it is; ``ns_ip6_targets=()`` clears the targets. Works on a
    fresh bond (before slaves and addresses) as on a running one, like ``ip link set dev BOND
    type bond ns_ip6_target ... arp_missed_max N``. Returns what the kernel then reports; raises
    SystemAccessError when the kernel refuses (with its reason) or silently ignores an attribute
    (a kernel older than 5.17 / 5.18). ValueError for values no kernel accepts (see
    ``encode_bond_attrs``): validation should have refused those first.
    """
    if missed_max is None and ns_ip6_targets is None:
        return read_bond_attrs(bond)[bond]
    wanted = normalise_ns_targets(ns_ip6_targets) if ns_ip6_targets is not None else None
    rtnl = _Rtnl()
    parts = ([f"arp_missed_max {missed_max}"] if missed_max is not None else []) + \
        ([f"ns_ip6_target {','.join(wanted) or '(none)'}"] if wanted is not None else [])
    action = f"cannot set {bond} {' '.join(parts)}"
    try:
        for _ in rtnl.request(changelink_request(bond, rtnl.next_seq(), missed_max=missed_max,
                                                 ns_ip6_targets=wanted)):
            pass
    except OSError as exc:
        raise _system_error(action, exc) from exc
    finally:
        rtnl.close()
    got = read_bond_attrs(bond)[bond]
    if missed_max is not None and got.missed_max != missed_max:
        raise SystemAccessError(f"{action}: the kernel ignored it (arp_missed_max needs Linux >= 5.17)")
    if wanted is not None and got.ns_ip6_targets != wanted:
        raise SystemAccessError(f"{action}: the kernel reports {','.join(got.ns_ip6_targets) or 'none'} "
                                "(ns_ip6_target needs Linux >= 5.18)")
    return got
