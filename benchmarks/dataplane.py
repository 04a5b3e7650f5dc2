"""Data-plane benchmark: does the bond grebond builds deliver bandwidth, failover and the right MTU?

Runs INSIDE the lab guest (as root, real kernel with bonding/gretap/wireguard); start it from the
host with ``benchmarks/run-in-lab``. It prints Markdown tables (and writes JSON with ``--json``);
it is not a timed test, it is the evidence behind docs/performance.md.

Why it builds bonds from the model rather than by hand: the point is to measure what grebond
renders. Each bond comes from a YAML model parsed by grebond and the ``ip`` commands of grebond's
iproute2 renderer (the same argv the ``render --backend iproute2`` script holds), run in each
router's namespace. The topology (namespaces, veths, WireGuard, netem) is tests/lab/topology.py.

Parts (``--part``): agg (aggregation), failover, mtu, unequal. All by default (~10-14 min in TCG).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from grebond.model import LocalBond  # noqa: E402
from grebond.renderer.iproute2 import commands, tunnel_argv  # noqa: E402
from grebond.validation import parse_config  # noqa: E402

from lab.topology import SEED_V4, SEED_V6, Lab, wait_for  # noqa: E402

BOND = "bond0"
BOND_V4 = {"r2": "10.67.0.1", "r1": "10.67.0.2"}
BOND_V6 = {"r2": "fd67::1", "r1": "fd67::2"}
SINGLE_V4 = {"r2": "10.66.0.1", "r1": "10.66.0.2"}     # one gretap alone, outside any bond
IPERF_PORT = 5201


def log(msg: str) -> None:
    """Progress goes to stderr so stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- model -> kernel
