"""Unequal paths: which balance-rr configuration gets one TCP flow most of two unequal paths' sum?

Runs INSIDE the lab guest as root (start it with ``benchmarks/run-in-lab --bench unequal``). It is
the research behind issue 20: each lever (weights through several GRE-keyed tunnels over one path,
delay equalisation with netem on the faster path's tunnels, the TCP reordering sysctl, the bond's
packets_per_slave, GSO/TSO/GRO) is measured alone and combined, side by side with each path alone,
balance-xor and the kernel's MPTCP over the same two WireGuard paths, in one boot.

Why bonds come from grebond models: weights need nothing new (keyed tunnels sharing one path are
already valid in the model), so the bond, its tunnels and their keys are grebond's own iproute2
commands. What the model cannot say yet (a netem delay on a tunnel, partial offloads, sysctls) is
added here by hand with tc/ethtool/sysctl, and printed in the table so it can be rendered later.

Parts (``--part``): unequal (topologies A and B), equal (the offload alternatives on equal paths),
failover (the recommended configuration's loss window when the fast path dies).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataplane as dp
from dataplane import BOND_V4, SINGLE_V4, Table, fmt, log

from lab.topology import Lab

MPTCP_PORT = 5202
OFF4 = ["gso", "off", "tso", "off", "tx-tcp6-segmentation", "off", "gro", "off"]


# ----------------------------------------------------------------------------- topologies
@dataclass(frozen=True)
class Topology:
    name: str
    rate: dict[int, float]      # path -> Mbit/s (netem on both veth ends)
    delay: dict[int, float]     # path -> one-way ms per veth end (netem on both ends)
    target: float               # fraction of the sum of the single-path rates

    def describe(self) -> str:
        return " + ".join(f"path {p} {self.rate[p]:g} Mbit/s {self.delay[p]:g} ms" for p in sorted(self.rate))


TOPOLOGIES = {
    "A": Topology("A", {1: 20.0, 2: 10.0}, {1: 1.0, 2: 10.0}, 0.80),
    "B": Topology("B", {1: 20.0, 2: 20.0}, {1: 1.0, 2: 15.0}, 0.85),
}


# ----------------------------------------------------------------------------- variants
@dataclass
class Variant:
    """One configuration to measure. ``weights`` = keyed tunnels per path (2:1 = gre1, gre1b, gre2).

    ``equalize``: put netem delay on the faster path's tunnels (both ends) so both paths' RTTs match;
    a float is a fixed one-way delay in ms, True means half the measured RTT difference.
    ``features``: ethtool -K words per device class ("bond", "tunnels"), on both ends.
    ``sysctl``: {name: value} set in ``sysctl_on`` (both ends by default) for this variant only.
    """

    label: str
    mode: str = "balance-rr"
    weights: tuple[int, int] = (1, 1)
    offloads: str = "auto"
    equalize: bool | float = False
    features: dict[str, list[str]] = field(default_factory=dict)
    sysctl: dict[str, str] = field(default_factory=dict)
    sysctl_on: tuple[str, ...] = ("r2", "r1")
    pps: int | None = None
    xmit: str | None = None
    mptcp: bool = False
    single: int | None = None   # one gretap alone on this path, no bond
    final: bool = False         # in the short list (--final) measured with repeats

    def tunnels(self, paths: tuple[int, ...] = (1, 2)) -> list[tuple[str, int]]:
        if self.single is not None:
            return [(f"gre{self.single}", self.single)]
        out = []
        for p, w in zip(paths, self.weights):
            out += [(f"gre{p}" + ("" if i == 0 else "bcd"[i - 1]), p) for i in range(w)]
        return out


def model_yaml(lab: Lab, tunnels: list[tuple[str, int]], v: Variant) -> str:
    """A grebond model; every tunnel keyed (so every variant has the same MTU, 1398)."""
    lines = ["version: 1", "links:", f"  {dp.BOND}:", f"    mode: {v.mode}", "    ends:"]
    for r in ("r2", "r1"):
        lines.append(f"      {r}: {{addresses: [{BOND_V4[r]}/24]}}")
    lines.append("    tunnels:")
    for i, (name, p) in enumerate(tunnels):
        lines += [f"      {name}:", f"        ends: {{r2: \"{lab.local('r2', p)}\", r1: \"{lab.local('r1', p)}\"}}",
                  f"        key: {100 + 10 * p + i}"]
    lines.append("    underlay-mtu: 1440")
    if v.offloads != "auto":
        lines.append(f"    offloads: {v.offloads}")
    if v.pps is not None:
        lines.append(f"    packets-per-slave: {v.pps}")
    if v.xmit:
        lines.append(f"    xmit-hash-policy: {v.xmit}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- probes
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/")


def path_rtt(lab: Lab, p: int, count: int = 10) -> tuple[float, float]:
    """(min, avg) ICMP RTT in ms between the underlay addresses of path p, as check-paths probes."""
    cp = lab.run("r2", "ping", "-n", "-q", "-c", count, "-i", "0.2", "-I", lab.local("r2", p),
                 lab.remote("r2", p), check=False, timeout=60)
    m = _RTT.search(cp.stdout)
    return (float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan"))


def bond_rtt(lab: Lab, count: int = 20) -> tuple[float, float, float]:
    """(min, avg, max) ping RTT across the bond: shows what equalisation costs in latency."""
    cp = lab.run("r2", "ping", "-n", "-q", "-c", count, "-i", "0.1", BOND_V4["r1"], check=False, timeout=60)
    m = _RTT.search(cp.stdout)
    return (float(m.group(1)), float(m.group(2)), float(m.group(3))) if m else (float("nan"),) * 3


def wg_tx(lab: Lab, paths: tuple[int, ...]) -> dict[int, int]:
    """Bytes r2 has sent into each path's WireGuard device: the real per-path split of the flow."""
    out = {}
    for p in paths:
        cp = lab.run("r2", "cat", f"/sys/class/net/wg{p}/statistics/tx_bytes", check=False)
        out[p] = int(cp.stdout.strip() or 0)
    return out


