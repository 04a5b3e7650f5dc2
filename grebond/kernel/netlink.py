"""The one way grebond opens netlink (pyroute2's sync ``IPRoute``), and the few link operations
several layers need (exists, delete, set a MAC, enslave).

Only modules under ``grebond.kernel`` import pyroute2, and only inside functions, so the
renderers and ``grebond --help`` never load it. The sync API behaves the same in Debian's
pyroute2 0.7.2 / 0.7.7 and PyPI's 0.9.x (reference, section C).

Kernel quirks handled here: a slave must be DOWN to be enslaved (EPERM otherwise), and a
netlink error is turned into one line naming the action and the errno.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grebond.errors import SystemAccessError

GRE_KEY = 0x2000          # IFLA_GRE_[IO]FLAGS: wire (big-endian) order
IP6GRE_KEY = 0x0020       # IFLA_IP6GRE_[IO]FLAGS are decoded/encoded host-order by pyroute2 (x86: 0x2000 -> 0x0020)
IP6_TNL_F_IGN_ENCAP_LIMIT = 0x1   # ip6gretap "encaplimit none"
IFF_UP = 0x1
IFA_F_NODAD = 0x02
SYSFS_NET = Path("/sys/class/net")


@contextmanager
def ipr() -> Iterator[Any]:
    """An open ``IPRoute``; SystemAccessError when netlink cannot be opened (no pyroute2, no permission)."""
    try:
        from pyroute2 import IPRoute
    except ImportError as exc:  # pragma: no cover - pyroute2 is a dependency
        raise SystemAccessError(f"cannot use netlink: pyroute2 is not installed ({exc})") from exc
    try:
        handle = IPRoute()
    except RuntimeError as exc:
        # pyroute2 0.9.x: the sync IPRoute refuses to run inside a running asyncio loop
        raise SystemAccessError(f"cannot open netlink here ({exc}); call grebond's kernel code from a "
                                "thread (asyncio.to_thread)") from exc
    except OSError as exc:
        raise SystemAccessError(f"cannot open netlink: {exc}") from exc
    try:
        yield handle
    finally:
        handle.close()


def index_of(ip: Any, name: str) -> int | None:
    found = ip.link_lookup(ifname=name)
    return int(found[0]) if found else None


def netlink_error(action: str, exc: Exception) -> SystemAccessError:
    """One line for a failed netlink request: what was tried, the kernel's reason, the errno name."""
    code = getattr(exc, "code", None)
    text = errno.errorcode.get(code, str(code)) if isinstance(code, int) else ""
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    detail = args[1] if len(args) > 1 else str(exc)
    hint = "; run as root" if code in (errno.EPERM, errno.EACCES) else ""
    return SystemAccessError(f"{action}: {detail}{f' ({text})' if text else ''}{hint}")


def link_exists(name: str) -> bool:
    """True when a network interface called ``name`` exists in this namespace."""
    # sysfs is cheaper than a netlink socket and needs no privileges
    if (SYSFS_NET / name).exists():
        return True
    with ipr() as ip:
        return index_of(ip, name) is not None


def delete_links(names: Iterable[str]) -> list[str]:
    """Delete each named interface that exists; return the names actually deleted, in order.

    Missing names are skipped (deleting a bond takes nothing else with it, but a caller may list
    a name twice or race with a daemon).
    """
    from pyroute2 import NetlinkError

    deleted: list[str] = []
    with ipr() as ip:
        for name in names:
            index = index_of(ip, name)
            if index is None:
                continue
            try:
                ip.link("del", index=index)
            except NetlinkError as exc:
                if exc.code == errno.ENODEV:
                    continue
                raise netlink_error(f"cannot delete {name}", exc) from exc
            deleted.append(name)
    return deleted


def set_mac(name: str, mac: str) -> None:
    """Give link ``name`` the address ``mac``. The kernel then marks it NET_ADDR_SET, so a bond that
    gets its first slave afterwards keeps it instead of taking the slave's (``bond_enslave`` does so
    only while the bond's address is NET_ADDR_RANDOM)."""
    from pyroute2 import NetlinkError

    with ipr() as ip:
        index = index_of(ip, name)
        if index is None:
            raise SystemAccessError(f"cannot set the MAC of {name}: no such interface")
        try:
            ip.link("set", index=index, address=mac)
        except NetlinkError as exc:
            raise netlink_error(f"cannot set {name} mac {mac}", exc) from exc


def enslave(bond: str, slaves: Sequence[str]) -> None:
    """Make each of ``slaves`` a slave of ``bond`` and bring it up; already-enslaved ones are left alone.

    A device enslaved to another master is moved. The slave is set DOWN first because the
    kernel refuses to enslave an up device ("Device can not be enslaved while up", EPERM).
    """
    from pyroute2 import NetlinkError

    with ipr() as ip:
        bond_index = index_of(ip, bond)
        if bond_index is None:
            raise SystemAccessError(f"cannot enslave to {bond}: no such interface")
        for name in slaves:
            index = index_of(ip, name)
            if index is None:
                raise SystemAccessError(f"cannot enslave {name} to {bond}: no such interface")
            try:
                enslave_index(ip, bond_index, index)
            except NetlinkError as exc:
                raise netlink_error(f"cannot enslave {name} to {bond}", exc) from exc


def enslave_index(ip: Any, bond_index: int, index: int) -> str | None:
    """Enslave one device by index (and bring it up); what was done, None when nothing."""
    msg = ip.link("get", index=index)[0]
    if msg.get_attr("IFLA_MASTER") == bond_index:
        if not msg["flags"] & IFF_UP:
            ip.link("set", index=index, state="up")
            return "set up"
        return None
    if msg.get_attr("IFLA_MASTER"):
        ip.link("set", index=index, master=0)
    ip.link("set", index=index, state="down")
    ip.link("set", index=index, master=bond_index)
    ip.link("set", index=index, state="up")   # bonding opens the slave itself; make it explicit anyway
    return "enslaved"