def model_yaml(lab: Lab, paths: Iterable[int], *, underlay_mtu: int, mode: str = "balance-rr",
               key: bool = False, v6_bond: bool = False, monitor: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> str:
    """A grebond model for the lab's paths; monitor None means grebond's defaults (ARP 100 ms, missed-max 2)."""
    lines = ["version: 1", "links:", f"  {BOND}:", f"    mode: {mode}", "    ends:"]
    for r in ("r2", "r1"):
        addrs = [f"{BOND_V4[r]}/24"] + ([f'"{BOND_V6[r]}/64"'] if v6_bond else [])
        lines.append(f"      {r}: {{addresses: [{', '.join(addrs)}]}}")
    lines.append("    tunnels:")
    for i in paths:
        lines.append(f"      gre{i}:")
        lines.append(f"        ends: {{r2: \"{lab.local('r2', i)}\", r1: \"{lab.local('r1', i)}\"}}")
        if key:
            lines.append(f"        key: {100 + i}")
    lines.append(f"    underlay-mtu: {underlay_mtu}")
    if monitor:
        lines.append("    monitor:")
        lines += [f"      {k}: {v}" for k, v in monitor.items()]
    for k, v in (extra or {}).items():
        lines.append(f"    {k}: {v}")
    return "\n".join(lines) + "\n"


def bond_ends(text: str) -> dict[str, LocalBond]:
    """Parse the model with grebond's validator (warnings ignored: miimon-only is deliberate here)."""
    config, _warnings = parse_config(text, "<benchmark>")
    return {node: config.bonds_of(node)[0] for node in ("r2", "r1")}


def build_bond(lab: Lab, text: str) -> dict[str, LocalBond]:
    """Run grebond's iproute2 commands for both ends, then wait until the bond passes traffic."""
    ends = bond_ends(text)
    for node, end in ends.items():
        for argv in commands(end):
            lab.run(node, *argv)
    if not wait_for(lambda: lab.ping("r2", BOND_V4["r1"], count=1, wait=1).ok, timeout=30, interval=0.3):
        raise RuntimeError("bond never passed a ping")
    # every slave up on both ends before measuring (ARP monitor needs a few intervals)
    wait_for(lambda: all(slave_state(lab, n, t.name) == "up" for n, e in ends.items() for t in e.tunnels),
             timeout=10, interval=0.2)
    return ends


def teardown_bond(lab: Lab, ends: dict[str, LocalBond]) -> None:
    for node, end in ends.items():
        lab.run(node, "ip", "link", "del", end.name, check=False)
        for t in end.tunnels:
            lab.run(node, "ip", "link", "del", t.name, check=False)


def slave_state(lab: Lab, node: str, slave: str) -> str:
    cp = lab.run(node, "cat", f"/sys/class/net/{slave}/bonding_slave/mii_status", check=False)
    return cp.stdout.strip()


def build_single(lab: Lab, text: str) -> list[tuple[str, str]]:
    """One gretap alone (the model's first tunnel, same MTU), addressed directly: the baseline."""
    ends = bond_ends(text)
    made = []
    for node, end in ends.items():
        t = end.tunnels[0]
        lab.run(node, *tunnel_argv(t))
        lab.run(node, "ip", "addr", "add", f"{SINGLE_V4[node]}/24", "dev", t.name)
        lab.run(node, "ip", "link", "set", t.name, "up")
        made.append((node, t.name))
    if not wait_for(lambda: lab.ping("r2", SINGLE_V4["r1"], count=1, wait=1).ok, timeout=20, interval=0.3):
        raise RuntimeError("single tunnel never passed a ping")
    return made


# ----------------------------------------------------------------------------- measurements
def iperf(lab: Lab, dst: str, seconds: int, streams: int, attempts: int = 3) -> float:
    """TCP goodput r2 -> r1 in Mbit/s (receiver side). Retried: on a starved host the server may
    not listen yet after its start-up pause (seen once: 'Connection refused')."""
    for _ in range(attempts):
        server = lab.spawn("r1", "iperf3", "-s", "-1", "-p", IPERF_PORT)
        time.sleep(1.0)
        try:
            cp = lab.run("r2", "iperf3", "-c", dst, "-p", IPERF_PORT, "-t", seconds, "-P", streams, "-J",
                         check=False, timeout=seconds + 60)
        finally:
            _quiet_wait(server)
        try:
            data = json.loads(cp.stdout)
            cpu = data["end"].get("cpu_utilization_percent", {})
            iperf_cpu.append(max(cpu.get("host_total", 0.0), cpu.get("remote_total", 0.0)))
            return data["end"]["sum_received"]["bits_per_second"] / 1e6
        except (ValueError, KeyError):
            log(f"iperf3 failed: {cp.stdout[-300:]} {cp.stderr[-300:]}")
            time.sleep(2.0)
    return float("nan")


iperf_cpu: list[float] = []
"""iperf3's own CPU use per run (max of sender/receiver, % of one guest): near 100 means CPU-bound."""


def _quiet_wait(proc: subprocess.Popen[bytes]) -> None:
    """Give ``iperf3 -s -1`` a moment to exit by itself (it serves one test); kill it otherwise."""
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def set_sysctl(lab: Lab, name: str, value: str) -> None:
    for node in ("r2", "r1"):
        lab.run(node, "sysctl", "-qw", f"{name}={value}")


def shape_all(lab: Lab, paths: Iterable[int], rate: float | None, delay: dict[int, float] | None = None) -> None:
    for i in paths:
        lab.shape_path(i, rate_mbit=rate, delay_ms=(delay or {}).get(i, 1.0))


# ----------------------------------------------------------------------------- tables
@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |",
               "|" + "---|" * len(self.header)]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"