def guest_load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the guest's CPUs: a run near 100 % busy measured the CPU, not the paths."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def nstat_mptcp(lab: Lab, node: str) -> dict[str, int]:
    cp = lab.run(node, "nstat", "-az", check=False)
    return {k: int(v) for k, v in re.findall(r"^(MPTcp\w+)\s+(\d+)", cp.stdout, re.MULTILINE) if int(v)}


@dataclass
class Run:
    mbit: float
    retrans: int | None
    split: dict[int, float]       # path -> share of the bytes sent by r2
    load: tuple[str, str]         # guest 1-min load before / after
    busy: float = float("nan")    # guest CPU busy fraction during the run (both vCPUs)


def iperf_run(lab: Lab, dst: str, seconds: int, paths: tuple[int, ...], mptcp: bool = False,
              attempts: int = 3) -> Run:
    """One iperf3 TCP flow r2 -> r1 (receiver-side goodput), with sender retransmits and per-path split."""
    wrap = ["mptcpize", "run"] if mptcp else []
    port = MPTCP_PORT if mptcp else dp.IPERF_PORT
    for _ in range(attempts):
        load0 = guest_load()
        before = wg_tx(lab, paths)
        c0 = cpu_ticks()
        server = lab.spawn("r1", *wrap, "iperf3", "-s", "-1", "-p", port)
        time.sleep(1.0)
        try:
            cp = lab.run("r2", *wrap, "iperf3", "-c", dst, "-p", port, "-t", seconds, "-J",
                         check=False, timeout=seconds + 60)
        finally:
            dp._quiet_wait(server)
        c1 = cpu_ticks()
        after = wg_tx(lab, paths)
        busy = (c1[0] - c0[0]) / max(1, c1[1] - c0[1])
        try:
            data = json.loads(cp.stdout)
            mbit = data["end"]["sum_received"]["bits_per_second"] / 1e6
            retrans = data["end"].get("sum_sent", {}).get("retransmits")
        except (ValueError, KeyError):
            log(f"iperf3 failed: {cp.stdout[-300:]} {cp.stderr[-300:]}")
            time.sleep(2.0)
            continue
        sent = {p: after[p] - before[p] for p in paths}
        total = sum(sent.values()) or 1
        return Run(mbit, retrans, {p: sent[p] / total for p in paths}, (load0, guest_load()), busy)
    return Run(float("nan"), None, {}, ("?", "?"))


# ----------------------------------------------------------------------------- building
def sysctl_get(lab: Lab, node: str, name: str) -> str:
    return lab.run(node, "sysctl", "-n", name).stdout.strip()


