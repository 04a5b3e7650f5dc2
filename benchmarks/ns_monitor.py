#!/usr/bin/env python3
"""IPv6-only links (issue 17): the bonding NS monitor, measured on the real kernel in the lab guest.

Why by hand: grebond's model does not yet express an IPv6-only bond, and the facts are needed
to design it. Each bond is built with ``ip`` (iproute2 >= 5.18 sets ns_ip6_target) the way the
issue describes it: balance-rr over ip6gretap (encaplimit none) over two WireGuard paths with
MTU 1420 (WireGuard over IPv6 on a 1500-byte link), bond MTU 1362, addresses fd67::1/64 and
fd67::2/64, arp_interval 100, arp_missed_max 2, ns_ip6_target = the peer's bond address.
The failover figures use benchmarks/dataplane.py's measurement unchanged (ping at 100/s with
timestamps, path 1 broken with netem loss 100% on both ends at once, slave states polled from
sysfs), so they compare with its IPv4 table.

Run it from the host (boots the lab VM under the VM lock's caller's responsibility):
``flock /tmp/grebond-vm.lock .venv/bin/python benchmarks/ns_monitor.py --lab [--only NAME]``;
inside the guest it runs as root: ``benchmarks/ns_monitor.py [--only NAME] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataplane as dp

from lab.topology import SEED_V6, Lab, wait_for

ROOT = Path(__file__).resolve().parent.parent

BOND = "bond0"
MTU = 1362                      # 1500 - 80 (WireGuard over IPv6) - 58 (ip6gretap, encaplimit none)
WG_MTU = 1420
V6 = {"r2": "fd67::1", "r1": "fd67::2"}
V4 = {"r2": "10.67.0.1", "r1": "10.67.0.2"}
LL = {"r2": "fe80::1", "r1": "fe80::2"}               # added by hand, nodad
MAC = {"r2": "02:67:00:00:00:01", "r1": "02:67:00:00:00:02"}


def carrier(lab: Lab, node: str) -> str:
    return str(lab.run(node, "cat", f"/sys/class/net/{BOND}/carrier", check=False).stdout.strip())


def eui64_ll(mac: str) -> str:
    """The link-local address the kernel derives from ``mac`` (addrgenmode eui64, the default)."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(IPv6Address(b"\xfe\x80" + b"\0" * 6 + iid))


@dataclass
class Setup:
    """One way of building the bond on both ends."""

    name: str
    validate: str = "none"
    dad: tuple[str, ...] = ()       # the nodes whose bond addresses get DAD (the others: 'nodad')
    targets: str = "ula"            # ula | ll-manual | ll-auto | mixed | arp (IPv4 bond addresses only)
    interval: int = 100
    missed_max: int = 2
    dst: str = field(default="")    # what the failover ping targets (default: r1's ULA)

    def ns_target(self, peer: str) -> str:
        if self.targets == "ll-manual":
            return LL[peer]
        if self.targets == "ll-auto":
            return eui64_ll(MAC[peer])
        return V6[peer]


def peer_of(node: str) -> str:
    return "r1" if node == "r2" else "r2"


def build(lab: Lab, s: Setup) -> None:
    for node in ("r2", "r1"):
        peer = peer_of(node)
        lines = []
        for p in lab.paths:
            lines.append(f"link add gre{p.index} mtu {MTU} type ip6gretap local {p.addr[node]} "
                         f"remote {p.addr[peer]} ttl 255 encaplimit none")
        bond = (f"link add {BOND} address {MAC[node]} mtu {MTU} type bond mode balance-rr "
                f"arp_interval {s.interval} arp_missed_max {s.missed_max} arp_validate {s.validate}")
        if s.targets != "arp":
            bond += f" ns_ip6_target {s.ns_target(peer)}"
        if s.targets in ("mixed", "arp"):
            bond += f" arp_ip_target {V4[peer]}"
        lines.append(bond)
        if s.targets == "ll-manual":
            lines.append(f"link set {BOND} addrgenmode none")
        for p in lab.paths:
            lines += [f"link set gre{p.index} down", f"link set gre{p.index} master {BOND}"]
        nodad = "" if node in s.dad else " nodad"
        if s.targets != "arp":
            lines.append(f"addr add {V6[node]}/64 dev {BOND}{nodad}")
        if s.targets == "ll-manual":
            lines.append(f"addr add {LL[node]}/64 dev {BOND}{nodad}")
        if s.targets in ("mixed", "arp"):
            lines.append(f"addr add {V4[node]}/24 dev {BOND}")
        lines += [f"link set gre{p.index} up" for p in lab.paths] + [f"link set {BOND} up"]
        lab.batch(node, lines)