# ----------------------------------------------------------------------------- (a) aggregation
def part_aggregation(seconds: int, rate_plain: float, rate_wg: float, repeat: int = 1) -> list[Table]:
    """One tunnel against grebond's bond of 2 and 3. Each figure is the median of ``repeat`` iperf3
    runs: the single rate-limited tunnel alone varies by ~2 % from run to run, the bond less."""
    def measured(what: str, dst: str, n: int) -> float:
        runs = [iperf(lab, dst, seconds, n) for _ in range(repeat)]
        log(f"  {what}, {n} stream(s): {', '.join(f'{r:.1f}' for r in runs)}")
        return statistics.median(runs)

    tables = []
    for wg, rate in ((False, rate_plain), (True, rate_wg)):
        iperf_cpu.clear()
        log(f"aggregation: {'WireGuard' if wg else 'plain veth'} paths at {rate} Mbit/s")
        umtu = 1440 if wg else 1500
        t = Table(f"Aggregation, {'over WireGuard' if wg else 'no WireGuard'}: each path {rate:g} Mbit/s, "
                  f"1 ms (netem), iperf3 TCP {seconds} s",
                  ["setup", "1 stream Mbit/s", "x single", "4 streams Mbit/s", "x single"])
        with Lab(paths=3, wireguard=wg) as lab:
            shape_all(lab, range(1, 4), rate)
            single: dict[int, float] = {}
            made = build_single(lab, model_yaml(lab, [1], underlay_mtu=umtu))
            for n in (1, 4):
                single[n] = measured("single tunnel", SINGLE_V4["r1"], n)
            for node, name in made:
                lab.run(node, "ip", "link", "del", name)
            t.rows.append(["one gretap alone", fmt(single[1]), "1.00", fmt(single[4]), "1.00"])
            for k in (2, 3):
                # grebond's default (the kernel's GSO/TSO/GRO: per-burst striping), then the same
                # model with `offloads: off` (per-packet striping)
                for offloads in ("auto", "off"):
                    extra = {"offloads": offloads} if offloads != "auto" else None
                    ends = build_bond(lab, model_yaml(lab, range(1, k + 1), underlay_mtu=umtu, extra=extra))
                    r = {}
                    for n in (1, 4):
                        r[n] = measured(f"bond of {k}, offloads {offloads}", BOND_V4["r1"], n)
                    label = f"grebond bond of {k} (balance-rr, " + \
                        ("default: the kernel's offloads)" if offloads == "auto" else "offloads: off)")
                    t.rows.append([label, fmt(r[1]), fmt(r[1] / single[1], 2), fmt(r[4]), fmt(r[4] / single[4], 2)])
                    teardown_bond(lab, ends)
        t.notes.append("target: bond/single >= 1.95 with 2 paths, >= 2.9 with 3")
        if repeat > 1:
            t.notes.append(f"each figure is the median of {repeat} runs (every run is in progress.log)")
        t.notes.append(f"iperf3 CPU use (max of sender/receiver) per run: {', '.join(f'{c:.0f}%' for c in iperf_cpu)}")
        tables.append(t)
    return tables


# ----------------------------------------------------------------------------- (b) failover
POLLER = r"""
import sys, time
paths, end = sys.argv[2:], time.time() + float(sys.argv[1])
last = {}
while time.time() < end:
    for p in paths:
        try:
            with open(f"/sys/class/net/{p}/bonding_slave/mii_status") as f:
                s = f.read().strip()
        except OSError:
            s = "gone"
        if last.get(p) != s:
            last[p] = s
            print(f"{time.time():.4f} {p} {s}", flush=True)
    time.sleep(0.01)
"""

_PING_LINE = re.compile(r"^\[(\d+\.\d+)\] .*icmp_seq=(\d+) .*time=([\d.]+) ms", re.M)


@dataclass
class FailoverResult:
    name: str
    sent: int
    lost_outage: int
    outage_pkts: int
    window_s: float | None
    detect_s: dict[str, float | None]
    recover_s: float | None
    lost_after_heal: int
    flaps_before: int
    flaps_load: int | None = None


def _send_times(replies: dict[int, float], count: int, t_first: float, interval: float) -> dict[int, float]:
    """Estimated send time of every seq: replies give it exactly; lost ones are interpolated."""
    known = sorted(replies.items())
    out: dict[int, float] = {}
    j = 0
    for seq in range(1, count + 1):
        if seq in replies:
            out[seq] = replies[seq]
            continue
        while j < len(known) and known[j][0] < seq:
            j += 1
        before = known[j - 1] if j > 0 else None
        after = known[j] if j < len(known) else None
        if before and after:
            a, b = before, after
            out[seq] = a[1] + (b[1] - a[1]) * (seq - a[0]) / (b[0] - a[0])
        elif before:
            out[seq] = before[1] + (seq - before[0]) * interval
        elif after:
            out[seq] = after[1] - (after[0] - seq) * interval
        else:
            out[seq] = t_first + (seq - 1) * interval
    return out


