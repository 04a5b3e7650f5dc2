"""A tunnel's ``delay``: a netem root qdisc, read, set and removed over netlink (pyroute2 tc).

Why netem as the root qdisc of the tunnel (not of the WireGuard device or the bond): only that
tunnel's packets wait, on the way out, after the bond has picked the tunnel; the underlay and
the other tunnels are untouched. ``limit`` is set explicitly (``model.NETEM_LIMIT``): a delayed
tunnel holds rate x delay in its queue, and netem's default of 1000 packets (1400 bytes) fills
at 1.1 Gbit/s over 10 ms, beyond which it drops.

netem reports its delay in scheduler ticks (``struct tc_netem_qopt``); pyroute2 converts with
the tick rate of /proc/net/psched both ways (64 ns ticks on Linux), finer than the model's
microsecond, so rounding gives back exactly the microseconds that were set. The same calls work
with Debian's pyroute2 0.7.2 / 0.7.7 and PyPI's 0.9.x.
"""

from __future__ import annotations

from typing import Any

from grebond.kernel.desired import delay_drift
from grebond.kernel.netlink import index_of, ipr, netlink_error
from grebond.kernel.state import QdiscInfo
from grebond.model import NETEM_LIMIT, format_delay

TC_H_ROOT = 0xFFFFFFFF


def root_qdiscs(ip: Any) -> dict[int, QdiscInfo]:
    """Every device's root qdisc, by ifindex, in one dump."""
    from pyroute2.netlink.rtnl.tcmsg.common import tick_in_usec

    out: dict[int, QdiscInfo] = {}
    for msg in ip.get_qdiscs():
        if msg["parent"] != TC_H_ROOT:
            continue
        kind = str(msg.get_attr("TCA_KIND") or "")
        info = QdiscInfo(kind)
        opts = msg.get_attr("TCA_OPTIONS") if kind == "netem" else None
        if opts is not None:
            info = QdiscInfo(kind, round(int(opts["delay"]) / tick_in_usec), int(opts["limit"]))
        out[int(msg["index"])] = info
    return out


def set_netem(ip: Any, index: int, delay_us: int, limit: int = NETEM_LIMIT) -> None:
    """Make netem with ``delay_us`` the device's root qdisc, replacing whatever root it had."""
    ip.tc("replace", "netem", index, delay=delay_us, limit=limit)


def delete_root_qdisc(ip: Any, index: int) -> None:
    """Delete the device's root qdisc; the kernel gives it its default one back."""
    if index <= 0:          # pyroute2's tc('del', index=0) would delete every device's qdisc
        raise ValueError(f"no such device index {index}")
    ip.tc("del", index=index, parent=TC_H_ROOT)


def converge_delays(wanted: dict[str, int | None], dry_run: bool = False) -> dict[str, str]:
    """Give each interface of ``wanted`` its delay (microseconds; None: no netem) where the kernel
    differs, as the kernel backend's plan would; what was (or would be) done, by interface.

    For the networkd backend: networkd sets ``[NetworkEmulator]`` when it configures a link, but
    unchanged files do not put back a delay changed by hand, and systemd.network(5) does not say
    that a qdisc whose section went away is removed. Interfaces that do not exist are skipped
    (whoever creates them configures them).
    """
    done: dict[str, str] = {}
    if not wanted:
        return done
    from pyroute2 import NetlinkError

    with ipr() as ip:
        qdiscs = root_qdiscs(ip)
        for name, delay_us in wanted.items():
            index = index_of(ip, name)
            if index is None:
                continue
            have = qdiscs.get(index)
            if not delay_drift(delay_us, have):
                continue
            if delay_us:
                text = f"set {name} delay {format_delay(delay_us)} (its netem root qdisc)"
            else:
                assert have is not None and have.kind == "netem"
                text = f"removed {name}'s netem delay {format_delay(have.delay_us or 0)}"
            if not dry_run:
                try:
                    if delay_us:
                        set_netem(ip, index, delay_us)
                    else:
                        delete_root_qdisc(ip, index)
                except NetlinkError as exc:
                    raise netlink_error(f"cannot {'set' if delay_us else 'remove'} the netem qdisc of {name}",
                                        exc) from exc
            done[name] = text
    return done