def teardown(lab: Lab) -> None:
    for node in ("r2", "r1"):
        lab.batch(node, [f"link del {BOND}"] + [f"link del gre{p.index}" for p in lab.paths],
                  force=True, check=False)


def slaves_up(lab: Lab) -> bool:
    return all(dp.slave_state(lab, n, f"gre{p.index}") == "up" for n in ("r2", "r1") for p in lab.paths)


def wait_working(lab: Lab, dst: str, timeout: float = 30) -> float | None:
    """Seconds from now until a ping to ``dst`` is answered and every slave on both ends is up."""
    t0 = time.monotonic()
    ok = wait_for(lambda: lab.ping("r2", dst, count=1, wait=1).ok and slaves_up(lab), timeout=timeout,
                  interval=0.2)
    return time.monotonic() - t0 if ok else None


def addr_flags(lab: Lab, node: str, addr: str) -> str:
    cp = lab.run(node, "ip", "-6", "-j", "addr", "show", "dev", BOND, check=False)
    try:
        for info in json.loads(cp.stdout or "[]")[0].get("addr_info", []):
            if info.get("local") == addr:
                flags = [k for k in ("tentative", "dadfailed", "optimistic", "nodad") if info.get(k)]
                return ",".join(flags) or "ok"
    except (ValueError, IndexError):
        pass
    return "absent"


def iproute2_view(lab: Lab, node: str) -> dict[str, Any]:
    """What `ip -d -j link show bond0` (iproute2 of this host) reports for the NS monitor."""
    data = json.loads(lab.run(node, "ip", "-d", "-j", "link", "show", BOND).stdout)[0]
    info = data["linkinfo"]["info_data"]
    return {k: info.get(k) for k in ("arp_interval", "arp_validate", "arp_missed_max", "arp_ip_target",
                                     "ns_ip6_target")}