def apply_variant(lab: Lab, v: Variant, topo_paths: tuple[int, ...], eq_ms: float) -> tuple[Any, list[str]]:
    """Build what ``v`` describes; return (state for teardown, the hand-made steps as text)."""
    steps: list[str] = []
    tunnels = v.tunnels(topo_paths)
    text = model_yaml(lab, tunnels, v)
    if v.mptcp:
        return None, steps
    if v.single is not None:
        made = dp.build_single(lab, text)
        return ("single", made), steps
    ends = dp.build_bond(lab, text)
    if v.equalize is not False:
        delay = eq_ms if v.equalize is True else float(v.equalize)
        fast = topo_paths[0]
        for node in ("r2", "r1"):
            for name, p in tunnels:
                if p == fast and delay > 0:
                    lab.run(node, "tc", "qdisc", "replace", "dev", name, "root", "netem", "delay",
                            f"{delay:.1f}ms", "limit", "10000")
        steps.append(f"netem delay {delay:.1f}ms on path {fast}'s tunnels, both ends")
    for cls, words in v.features.items():
        devs = [dp.BOND] if cls == "bond" else [n for n, _ in tunnels]
        for node in ("r2", "r1"):
            for d in devs:
                lab.run(node, "ethtool", "-K", d, *words)
        steps.append(f"ethtool -K {cls} {' '.join(words)}")
    return ("bond", ends), steps


def teardown(lab: Lab, state: Any) -> None:
    if state is None:
        return
    kind, obj = state
    if kind == "single":
        for node, name in obj:
            lab.run(node, "ip", "link", "del", name, check=False)
    else:
        dp.teardown_bond(lab, obj)


# ----------------------------------------------------------------------------- MPTCP
def mptcp_setup(lab: Lab) -> None:
    """Two subflows, one per WireGuard path: r1 announces its path-2 address (signal endpoint), and
    r2's in-kernel path manager opens a subflow to it from whatever source routing picks (its own
    path-2 address: the WireGuard devices carry point-to-point addresses). A 'subflow' endpoint on
    r2 alone would connect 10.65.0.14 to r1's path-1 address, which routes over wg1, whose
    allowed-ips refuse that source."""
    for node in ("r2", "r1"):
        lab.run(node, "sysctl", "-qw", "net.mptcp.enabled=1")
        lab.run(node, "ip", "mptcp", "endpoint", "flush")
        lab.run(node, "ip", "mptcp", "limits", "set", "subflow", "2", "add_addr_accepted", "2")
    lab.run("r1", "ip", "mptcp", "endpoint", "add", lab.local("r1", 2), "dev", "wg2", "signal")


# ----------------------------------------------------------------------------- the unequal part
def variants_for(topo: Topology) -> list[Variant]:
    w = (2, 1) if topo.rate[1] > topo.rate[2] else (1, 1)
    wl = f"{w[0]}:{w[1]}"
    out = [
        Variant("path 1 alone (one gretap)", single=1, final=True),
        Variant("path 2 alone (one gretap)", single=2, final=True),
        Variant("balance-rr, 1:1, kernel offloads (grebond's default)", final=True),
        Variant("balance-xor layer3+4", mode="balance-xor", xmit="layer3+4", final=True),
        Variant("balance-rr, 1:1, offloads off", offloads="off"),
        Variant("balance-rr, 1:1, offloads off, tcp_reordering 127", offloads="off",
                sysctl={"net.ipv4.tcp_reordering": "127"}),
        Variant("balance-rr, 1:1, equalized, kernel offloads", equalize=True, final=w == (1, 1)),
        Variant("balance-rr, 1:1, equalized, offloads off", equalize=True, offloads="off", final=w == (1, 1)),
    ]
    if w != (1, 1):
        out += [
            Variant(f"balance-rr, {wl}, kernel offloads", weights=w),
            Variant(f"balance-rr, {wl}, offloads off", weights=w, offloads="off"),
            Variant(f"balance-rr, {wl}, equalized, kernel offloads", weights=w, equalize=True, final=True),
            Variant(f"balance-rr, {wl}, equalized, offloads off", weights=w, equalize=True, offloads="off",
                    final=True),
        ]
    best: dict[str, Any] = {"weights": w, "equalize": True, "offloads": "off"}
    out += [
        Variant(f"balance-rr, {wl}, equalized, offloads off, tcp_reordering 127 (both ends)",
                sysctl={"net.ipv4.tcp_reordering": "127"}, final=True, **best),
        Variant(f"balance-rr, {wl}, equalized, offloads off, packets-per-slave 4", pps=4,
                **best),
        Variant(f"balance-rr, {wl}, equalized, GSO+TSO off on the bond only (GRO kept)", weights=w,
                equalize=True, features={"bond": ["gso", "off", "tso", "off", "tx-tcp6-segmentation", "off"]}),
        Variant("MPTCP (kernel), 2 subflows over wg1 + wg2", mptcp=True, final=True),
    ]
    return out


