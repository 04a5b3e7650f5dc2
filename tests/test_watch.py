"""`grebond status --watch`: rates and shares from two reads, the view a user reads, a clean exit.

The live loop under a real pseudo-terminal, with traffic across a real bond, is in tests/live/test_metrics.py.
"""

from __future__ import annotations

import dataclasses
import io

import pytest

from grebond.errors import SystemAccessError
from grebond.kernel.reader import KernelState, SlaveInfo
from grebond.snapshot import Snapshot, build
from grebond.validation import load_config
from grebond.watch import LEAVE, bar, frame, human_rate, plain, rates, run

from kernel_states import SEED, matching_state


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_config(str(SEED))[0]


def traffic(config, at: float, gre1: tuple[int, int], gre2: tuple[int, int]) -> Snapshot:  # type: ignore[no-untyped-def]
    """A read at monotonic ``at`` with gre1/gre2 at (rx, tx) bytes."""
    s = matching_state(config)
    links = dict(s.links)
    for name, (rx, tx) in (("gre1", gre1), ("gre2", gre2)):
        links[name] = dataclasses.replace(links[name], rx_bytes=rx, tx_bytes=tx)
    return build(config, ["r2"], KernelState(links=links, routes=s.routes), monotonic=at)


def test_rates_and_shares_from_counter_deltas(config) -> None:  # type: ignore[no-untyped-def]
    a = traffic(config, 10.0, (1_000, 1_000), (5_000_000, 5_000_000))
    b = traffic(config, 12.0, (2_501_000, 2_501_000), (7_500_000, 7_500_000))   # +2.5 MB each way, each, in 2 s
    r = rates(a, b)
    g1, g2 = r[("r2", "bond0", "gre1")], r[("r2", "bond0", "gre2")]
    assert (g1.rx_bps, g1.tx_bps) == (10_000_000.0, 10_000_000.0)          # 2.5 MB * 8 / 2 s
    assert g1.share == g2.share == 0.5                                     # totals differ; the deltas do not
    assert rates(None, b) == {}


def test_a_recreated_tunnel_counts_from_zero(config) -> None:  # type: ignore[no-untyped-def]
    a = traffic(config, 0.0, (9_000, 9_000), (1_000, 1_000))
    b = traffic(config, 1.0, (1_000, 1_000), (2_000, 2_000))
    g1 = rates(a, b)[("r2", "bond0", "gre1")]
    assert g1.rx_bps == 8_000 and g1.share == 0.5


def test_the_view_a_user_reads(config) -> None:  # type: ignore[no-untyped-def]
    a = traffic(config, 0.0, (0, 0), (0, 0))
    b = traffic(config, 1.0, (3_000_000, 9_000_000), (1_000_000, 3_000_000))
    lines = frame(a, b, 1.0, clock="12:00:00")
    assert lines[0] == "grebond status --watch 1s   r2   12:00:00   Ctrl-C quits"
    assert "bond0 (r2): balance-rr, up, 2/2 tunnels up" in lines
    gre1 = next(line for line in lines if line.lstrip().startswith("gre1"))
    assert gre1.split() == ["gre1", "up", "24.0", "Mbit/s", "72.0", "Mbit/s", "[###############.....]", "75%"]
    first = frame(None, b, 1.0)
    assert any("(after the next read)" in line for line in first)
    assert not any("\x1b" in line for line in lines)


def test_a_dead_tunnel_and_active_backup(config) -> None:  # type: ignore[no-untyped-def]
    s = traffic(config, 0.0, (0, 0), (0, 0))
    t1, t2 = s.bonds[0].tunnels
    down = dataclasses.replace(t1, slave_state="backup", monitor_status="down")
    bond = dataclasses.replace(s.bonds[0], mode="active-backup", tunnels=[down, t2])
    lines = frame(None, dataclasses.replace(s, bonds=[bond]), 2.0)
    assert "bond0 (r2): active-backup, up, 1/2 tunnels up" in lines
    assert any(line.split()[:3] == ["gre1", "down", "(backup)"] for line in lines)
    assert any(line.split()[:3] == ["gre2", "up", "(active)"] for line in lines)


def test_plain_lines_for_a_pipe(config) -> None:  # type: ignore[no-untyped-def]
    a = traffic(config, 0.0, (0, 0), (0, 0))
    b = traffic(config, 2.0, (250_000, 0), (250_000, 0))
    assert plain(a, b, clock="12:00:02") == [
        "12:00:02 bond0 (r2) gre1 up in 1.00 Mbit/s out 0 bit/s share 50%",
        "12:00:02 bond0 (r2) gre2 up in 1.00 Mbit/s out 0 bit/s share 50%",
    ]
    assert plain(a, b, error="cannot read the kernel: EPERM", clock="t") == ["t read failed: cannot read the kernel: EPERM"]


@pytest.mark.parametrize(("bps", "text"), [(950, "950 bit/s"), (12_345, "12.3 kbit/s"), (9_410_000, "9.41 Mbit/s"),
                                           (1_200_000_000, "1.20 Gbit/s")])
def test_human_rate(bps: float, text: str) -> None:
    assert human_rate(bps) == text


def test_bar() -> None:
    assert bar(0.0) == "[" + "." * 20 + "]" and bar(1.0) == "[" + "#" * 20 + "]" and bar(0.26, 4) == "[#...]"


class Reads:
    """``take`` for run(): the given snapshots (or errors) in turn, then Ctrl-C."""

    def __init__(self, *items: Snapshot | Exception) -> None:
        self.items = list(items)

    def __call__(self) -> Snapshot:
        if not self.items:
            raise KeyboardInterrupt
        item = self.items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def test_run_on_a_terminal_redraws_in_place_and_restores_it(config) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    reads = Reads(traffic(config, 0.0, (0, 0), (0, 0)), traffic(config, 1.0, (10, 10), (10, 10)),
                  SystemAccessError("cannot read the kernel: gone"))
    assert run(reads, 0.1, out, tty=True) == 0
    text = out.getvalue()
    assert text.startswith("\x1b[?1049h\x1b[?25l") and text.endswith(LEAVE)
    assert text.count("\x1b[H") == 3                                  # three frames, each drawn over the last
    assert "read failed: cannot read the kernel: gone; showing the last good read" in text


def test_run_in_a_pipe_prints_plain_lines(config) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    assert run(Reads(traffic(config, 0.0, (0, 0), (0, 0)), traffic(config, 1.0, (10, 10), (10, 10))), 0.1, out,
               tty=False) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\x1b" not in out.getvalue()
    assert lines[2].endswith("gre1 up in 80 bit/s out 80 bit/s share 50%")


def test_the_first_read_failing_is_an_error(config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemAccessError):
        run(Reads(SystemAccessError("cannot read the kernel")), 0.1, io.StringIO(), tty=True)


def test_slave_info_down_counts_as_not_up(config) -> None:  # type: ignore[no-untyped-def]
    s = matching_state(config)
    links = dict(s.links)
    links["gre2"] = dataclasses.replace(links["gre2"], slave=SlaveInfo("active", "fail", 1))
    snap = build(config, ["r2"], KernelState(links=links, routes=s.routes))
    assert [t.up for t in snap.bonds[0].tunnels] == [True, False]