def failover_run(lab: Lab, name: str, text: str, *, break_at: float = 5.0, outage: float = 5.0,
                 after: float = 4.0, rate: int = 100, load_seconds: int = 0,
                 after_build: Callable[[dict[str, LocalBond]], None] | None = None) -> FailoverResult:
    """Ping across the bond at ``rate``/s, break path 1 silently at ``break_at``, heal after ``outage``.

    ``after_build`` adds what the model cannot say yet (benchmarks/unequal.py: a netem delay on tunnels)."""
    log(f"failover: {name}")
    ends = build_bond(lab, text)
    if after_build is not None:
        after_build(ends)
    slaves = [t.name for t in ends["r2"].tunnels]
    flaps_load = None
    try:
        fails0 = link_failures(lab)
        if load_seconds:  # false-failure check: saturate the shaped paths, count slaves marked down
            iperf(lab, BOND_V4["r1"], load_seconds, 4)
            flaps_load = link_failures(lab) - fails0
            wait_for(lambda: all(slave_state(lab, n, s) == "up" for n in ("r2", "r1") for s in slaves),
                     timeout=10, interval=0.2)
            fails0 = link_failures(lab)
        total = break_at + outage + after
        count = int(total * rate)
        pollers = {n: subprocess.Popen(lab.router(n).wrap([sys.executable, "-c", POLLER, str(total + 3), *slaves]),
                                       stdout=subprocess.PIPE, text=True) for n in ("r2", "r1")}
        time.sleep(1.5)  # interpreter start-up in TCG
        ping = subprocess.Popen(lab.router("r2").wrap(["ping", "-D", "-n", "-i", str(1 / rate), "-W", "1",
                                                       "-c", str(count), BOND_V4["r1"]]),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        t0 = time.time()
        time.sleep(break_at)
        t_break = set_broken(lab, 1, True)
        time.sleep(max(0.0, t_break + outage - time.time()))
        t_heal = set_broken(lab, 1, False)
        out, _ = ping.communicate(timeout=total + 60)
        polls = {n: p.communicate(timeout=total + 30)[0] for n, p in pollers.items()}
        log(f"  t0 {t0:.3f} break {t_break:.3f} heal {t_heal:.3f}; slave states: {polls}")
        log(f"  tc took {tc_seconds}")
        flaps_before = 0
    finally:
        teardown_bond(lab, ends)
    replies = {int(m.group(2)): float(m.group(1)) - float(m.group(3)) / 1000 for m in _PING_LINE.finditer(out)}
    sent_m = re.search(r"(\d+) packets transmitted", out)
    sent = int(sent_m.group(1)) if sent_m else count
    times = _send_times(replies, sent, t0, 1 / rate)
    lost = [s for s in range(1, sent + 1) if s not in replies]
    in_outage = [s for s in lost if t_break - 0.05 <= times[s] < t_heal]
    outage_pkts = len([s for s in range(1, sent + 1) if t_break - 0.05 <= times[s] < t_heal])
    after_heal = [s for s in lost if times[s] >= t_heal]
    window = (max(times[s] for s in in_outage) - t_break + 1 / rate) if in_outage else 0.0
    detect: dict[str, float | None] = {}
    recover: list[float | None] = []
    for n, text_ in polls.items():
        ev = [(float(a), p, s) for a, p, s in (ln.split() for ln in text_.splitlines() if len(ln.split()) == 3)]
        downs = [t for t, p, s in ev if p == slaves[0] and s != "up" and t >= t_break]
        detect[n] = (min(downs) - t_break) if downs and min(downs) < t_heal else None
        ups = [t for t, p, s in ev if p == slaves[0] and s == "up" and t >= t_heal]
        recover.append((min(ups) - t_heal) if ups else (0.0 if detect[n] is None else None))
        flaps_before += len([1 for t, p, s in ev if s != "up" and t < t_break - 0.05 and t > t0])
    rec = None if any(r is None for r in recover) else max(r for r in recover if r is not None)
    if window >= outage - 0.2 and detect.get("r2") is None:
        window_val: float | None = None  # never detected: the loss lasts as long as the outage
    else:
        window_val = window
    res = FailoverResult(name, sent, len(in_outage), outage_pkts, window_val, detect, rec, len(after_heal),
                         flaps_before, flaps_load)
    log(f"  lost {res.lost_outage}/{res.outage_pkts} in outage, window {res.window_s}, detect {detect}, "
        f"recover {rec}, lost after heal {res.lost_after_heal}, false downs under load {flaps_load}")
    return res


tc_seconds: list[float] = []


def set_broken(lab: Lab, i: int, broken: bool) -> float:
    """Break/heal path i on both ends AT ONCE and return when that started.

    Why not Lab.break_path: it runs ``ip netns exec ... tc`` for one end after the other, which in
    TCG (with the pollers and ping running) took up to 2 s, blurring the moment of the break.
    ``tc -n`` skips the ip-netns-exec fork and both ends run concurrently; the returned time is
    taken before either starts, so loss windows are, if anything, overstated by the tc run time.
    """
    p = lab.path(i)
    p.broken = broken  # keep the lab's bookkeeping right for its teardown and later shaping
    args = ["loss", "100%"] if broken else p.shaping
    t = time.time()
    procs = []
    for r in lab.routers.values():
        tc = ["tc"] + (["-n", r.netns] if r.netns else [])
        if args:
            argv = [*tc, "qdisc", "replace", "dev", p.veth, "root", "netem", "limit", "100000", *args]
        else:
            argv = [*tc, "qdisc", "del", "dev", p.veth, "root"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for proc in procs:
        proc.wait(timeout=30)
    tc_seconds.append(round(time.time() - t, 3))
    return t


def link_failures(lab: Lab) -> int:
    """Sum of 'Link Failure Count' over both ends' slaves (/proc/net/bonding is per namespace)."""
    total = 0
    for n in ("r2", "r1"):
        cp = lab.run(n, "cat", f"/proc/net/bonding/{BOND}", check=False)
        total += sum(int(x) for x in re.findall(r"Link Failure Count: (\d+)", cp.stdout))
    return total


FAILOVER_CONFIGS: list[tuple[str, dict[str, Any] | None, str]] = [
    ("grebond default: ARP 100 ms, missed-max 2, validate none", None, "balance-rr"),
    ("miimon 100 ms only", {"type": "mii", "interval": "100ms"}, "balance-rr"),
    ("ARP 100 ms, missed-max 1", {"type": "arp", "interval": "100ms", "missed-max": 1}, "balance-rr"),
    ("ARP 100 ms, missed-max 3", {"type": "arp", "interval": "100ms", "missed-max": 3}, "balance-rr"),
    ("ARP 100 ms, missed-max 2, validate filter",
     {"type": "arp", "interval": "100ms", "missed-max": 2, "validate": "filter"}, "balance-rr"),
    ("ARP 50 ms, missed-max 1", {"type": "arp", "interval": "50ms", "missed-max": 1}, "balance-rr"),
    ("ARP 50 ms, missed-max 2", {"type": "arp", "interval": "50ms", "missed-max": 2}, "balance-rr"),
    ("ARP 50 ms, missed-max 3", {"type": "arp", "interval": "50ms", "missed-max": 3}, "balance-rr"),
]


def part_failover(load_seconds: int, only: list[str] | None = None) -> list[Table]:
    t = Table("Failover: balance-rr, 2 WireGuard paths, ping 100/s, path 1 silently broken (netem loss 100%, "
              "both ends) at t=5 s for 5 s",
              ["bond monitoring", "lost in outage", "loss window s", "slave marked down after s (r2 / r1)",
               "recovery after heal s", "lost after heal", f"false downs, {load_seconds} s saturated"])
    with Lab(paths=2, wireguard=True) as lab:
        for name, monitor, mode in FAILOVER_CONFIGS:
            if only and not any(o in name for o in only):
                continue
            if load_seconds:
                shape_all(lab, (1, 2), 20.0)
            r = failover_run(lab, name, model_yaml(lab, (1, 2), underlay_mtu=1440, mode=mode, monitor=monitor),
                             load_seconds=load_seconds)
            shape_all(lab, (1, 2), None)
            pct = 100 * r.lost_outage / r.outage_pkts if r.outage_pkts else 0
            det = " / ".join(fmt(v, 2) if v is not None else "never" for v in r.detect_s.values())
            t.rows.append([name, f"{r.lost_outage}/{r.outage_pkts} ({pct:.0f}%)",
                           "whole outage" if r.window_s is None else fmt(r.window_s, 2), det,
                           fmt(r.recover_s, 2) if r.recover_s is not None else "not seen",
                           str(r.lost_after_heal), "-" if r.flaps_load is None else str(r.flaps_load)])
    t.notes += ["targets: loss window <= 0.7 s in TCG (0.3 s on hardware); recovery <= 1 s after healing",
                "loss window: from the break to the last lost packet sent during the outage",
                "false downs: Link Failure Count increase on both ends while 4 iperf3 streams saturate the paths "
                "(20 Mbit/s each, netem) before the failover run; a slave marked down with no real fault"]
    return [t]


# ----------------------------------------------------------------------------- (c) MTU
def part_mtu() -> list[Table]:
    t = Table("MTU: largest `ping -M do` across the bond vs grebond's computed MTU (WireGuard MTU 1440)",
              ["underlay", "GRE key", "grebond MTU", "kernel bond / slave MTU", "IPv4 payload MTU-28",
               "+1 byte", "IPv6 payload MTU-48", "+1 byte"])
    for family, addrs in ((4, SEED_V4[:2]), (6, SEED_V6[:2])):
        with Lab(addresses=addrs, wireguard=True) as lab:
            for key in (False, True):
                log(f"mtu: IPv{family} underlay, key={key}")
                text = model_yaml(lab, (1, 2), underlay_mtu=1440, key=key, v6_bond=True)
                ends = build_bond(lab, text)
                mtu = ends["r2"].mtu
                kernel = _mtu_of(lab, "r2", BOND), _mtu_of(lab, "r2", ends["r2"].tunnels[0].name)
                wait_for(lambda: lab.run("r2", "ping", "-6", "-c1", "-W1", BOND_V6["r1"], check=False)
                         .returncode == 0, timeout=10, interval=0.3)
                cells = []
                for v, dst, over in ((4, BOND_V4["r1"], 28), (6, BOND_V6["r1"], 48)):
                    for size in (mtu - over, mtu - over + 1):
                        cp = lab.run("r2", "ping", f"-{v}", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do",
                                     "-s", str(size), dst, check=False)
                        ok = cp.returncode == 0
                        local = "local error" if "too long" in (cp.stdout + cp.stderr) else "no reply"
                        cells.append(f"{size}: {'passes' if ok else 'fails (' + local + ')'}")
                teardown_bond(lab, ends)
                t.rows.append([f"IPv{family} ({ends['r2'].tunnels[0].kind})", "yes" if key else "no", str(mtu),
                               f"{kernel[0]} / {kernel[1]}", *cells])
    t.notes.append("expected: MTU-28 (v4) and MTU-48 (v6) pass; one byte more fails locally "
                   "('message too long'), never silently")
    return [t]


def _mtu_of(lab: Lab, node: str, dev: str) -> int:
    m = re.search(r"mtu (\d+)", lab.run(node, "ip", "link", "show", dev).stdout)
    return int(m.group(1)) if m else -1


# ----------------------------------------------------------------------------- (d) unequal paths
def part_unequal(seconds: int, rate: float) -> list[Table]:
    t = Table(f"Unequal paths: 2 paths at {rate:g} Mbit/s, path 1 1 ms, path 2 21 ms (netem), no WireGuard, "
              f"iperf3 TCP {seconds} s",
              ["mode", "1 stream Mbit/s", "4 streams Mbit/s"])
    variants: list[tuple[str, str, dict[str, Any], str | None]] = [
        ("balance-rr (grebond default)", "balance-rr", {}, None),
        ("balance-rr + net.ipv4.tcp_reordering=127", "balance-rr", {}, "127"),
        ("balance-xor, xmit-hash-policy layer3+4", "balance-xor", {"xmit-hash-policy": "layer3+4"}, None),
        ("active-backup, primary gre1 (the fast path)", "active-backup", {"primary": "gre1"}, None),
    ]
    with Lab(paths=2, wireguard=False) as lab:
        shape_all(lab, (1, 2), rate, {1: 1.0, 2: 21.0})
        made = build_single(lab, model_yaml(lab, [1], underlay_mtu=1500))
        ref = iperf(lab, SINGLE_V4["r1"], seconds, 1)
        for node, name in made:
            lab.run(node, "ip", "link", "del", name)
        t.rows.append(["reference: one gretap on the fast path alone", fmt(ref), "-"])
        for name, mode, extra, reordering in variants:
            log(f"unequal: {name}")
            if reordering:
                set_sysctl(lab, "net.ipv4.tcp_reordering", reordering)
            ends = build_bond(lab, model_yaml(lab, (1, 2), underlay_mtu=1500, mode=mode, extra=extra))
            r = {n: iperf(lab, BOND_V4["r1"], seconds, n) for n in (1, 4)}
            log(f"  {r}")
            teardown_bond(lab, ends)
            if reordering:
                set_sysctl(lab, "net.ipv4.tcp_reordering", "3")
            t.rows.append([name, fmt(r[1]), fmt(r[4])])
    t.notes.append("balance-xor hashes the INNER flow (the bond sees Ethernet frames before GRE), so "
                   "one TCP flow stays on one path: no reordering, at most one path's rate per flow")
    return [t]


# ----------------------------------------------------------------------------- main
def machine() -> str:
    tcg = "TCG (no KVM)" if not Path("/dev/kvm").exists() or os.environ.get("GREBOND_LAB_KVM") != "1" else "KVM"
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"guest kernel {platform.release()}, {os.cpu_count()} vCPU ({cpu}), QEMU {tcg}; "
            f"date {time.strftime('%Y-%m-%d %H:%M %Z')}")


def run_parts(parts: list[str], runners: dict[str, Any]) -> list[Table]:
    """Run each part, printing its tables as they come; a failed part is a table saying so, and the
    other parts still run (their results are what a long benchmark boot is for)."""
    tables: list[Table] = []
    for part in parts:
        t0 = time.monotonic()
        try:
            new = runners[part]()
        except Exception as exc:  # keep the other parts' results
            log(f"part {part} failed: {exc!r}")
            new = [Table(f"{part}: FAILED", ["error"], [[repr(exc)[:300]]])]
        for tab in new:
            tab.notes.append(f"part '{part}' took {time.monotonic() - t0:.0f} s")
            print(tab.markdown(), flush=True)
        tables += new
    return tables


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", action="append", choices=("agg", "failover", "mtu", "unequal"),
                    help="run only this part (repeatable); default: all")
    ap.add_argument("--seconds", type=int, default=10, help="iperf3 duration per run (default 10)")
    ap.add_argument("--repeat", type=int, default=1, help="aggregation: iperf3 runs per figure, median (default 1)")
    ap.add_argument("--load-seconds", type=int, default=6,
                    help="saturating load before each failover run, to count false downs (0: skip)")
    ap.add_argument("--rate", type=float, default=50.0, help="per-path rate without WireGuard, Mbit/s (default 50)")
    ap.add_argument("--wg-rate", type=float, default=20.0,
                    help="per-path rate over WireGuard, Mbit/s (default 20: WireGuard caps ~100 in TCG)")
    ap.add_argument("--only", action="append", help="failover: only configs whose name contains this")
    ap.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("dataplane.py must run as root inside the lab guest (benchmarks/run-in-lab)", file=sys.stderr)
        return 2
    parts = args.part or ["agg", "failover", "mtu", "unequal"]
    runners: dict[str, Callable[[], list[Table]]] = {
        "mtu": part_mtu,
        "agg": lambda: part_aggregation(args.seconds, args.rate, args.wg_rate, args.repeat),
        "failover": lambda: part_failover(args.load_seconds, args.only),
        "unequal": lambda: part_unequal(args.seconds, args.rate),
    }
    print(f"## grebond data-plane benchmark\n\n{machine()}\n", flush=True)
    t_start = time.monotonic()
    tables = run_parts(parts, runners)
    print(f"total {time.monotonic() - t_start:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps([t.__dict__ for t in tables], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