def failover(lab: Lab, s: Setup, *, break_at: float = 5.0, outage: float = 5.0, after: float = 4.0,
             rate: int = 100) -> tuple[dp.FailoverResult, float, float]:
    """benchmarks/dataplane.py's failover_run, for a bond built here and an IPv6 ping; also the
    loss burst (first to last packet lost in the outage) and how long the tc break took.

    Why the burst: dataplane.py's window starts when tc starts, and tc itself took 0.2-2.4 s in
    TCG here (RTNL, the qdisc swap waiting for RCU), so the window includes tc's own latency."""
    dst = s.dst or V6["r1"]
    slaves = [f"gre{p.index}" for p in lab.paths]
    total = break_at + outage + after
    count = int(total * rate)
    pollers = {n: subprocess.Popen(lab.router(n).wrap([sys.executable, "-c", dp.POLLER, str(total + 3), *slaves]),
                                   stdout=subprocess.PIPE, text=True) for n in ("r2", "r1")}
    time.sleep(1.5)
    ping = subprocess.Popen(lab.router("r2").wrap(["ping", "-D", "-n", "-i", str(1 / rate), "-W", "1",
                                                   "-c", str(count), dst]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    time.sleep(break_at)
    t_break = dp.set_broken(lab, 1, True)
    time.sleep(max(0.0, t_break + outage - time.time()))
    t_heal = dp.set_broken(lab, 1, False)
    out, _ = ping.communicate(timeout=total + 60)
    polls = {n: p.communicate(timeout=total + 30)[0] for n, p in pollers.items()}
    replies = {int(m.group(2)): float(m.group(1)) - float(m.group(3)) / 1000 for m in dp._PING_LINE.finditer(out)}
    sent_m = re.search(r"(\d+) packets transmitted", out)
    sent = int(sent_m.group(1)) if sent_m else count
    times = dp._send_times(replies, sent, t0, 1 / rate)
    lost = [q for q in range(1, sent + 1) if q not in replies]
    in_outage = [q for q in lost if t_break - 0.05 <= times[q] < t_heal]
    outage_pkts = len([q for q in range(1, sent + 1) if t_break - 0.05 <= times[q] < t_heal])
    after_heal = [q for q in lost if times[q] >= t_heal]
    before = [q for q in lost if times[q] < t_break - 0.05]
    window = (max(times[q] for q in in_outage) - t_break + 1 / rate) if in_outage else 0.0
    burst = (max(times[q] for q in in_outage) - min(times[q] for q in in_outage) + 1 / rate) if in_outage else 0.0
    detect: dict[str, float | None] = {}
    recover: list[float | None] = []
    for n, text_ in polls.items():
        ev = [(float(a), p, st) for a, p, st in (ln.split() for ln in text_.splitlines() if len(ln.split()) == 3)]
        downs = [t for t, p, st in ev if p == slaves[0] and st != "up" and t >= t_break]
        detect[n] = (min(downs) - t_break) if downs and min(downs) < t_heal else None
        ups = [t for t, p, st in ev if p == slaves[0] and st == "up" and t >= t_heal]
        recover.append((min(ups) - t_heal) if ups else (0.0 if detect[n] is None else None))
    rec = None if any(r is None for r in recover) else max(r for r in recover if r is not None)
    never = window >= outage - 0.2 and detect.get("r2") is None
    res = dp.FailoverResult(s.name, sent, len(in_outage), outage_pkts, None if never else window, detect, rec,
                            len(after_heal), 0)
    dp.log(f"  {s.name}: lost {res.lost_outage}/{res.outage_pkts} in outage, window {res.window_s}, "
           f"detect {detect}, recover {rec}, lost after heal {res.lost_after_heal}, lost before break {len(before)}")
    dp.log(f"  lost at (s after the break): {[round(times[q] - t_break, 2) for q in in_outage]}; "
           f"tc took {dp.tc_seconds[-2:]}; slave events: {polls}")
    return res, burst, dp.tc_seconds[-2]


# ----------------------------------------------------------------------------------- parts

def part_basics(lab: Lab) -> dp.Table:
    s = Setup("basics")
    t = dp.Table("IPv6-only bond: ping6, MTU, what iproute2 shows", ["check", "result"])
    build(lab, s)
    try:
        up = wait_working(lab, V6["r1"])
        t.rows.append(["first ping6 answered and all slaves up after", "never" if up is None else f"{up:.1f} s"])
        for node in ("r2", "r1"):
            t.rows.append([f"`ip -d -j link show {BOND}` on {node}", f"`{json.dumps(iproute2_view(lab, node))}`"])
        biggest = None
        for size in range(MTU - 48 - 2, MTU - 48 + 3):
            if lab.ping("r2", V6["r1"], count=2, interval=0.2, size=size, df=True).ok:
                biggest = size
        t.rows.append(["largest `ping -6 -M do -s N` answered (tried 1312-1316)", str(biggest)])
        big = lab.ping("r2", V6["r1"], count=1, size=MTU - 48 + 1, df=True)
        t.rows.append([f"`ping -M do -s {MTU - 47}`", " ".join(big.output.split("\n")[1:2]).strip()[:120] or "lost"])
    finally:
        teardown(lab)
    return t


def part_dad(lab: Lab, dad: tuple[str, ...], sample_s: float = 12.0) -> dp.Table:
    """DAD on the bond addresses of ``dad``: address state, slave state and ping over time."""
    t = dp.Table(f"DAD on (bond addresses added without nodad) on {' and '.join(dad)}",
                 ["t s", "r2 fd67::1", "r1 fd67::2", "slaves up", "ping6"])
    s = Setup("dad", dad=dad)
    t0 = time.monotonic()
    build(lab, s)
    try:
        last: tuple[str, ...] = ()
        while time.monotonic() - t0 < sample_s:
            row = (addr_flags(lab, "r2", V6["r2"]), addr_flags(lab, "r1", V6["r1"]), str(slaves_up(lab)),
                   "ok" if lab.ping("r2", V6["r1"], count=1, wait=0.5).ok else "lost")
            if row != last:
                t.rows.append([f"{time.monotonic() - t0:.1f}", *row])
                last = row
            time.sleep(0.3)
        dmesg = subprocess.run(["dmesg"], check=False, capture_output=True, text=True).stdout
        dups = [ln for ln in dmesg.splitlines() if "duplicate address" in ln.lower() or "dad" in ln.lower()]
        t.notes.append(f"dmesg lines about DAD: {dups[-4:] if dups else 'none'}")
    finally:
        teardown(lab)
    return t


def part_dad_restart(lab: Lab, outage_s: float = 4.0, sample_s: float = 15.0) -> dp.Table:
    """DAD-enabled addresses that passed DAD (under miimon, before the NS monitor), then every path
    broken: the bond loses carrier; when the paths heal, does DAD run again on both ends at once?

    Why: NetworkManager (1.42 and 1.52) has no switch for IPv6 DAD, so its bond addresses are
    DAD-enabled; a total outage (a peer rebooting, both paths down) is then the case to know.
    """
    t = dp.Table("DAD-enabled addresses after a total outage (all paths broken for 4 s, then healed)",
                 ["t s after heal", "r2 fd67::1", "r1 fd67::2", "slaves up", "ping6"])
    for node in ("r2", "r1"):
        peer = peer_of(node)
        lines = [f"link add gre{p.index} mtu {MTU} type ip6gretap local {p.addr[node]} remote {p.addr[peer]} "
                 "ttl 255 encaplimit none" for p in lab.paths]
        lines.append(f"link add {BOND} address {MAC[node]} mtu {MTU} type bond mode balance-rr miimon 100")
        lines += [f"link set gre{p.index} {a}" for p in lab.paths for a in ("down", f"master {BOND}")]
        lines += [f"addr add {V6[node]}/64 dev {BOND}"] + [f"link set gre{p.index} up" for p in lab.paths]
        lines.append(f"link set {BOND} up")
        lab.batch(node, lines)
    try:
        passed = wait_for(lambda: all(addr_flags(lab, n, V6[n]) == "ok" for n in ("r2", "r1")), timeout=15)
        t.notes.append(f"DAD under miimon passed on both ends: {passed}")
        for node in ("r2", "r1"):
            lab.batch(node, [(f"link set {BOND} type bond arp_interval 100 ns_ip6_target {V6[peer_of(node)]} "
                             "arp_missed_max 2")])
        t.notes.append(f"NS monitor on; working after {wait_working(lab, V6['r1'])} s")
        for p in lab.paths:
            dp.set_broken(lab, p.index, True)
        time.sleep(outage_s)
        t.notes.append("during the outage: " + ", ".join(f"{n} {addr_flags(lab, n, V6[n])}" for n in ("r2", "r1"))
                       + f"; bond carrier {[carrier(lab, n) for n in ('r2', 'r1')]}")
        t0 = time.monotonic()
        for p in lab.paths:
            dp.set_broken(lab, p.index, False)
        last: tuple[str, ...] = ()
        while time.monotonic() - t0 < sample_s:
            row = (addr_flags(lab, "r2", V6["r2"]), addr_flags(lab, "r1", V6["r1"]), str(slaves_up(lab)),
                   "ok" if lab.ping("r2", V6["r1"], count=1, wait=0.5).ok else "lost")
            if row != last:
                t.rows.append([f"{time.monotonic() - t0:.1f}", *row])
                last = row
            time.sleep(0.3)
    finally:
        teardown(lab)
    return t


SETUPS = [
    Setup("NS, validate none"),
    Setup("ARP only (IPv4 bond addresses, ping IPv4), the same tunnels: the baseline", targets="arp", dst=V4["r1"]),
    Setup("NS, validate filter", validate="filter"),
    Setup("NS, validate all", validate="all"),
    Setup("NS, link-local target (fe80::1/2 by hand, nodad, addrgenmode none)", targets="ll-manual"),
    Setup("NS, link-local target (the kernel's EUI-64 LL, with DAD)", targets="ll-auto"),
    Setup("dual stack: ARP + NS targets, validate none (ping6)", targets="mixed"),
    Setup("dual stack: ARP + NS targets, validate filter (ping6)", targets="mixed", validate="filter"),
    Setup("dual stack: ARP + NS targets, validate none (ping IPv4)", targets="mixed", dst=V4["r1"]),
]


def part_failover(lab: Lab, only: list[str] | None, repeat: int) -> dp.Table:
    t = dp.Table("Failover, IPv6-only bond: balance-rr, 2 ip6gretap over WireGuard paths, ping6 100/s, path 1 "
                 "silently broken (netem loss 100%, both ends) at t=5 s for 5 s",
                 ["bond monitoring", "came up after s", "lost in outage", "loss window s", "loss burst s",
                  "tc break took s", "slave marked down after s (r2 / r1)", "recovery after heal s",
                  "lost after heal"])
    for s in SETUPS:
        if only and not any(o in s.name for o in only):
            continue
        for _ in range(repeat):
            dp.log(f"failover: {s.name}")
            build(lab, s)
            try:
                up = wait_working(lab, s.dst or V6["r1"])
                if up is None:
                    state = {n: lab.run(n, "cat", f"/proc/net/bonding/{BOND}", check=False).stdout for n in ("r2", "r1")}
                    dp.log(f"  never came up: {state}")
                    t.rows.append([s.name, "never (30 s)", "-", "-", "-", "-", "-", "-", "-"])
                    continue
                r, burst, tc_s = failover(lab, s)
            finally:
                teardown(lab)
            pct = 100 * r.lost_outage / r.outage_pkts if r.outage_pkts else 0
            det = " / ".join(dp.fmt(v, 2) if v is not None else "never" for v in r.detect_s.values())
            t.rows.append([s.name, f"{up:.1f}", f"{r.lost_outage}/{r.outage_pkts} ({pct:.0f}%)",
                           "whole outage" if r.window_s is None else dp.fmt(r.window_s, 2), dp.fmt(burst, 2),
                           dp.fmt(tc_s, 2), det,
                           dp.fmt(r.recover_s, 2) if r.recover_s is not None else "not seen",
                           str(r.lost_after_heal)])
    t.notes += [("ns_ip6_target = the peer's bond address (fd67::2 / fd67::1) unless the row says link-local; "
                 "arp_interval 100, arp_missed_max 2; bond addresses nodad unless the row says DAD"),
                "loss window: from the break to the last lost packet sent during the outage (dataplane.py)",
                "loss burst: from the first to the last packet lost in the outage (excludes tc's own latency)"]
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", action="store_true", help="boot the lab VM and run this script in it")
    ap.add_argument("--part", action="append", choices=("basics", "dad", "failover"))
    ap.add_argument("--only", action="append", help="failover: only setups whose name contains this")
    ap.add_argument("--repeat", type=int, default=1, help="failover runs per setup (default 1)")
    args, _rest = ap.parse_known_args(argv)
    if args.lab:
        return run_in_lab([a for a in (argv if argv is not None else sys.argv[1:]) if a != "--lab"])
    if os.geteuid() != 0:
        print("ns_monitor.py runs as root inside the lab guest; start it with --lab", file=sys.stderr)
        return 2
    parts = args.part or ["basics", "dad", "failover"]
    print(f"## NS monitor (issue 17)\n\n{dp.machine()}; iproute2 "
          f"{subprocess.run(['ip', '-V'], check=False, capture_output=True, text=True).stdout.strip()}\n", flush=True)
    with Lab(addresses=SEED_V6[:2], wg_mtu=WG_MTU) as lab:
        for part in parts:
            t0 = time.monotonic()
            try:
                if part == "basics":
                    tables = [part_basics(lab)]
                elif part == "dad":
                    tables = [part_dad(lab, ("r2", "r1")), part_dad(lab, ("r2",)), part_dad_restart(lab)]
                else:
                    tables = [part_failover(lab, args.only, args.repeat)]
            except Exception as exc:
                dp.log(f"part {part} failed: {exc!r}")
                teardown(lab)
                tables = [dp.Table(f"{part}: FAILED", ["error"], [[repr(exc)[:400]]])]
            for tab in tables:
                tab.notes.append(f"part '{part}' took {time.monotonic() - t0:.0f} s")
                print(tab.markdown(), flush=True)
    return 0


def run_in_lab(args: list[str]) -> int:
    from lab.vm import LabUnavailable, guest_path, guest_script, run_in_guest

    out = ROOT / ".lab" / f"ns-monitor-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    body = (f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} benchmarks/ns_monitor.py "
            f"{shlex.join(args)} > {out}/tables.md 2> {out}/progress.log")
    env = {"HOME": "/tmp/grebond-bench-home", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8", "GREBOND_LAB_GUEST": "1",
           "PATH": guest_path([os.path.dirname(sys.executable)])}
    print(f"booting the lab VM; results in {out}", file=sys.stderr)
    try:
        run = run_in_guest(guest_script(out, body, env), out, timeout=float(os.environ.get("BENCH_TIMEOUT", "1500")),
                           cwd=ROOT)
    except LabUnavailable as exc:
        print(f"lab unavailable: {exc}", file=sys.stderr)
        return 3
    if (out / "tables.md").exists():
        sys.stdout.write((out / "tables.md").read_text())
    rc = (out / "rc").read_text().strip() if (out / "rc").exists() else None
    print(f"VM run {run.total_seconds:.0f} s (boot {run.boot_seconds or 0:.0f} s), guest exit {rc}; "
          f"log {out}/progress.log", file=sys.stderr)
    return 0 if rc == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