def scaled(topo: Topology, scale: float) -> Topology:
    """The same topology with every rate times ``scale``: below the guest's CPU ceiling on a busy host."""
    return Topology(topo.name, {p: r * scale for p, r in topo.rate.items()}, topo.delay, topo.target)


def measure_variant(lab: Lab, v: Variant, paths: tuple[int, ...], eq_ms: float,
                    seconds: int) -> tuple[Run, list[str], tuple[float, float, float] | None]:
    """Build ``v``, run one iperf3 flow over it, tear it down (sysctls restored)."""
    saved = {}
    for node in v.sysctl_on:
        for k, val in v.sysctl.items():
            saved[(node, k)] = sysctl_get(lab, node, k)
            lab.run(node, "sysctl", "-qw", f"{k}={val}")
    m0 = nstat_mptcp(lab, "r1") if v.mptcp else {}
    state: Any = None
    steps: list[str] = []
    ping = None
    try:
        state, steps = apply_variant(lab, v, paths, eq_ms)
        dst = SINGLE_V4["r1"] if v.single is not None else lab.local("r1", 1) if v.mptcp else BOND_V4["r1"]
        run = iperf_run(lab, dst, seconds, paths, mptcp=v.mptcp)
        if v.single is None and not v.mptcp:
            ping = bond_rtt(lab)
    finally:
        teardown(lab, state)
        for (node, k), val in saved.items():
            lab.run(node, "sysctl", "-qw", f"{k}={val}")
    log(f"  {run.mbit:.1f} Mbit/s, retrans {run.retrans}, split {run.split}, guest load {run.load}, "
        f"guest CPU busy {run.busy:.2f}, bond ping {ping}")
    if v.mptcp:
        m1 = nstat_mptcp(lab, "r1")
        joins = {k: m1[k] - m0.get(k, 0) for k in m1 if m1[k] != m0.get(k, 0)}
        log(f"  MPTCP counters on r1 (delta): {joins}")
        steps = [f"MPJoin counters on r1: {', '.join(f'{k}={n}' for k, n in joins.items() if 'Join' in k)}"]
    return run, steps, ping


