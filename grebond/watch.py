"""``grebond status --watch``: each tunnel's state, rate in and out, and share of its bond's traffic.

Why: whether balance-rr really spreads the load, and whether a tunnel silently stopped carrying
any, shows at a glance only as rates side by side, which counters alone do not give. Rates come
from the kernel's byte counters: the difference between two reads over the monotonic time
between them (a counter that went down, a tunnel recreated, counts from zero).

On a terminal the view is redrawn in place on the alternate screen, which Ctrl-C leaves (cursor
shown again, the shell's screen as it was; exit 0). Anywhere else (a pipe, a log) it prints one
plain line per tunnel and refresh, without escape sequences. ``frame`` and ``plain`` are pure.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from grebond.errors import GrebondError
from grebond.snapshot import Snapshot
from grebond.status import TunnelStatus

BAR_WIDTH = 20
ENTER = "\x1b[?1049h\x1b[?25l"    # alternate screen, cursor hidden
LEAVE = "\x1b[?25h\x1b[?1049l"    # cursor shown, normal screen back
HOME = "\x1b[H"
EOL = "\x1b[K"                    # clear to the end of the line
EOS = "\x1b[J"                    # clear to the end of the screen


@dataclass(frozen=True)
class Rate:
    """One tunnel between two reads: bits per second in (rx) and out (tx), share of its bond's bytes."""

    rx_bps: float
    tx_bps: float
    share: float                  # (rx + tx bytes) of the tunnel / of all the bond's tunnels, 0..1


def _delta(cur: int, prev: int) -> int:
    return cur - prev if cur >= prev else cur     # a smaller counter: the device was recreated


def rates(prev: Snapshot | None, cur: Snapshot) -> dict[tuple[str, str, str], Rate]:
    """(node, bond, tunnel) -> its rate between ``prev`` and ``cur``; empty before a second read."""
    if prev is None or cur.monotonic <= prev.monotonic:
        return {}
    dt = cur.monotonic - prev.monotonic
    before = {(b.node, b.name, t.name): t for b in prev.bonds for t in b.tunnels}
    out: dict[tuple[str, str, str], Rate] = {}
    for b in cur.bonds:
        moved: dict[str, tuple[int, int]] = {}
        for t in b.tunnels:
            old = before.get((b.node, b.name, t.name))
            if old is None or not (t.present and old.present):
                continue
            moved[t.name] = (_delta(t.rx_bytes, old.rx_bytes), _delta(t.tx_bytes, old.tx_bytes))
        total = sum(rx + tx for rx, tx in moved.values())
        for name, (rx, tx) in moved.items():
            out[(b.node, b.name, name)] = Rate(rx * 8 / dt, tx * 8 / dt, (rx + tx) / total if total else 0.0)
    return out


def human_rate(bps: float) -> str:
    """Bits per second the way links are sized: 950 bit/s, 12.3 kbit/s, 94.1 Mbit/s, 1.20 Gbit/s."""
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            value = bps / scale
            return f"{value:.2f} {unit}" if value < 10 else f"{value:.1f} {unit}"
    return f"{bps:.0f} bit/s"


def bar(share: float, width: int = BAR_WIDTH) -> str:
    filled = max(0, min(width, round(share * width)))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def state(t: TunnelStatus, mode: str | None) -> str:
    """What the bond makes of the tunnel: its monitor's verdict, and in active-backup which one sends."""
    if not t.present:
        return "absent"
    if t.slave_state is None:
        return "not enslaved"
    verdict = t.monitor_status or "?"
    if mode == "active-backup":
        verdict += " (active)" if t.slave_state == "active" else " (backup)"
    return verdict


def frame(prev: Snapshot | None, cur: Snapshot, interval_s: float, error: str | None = None,
          clock: str = "") -> list[str]:
    """The terminal view of ``cur`` (rates against ``prev``), one string per line, no escapes."""
    r = rates(prev, cur)
    out = [f"grebond status --watch {interval_s:g}s   {', '.join(cur.nodes)}   {clock}   Ctrl-C quits"]
    if error:
        out.append(f"read failed: {error}; showing the last good read")
    for b in cur.bonds:
        up = sum(1 for t in b.tunnels if t.up)
        if not b.present:
            out += ["", f"{b.name} ({b.node}): absent; run 'grebond apply'"]
            continue
        out += ["", f"{b.name} ({b.node}): {b.mode}, {b.state}, {up}/{len(b.tunnels)} tunnels up",
                f"  {'tunnel':<10} {'state':<14} {'in':>12} {'out':>12}  share of the bond's traffic"]
        for t in b.tunnels:
            rate = r.get((b.node, b.name, t.name))
            if rate is None:
                cells = f"{'-':>12} {'-':>12}  {'(after the next read)' if t.present else ''}"
            else:
                cells = (f"{human_rate(rate.rx_bps):>12} {human_rate(rate.tx_bps):>12}  "
                         f"{bar(rate.share)} {rate.share:>4.0%}")
            out.append(f"  {t.name:<10} {state(t, b.mode):<14} {cells}".rstrip())
    return out


def plain(prev: Snapshot | None, cur: Snapshot, error: str | None = None, clock: str = "") -> list[str]:
    """The same for a pipe or a log: one self-contained line per tunnel (no redraw, no escapes)."""
    if error:
        return [f"{clock} read failed: {error}"]
    r = rates(prev, cur)
    out = []
    for b in cur.bonds:
        if not b.present:
            out.append(f"{clock} {b.name} ({b.node}) absent")
            continue
        for t in b.tunnels:
            rate = r.get((b.node, b.name, t.name))
            tail = (f"in {human_rate(rate.rx_bps)} out {human_rate(rate.tx_bps)} share {rate.share:.0%}"
                    if rate else "in - out - share -")
            out.append(f"{clock} {b.name} ({b.node}) {t.name} {state(t, b.mode)} {tail}")
    return out


def stop_on_signal(_signum: int, _frame: object) -> None:
    """A signal handler that ends a watch loop the way Ctrl-C does (terminal restored, exit 0)."""
    raise KeyboardInterrupt


def run(take: Callable[[], Snapshot], interval_s: float, out: TextIO, tty: bool | None = None) -> int:
    """Read, draw, sleep until Ctrl-C (or SIGTERM/SIGHUP); always leaves the terminal as it was. Exit 0.

    The first read's error is raised (exit 3, nothing drawn); later ones are shown and the view goes on.
    """
    if tty is None:
        tty = out.isatty()
    prev: Snapshot | None = None
    cur = take()
    old = {s: signal.signal(s, stop_on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    if tty:
        out.write(ENTER)
    try:
        next_at = time.monotonic()
        error: str | None = None
        while True:
            clock = time.strftime("%H:%M:%S")
            if tty:
                width = _columns(out)
                lines = [line[:width] for line in frame(prev, cur, interval_s, error, clock)]
                out.write(HOME + "".join(line + EOL + "\n" for line in lines) + EOS)
            else:
                out.write("".join(line + "\n" for line in plain(prev, cur, error, clock)))
            out.flush()
            next_at = max(next_at + interval_s, time.monotonic())   # late: the next beat from now, no burst
            time.sleep(max(0.0, next_at - time.monotonic()))
            try:
                prev, cur, error = cur, take(), None
            except GrebondError as exc:
                error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    except KeyboardInterrupt:
        pass
    finally:
        if tty:
            out.write(LEAVE)
            out.flush()
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0


def _columns(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80