def part_unequal(topos: list[str], seconds: int, repeat: int, only: list[str] | None,
                 scale: float = 1.0, final: bool = False) -> list[Table]:
    tables = []
    for name in topos:
        topo = scaled(TOPOLOGIES[name], scale)
        paths = tuple(sorted(topo.rate))
        t = Table(f"Unequal paths, topology {name}: {topo.describe()} (netem both veth ends, WireGuard), "
                  f"one TCP flow r2 -> r1, iperf3 {seconds} s, median of {repeat}",
                  ["configuration", "runs Mbit/s", "median", "x sum", "retrans (median)",
                   "bytes on path 1 / 2", "guest CPU busy", "bond ping min/avg/max ms", "hand-made steps"])
        with Lab(paths=2, wireguard=True) as lab:
            for p in paths:
                lab.shape_path(p, rate_mbit=topo.rate[p], delay_ms=topo.delay[p])
            rtts = {p: path_rtt(lab, p) for p in paths}
            eq_ms = max(0.0, (rtts[paths[1]][0] - rtts[paths[0]][0]) / 2)
            log(f"topology {name}: RTT min/avg {rtts}; equalising delay {eq_ms:.1f} ms per end on path 1")
            t.notes.append("unloaded ICMP RTT between the underlay addresses (min/avg of 10): "
                           + ", ".join(f"path {p} {a:.1f}/{b:.1f} ms" for p, (a, b) in rtts.items())
                           + f"; equalising delay = half the min-RTT difference = {eq_ms:.1f} ms on each end")
            mptcp_setup(lab)
            chosen = [v for v in variants_for(topo) if (not final or v.final)
                      and (not only or v.single is not None or any(o in v.label for o in only))]
            results: dict[str, list[Run]] = {v.label: [] for v in chosen}
            pings: dict[str, tuple[float, float, float]] = {}
            notes: dict[str, list[str]] = {}
            # rounds: every variant once per round, so a burst of host load hits all of them alike
            for rnd in range(repeat):
                for v in chosen:
                    log(f"{name} round {rnd + 1}: {v.label}")
                    r, steps, ping = measure_variant(lab, v, paths, eq_ms, seconds)
                    results[v.label].append(r)
                    notes[v.label] = steps
                    if ping is not None:
                        pings[v.label] = ping
            singles = {v.single: statistics.median(x.mbit for x in results[v.label])
                       for v in chosen if v.single is not None}
            total = sum(singles.values()) if len(singles) == len(paths) else float("nan")
            for v in chosen:
                runs = results[v.label]
                rates = [r.mbit for r in runs]
                med = statistics.median(rates)
                rt = [r.retrans for r in runs if r.retrans is not None]
                split = sorted(runs, key=lambda r: r.mbit)[len(runs) // 2].split
                ping = pings.get(v.label)
                t.rows.append([
                    v.label, ", ".join(fmt(x) for x in rates), fmt(med),
                    "-" if v.single is not None else fmt(med / total, 2),
                    fmt(statistics.median(rt), 0) if rt else "-",
                    " / ".join(f"{100 * split.get(p, 0):.0f}%" for p in paths) if split else "-",
                    f"{100 * max(r.busy for r in runs):.0f}%",
                    "-" if ping is None else "/".join(fmt(x) for x in ping),
                    "; ".join(notes[v.label]) or "-"])
        t.notes.append(f"target: >= {topo.target:.2f} x the sum of the two single-path rates, and >= MPTCP")
        t.notes.append("weights N:M = N GRE-keyed gretaps over path 1, M over path 2, all in one balance-rr "
                       "bond (balance-rr sends each slave the same number of packets)")
        t.notes.append("'bytes on path 1 / 2': what r2 sent into wg1 / wg2 during the median run "
                       "(ACKs of the reverse direction are not in it)")
        tables.append(t)
    return tables


# ----------------------------------------------------------------------------- equal paths
def equal_variants() -> list[Variant]:
    gso_tso = ["gso", "off", "tso", "off", "tx-tcp6-segmentation", "off"]
    return [
        Variant("kernel offloads (grebond's default, auto)"),
        Variant("offloads: off (GSO/TSO/TSO6/GRO off on bond and tunnels)", offloads="off"),
        Variant("GSO+TSO+TSO6 off on the bond only, GRO kept", features={"bond": gso_tso}),
        Variant("GSO+TSO+TSO6 off on bond and tunnels, GRO kept", features={"bond": gso_tso, "tunnels": gso_tso}),
        Variant("GRO off on bond and tunnels only", features={"bond": ["gro", "off"], "tunnels": ["gro", "off"]}),
    ]


def part_equal(seconds: int, repeat: int, rate: float, only: list[str] | None) -> list[Table]:
    t = Table(f"Equal paths over WireGuard, each {rate:g} Mbit/s 1 ms: offload alternatives, one TCP flow, "
              f"iperf3 {seconds} s, median of {repeat}",
              ["configuration", "paths", "runs Mbit/s", "median", "x single", "retrans (median)", "guest CPU busy"])
    with Lab(paths=3, wireguard=True) as lab:
        for p in (1, 2, 3):
            lab.shape_path(p, rate_mbit=rate, delay_ms=1.0)
        single = Variant("one gretap alone", single=1)
        state, _ = apply_variant(lab, single, (1,), 0.0)
        try:
            runs = [iperf_run(lab, SINGLE_V4["r1"], seconds, (1,)) for _ in range(repeat)]
        finally:
            teardown(lab, state)
        base = statistics.median(r.mbit for r in runs)
        log(f"equal: single {[round(r.mbit, 1) for r in runs]}")
        t.rows.append(["one gretap alone", "1", ", ".join(fmt(r.mbit) for r in runs), fmt(base), "1.00", "-",
                       f"{100 * max(r.busy for r in runs):.0f}%"])
        for k in (2, 3):
            paths = tuple(range(1, k + 1))
            for v in equal_variants():
                if only and not any(o in v.label for o in only):
                    continue
                v.weights = (1,) * k  # type: ignore[assignment]
                log(f"equal: {k} paths, {v.label}")
                state, _ = apply_variant(lab, v, paths, 0.0)
                try:
                    runs = [iperf_run(lab, BOND_V4["r1"], seconds, paths) for _ in range(repeat)]
                finally:
                    teardown(lab, state)
                rates = [r.mbit for r in runs]
                rt = [r.retrans for r in runs if r.retrans is not None]
                log(f"  runs {[round(x, 1) for x in rates]} retrans {rt} load {[r.load for r in runs]} "
                    f"busy {[round(r.busy, 2) for r in runs]}")
                med = statistics.median(rates)
                t.rows.append([v.label, str(k), ", ".join(fmt(x) for x in rates), fmt(med), fmt(med / base, 2),
                               fmt(statistics.median(rt), 0) if rt else "-", f"{100 * max(r.busy for r in runs):.0f}%"])
    t.notes.append("targets: >= 1.95x with 2 paths, >= 2.9x with 3")
    return [t]


# ----------------------------------------------------------------------------- failover
def part_failover(topos: list[str], load_seconds: int) -> list[Table]:
    """dataplane.py's failover measurement on the recommended configuration of each topology."""
    t = Table("Failover of the recommended configuration: ping 100/s across the bond, path 1 (the fast one) "
              "silently broken (netem loss 100%, both ends) at t=5 s for 5 s; ARP 100 ms, missed-max 2",
              ["topology / configuration", "lost in outage", "loss window s", "slave marked down after s (r2 / r1)",
               "recovery after heal s", "lost after heal", f"false downs, {load_seconds} s saturated"])
    for name in topos:
        topo = TOPOLOGIES[name]
        paths = tuple(sorted(topo.rate))
        w = (2, 1) if topo.rate[1] > topo.rate[2] else (1, 1)
        v = Variant(f"{name}: balance-rr {w[0]}:{w[1]}, equalized, offloads off", weights=w, equalize=True,
                    offloads="off")
        with Lab(paths=2, wireguard=True) as lab:
            for p in paths:
                lab.shape_path(p, rate_mbit=topo.rate[p], delay_ms=topo.delay[p])
            rtts = {p: path_rtt(lab, p) for p in paths}
            eq_ms = max(0.0, (rtts[paths[1]][0] - rtts[paths[0]][0]) / 2)
            tunnels = v.tunnels(paths)

            def extra(_ends: Any, tunnels: list[tuple[str, int]] = tunnels, fast: int = paths[0],
                      eq_ms: float = eq_ms) -> None:
                for node in ("r2", "r1"):
                    for tn, p in tunnels:
                        if p == fast and eq_ms > 0:
                            lab.run(node, "tc", "qdisc", "replace", "dev", tn, "root", "netem", "delay",
                                    f"{eq_ms:.1f}ms", "limit", "10000")

            r = dp.failover_run(lab, v.label, model_yaml(lab, tunnels, v), load_seconds=load_seconds,
                                after_build=extra)
        pct = 100 * r.lost_outage / r.outage_pkts if r.outage_pkts else 0
        det = " / ".join(fmt(x, 2) if x is not None else "never" for x in r.detect_s.values())
        t.rows.append([f"{v.label} (delay {eq_ms:.1f} ms)", f"{r.lost_outage}/{r.outage_pkts} ({pct:.0f}%)",
                       "whole outage" if r.window_s is None else fmt(r.window_s, 2), det,
                       fmt(r.recover_s, 2) if r.recover_s is not None else "not seen", str(r.lost_after_heal),
                       "-" if r.flaps_load is None else str(r.flaps_load)])
    t.notes.append("same measurement as dataplane.py's failover part; slave detection times are those of "
                   "path 1's first tunnel")
    return [t]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", action="append", choices=("unequal", "equal", "failover"))
    ap.add_argument("--topology", action="append", choices=sorted(TOPOLOGIES))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rate", type=float, default=20.0, help="equal part: per-path rate (default 20)")
    ap.add_argument("--load-seconds", type=int, default=6)
    ap.add_argument("--final", action="store_true", help="unequal part: only the short list (8 per topology)")
    ap.add_argument("--scale", type=float, default=1.0, help="unequal part: multiply every path rate by this")
    ap.add_argument("--only", action="append", help="only variants whose label contains this (singles always run)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    topos = args.topology or sorted(TOPOLOGIES)
    parts = args.part or ["unequal", "failover"]
    print(f"## grebond unequal-path benchmark\n\n{dp.machine()}\n", flush=True)
    tables = dp.run_parts(parts, {
        "unequal": lambda: part_unequal(topos, args.seconds, args.repeat, args.only, args.scale, args.final),
        "equal": lambda: part_equal(args.seconds, args.repeat, args.rate, args.only),
        "failover": lambda: part_failover(topos, args.load_seconds)})
    if args.json:
        args.json.write_text(json.dumps([t.__dict__ for t in tables], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
