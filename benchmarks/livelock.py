"""Try to reproduce the guest livelock seen once with ``offloads: off`` (issue 20), on purpose.

Runs INSIDE the lab guest as root (``benchmarks/run-in-lab --bench livelock``). The one sighting
(2026-11-26): ksoftirqd stuck > 700 s in netif_receive_skb_list_internal under WireGuard's GRO
poll, right after systemd-networkd recreated a tunnel during grebond's rollback
(tests/live/test_networkd.py::test_failed_verification_rolls_back, offloads off). This script
repeats what could trigger it, many times, under iperf3 load in both directions, and counts:

- ``rollback``: that test's scenario (networkd in the root namespace r2, r1 built by grebond's ip
  script): apply a model whose gre2 remote is unroutable, verification fails, grebond rolls back and
  networkd recreates gre2; udev's .link file turns the offloads off once the device exists.
- ``recreate``: the same recreation by hand (ip link del/add, enslave, up, then ethtool -K off on
  the live, loaded device, as udev does it after the device appears), much faster per cycle.
- ``toggle``: only flip GRO/GSO on a loaded tunnel and the bond, over and over.

A cycle that does not end, or after which the bond passes no ping for 60 s, is a hang: the script
then asks the kernel for every CPU's backtrace (sysrq l) into the console log and stops.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lab.daemons import NETWORKD_DIR, Networkd  # noqa: E402
from lab.topology import Lab, wait_for  # noqa: E402
from live.helpers import build_peer, grebond, model, write_config  # noqa: E402

BOND_R1 = "10.67.0.2"
BOND_R2 = "10.67.0.1"
OFF = ["gso", "off", "tso", "off", "tx-tcp6-segmentation", "off", "gro", "off"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Load:
    """Two long iperf3 flows over the bond, r2 -> r1 and r1 -> r2, restarted whenever one ends."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.procs: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        for port in (5301, 5302):
            lab.spawn("r1", "iperf3", "-s", "-p", port)
        time.sleep(1.5)
        self.clients: dict[int, subprocess.Popen[bytes] | None] = {5301: None, 5302: None}
        self.check()

    def check(self) -> None:
        for port, proc in self.clients.items():
            if proc is None or proc.poll() is not None:
                if proc is not None:
                    self.restarts += 1
                reverse = ["-R"] if port == 5302 else []
                self.clients[port] = self.lab.spawn("r2", "iperf3", "-c", BOND_R1, "-p", port, "-t", "3600",
                                                    *reverse)

    def stop(self) -> None:
        for proc in self.clients.values():
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def bond_alive(lab: Lab, timeout: float = 60) -> bool:
    return wait_for(lambda: lab.ping("r2", BOND_R1, count=1, wait=1).ok, timeout=timeout, interval=0.5)


def hang(lab: Lab, what: str) -> None:
    log(f"HANG: {what}; dumping backtraces (sysrq l, t) to the console")
    Path("/proc/sys/kernel/sysrq").write_text("1\n")
    for key in ("l", "w"):
        Path("/proc/sysrq-trigger").write_text(key + "\n")
        time.sleep(2)
    top = subprocess.run(["top", "-b", "-n", "1"], capture_output=True, text=True).stdout
    log("top:\n" + "\n".join(top.splitlines()[:20]))


def ksoftirqd_ticks() -> int:
    """utime+stime of every ksoftirqd: softirq work pushed out of interrupt context."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue
        if fields[1].startswith("(ksoftirqd"):
            total += int(fields[13]) + int(fields[14])
    return total


def run_rollback(lab: Lab, tmp: Path, budget: float, max_cycles: int) -> tuple[int, int, str]:
    good = write_config(tmp, model(extra="offloads: off"), "good.yaml")
    bad = write_config(tmp, model(extra="offloads: off", tunnels={"gre1": ("10.65.0.2", "10.65.0.6"),
                                                                  "gre2": ("10.65.0.14", "10.99.0.10")}),
                       "bad.yaml")
    build_peer(lab, good)
    done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", good, "--node", "r2")
    if done.returncode != 0 or not bond_alive(lab):
        return 0, 0, f"setup failed: {done.stdout}{done.stderr}"
    load = Load(lab)
    deadline, cycles, odd = time.monotonic() + budget, 0, 0
    try:
        while time.monotonic() < deadline and cycles < max_cycles:
            t0 = time.monotonic()
            k0 = ksoftirqd_ticks()
            done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", bad, "--node", "r2", "--timeout", "5")
            cycles += 1
            alive = bond_alive(lab)
            dt = time.monotonic() - t0
            log(f"rollback cycle {cycles}: apply rc {done.returncode} in {dt:.1f} s, bond alive {alive}, "
                f"ksoftirqd +{ksoftirqd_ticks() - k0} ticks, iperf3 restarts {load.restarts}")
            if done.returncode != 1:
                odd += 1
                log(f"  unexpected: {done.stdout[-400:]} {done.stderr[-400:]}")
            if not alive:
                hang(lab, f"bond dead 60 s after rollback cycle {cycles}")
                return cycles, odd, "hang"
            load.check()
    finally:
        load.stop()
    return cycles, odd, "ok"


def recreate_once(lab: Lab, end: str) -> None:
    """gre2 of ``end`` deleted and made again as grebond's ip script does, offloads set after up."""
    local, remote = ("10.65.0.14", "10.65.0.10") if end == "r2" else ("10.65.0.10", "10.65.0.14")
    lab.batch(end, ["link del gre2",
                    f"link add gre2 mtu 1402 type gretap local {local} remote {remote} ttl 255",
                    "link set gre2 master bond0", "link set gre2 up"])
    lab.run(end, "ethtool", "-K", "gre2", *OFF)


def run_recreate(lab: Lab, budget: float, max_cycles: int, toggle: bool) -> tuple[int, str]:
    load = Load(lab)
    deadline, cycles = time.monotonic() + budget, 0
    try:
        while time.monotonic() < deadline and cycles < max_cycles:
            t0 = time.monotonic()
            if toggle:
                state = "on" if cycles % 2 == 0 else "off"
                for end in ("r2", "r1"):
                    for dev in ("gre2", "bond0"):
                        lab.run(end, "ethtool", "-K", dev, "gro", state, "gso", state)
            else:
                recreate_once(lab, "r2" if cycles % 2 == 0 else "r1")
            cycles += 1
            alive = bond_alive(lab)
            if cycles % 10 == 0 or not alive:
                log(f"{'toggle' if toggle else 'recreate'} cycle {cycles}: {time.monotonic() - t0:.1f} s, "
                    f"bond alive {alive}, iperf3 restarts {load.restarts}")
            if not alive:
                hang(lab, f"bond dead 60 s after {'toggle' if toggle else 'recreate'} cycle {cycles}")
                return cycles, "hang"
            load.check()
    finally:
        load.stop()
    return cycles, "ok"


def networkd_netem(lab: Lab, tmp: Path) -> str:
    """Does networkd 252 put a [NetworkEmulator] qdisc on a bonded gretap (what equalisation needs)?"""
    good = write_config(tmp, model(), "plain.yaml")
    build_peer(lab, good)
    done = grebond(lab, "r2", "apply", "--backend", "networkd", "-c", good, "--node", "r2", "--write-only")
    if done.returncode != 0:
        return f"write-only failed: {done.stderr}"
    net = NETWORKD_DIR / "40-grebond-gre1.network"
    net.write_text(net.read_text() + "\n[NetworkEmulator]\nDelaySec=9.5ms\nPacketLimit=10000\n")
    nd = Networkd(tmp / "networkd-netem.log")
    nd.start()
    try:
        alive = bond_alive(lab, 60)
        time.sleep(2)
        qd = lab.run("r2", "tc", "qdisc", "show", "dev", "gre1").stdout.strip()
        master = lab.run("r2", "ip", "-o", "link", "show", "gre1").stdout
        ping = lab.run("r2", "ping", "-c", "5", "-i", "0.2", "-q", BOND_R1, check=False).stdout.strip().splitlines()[-1:]
    finally:
        nd.close()
        for p in NETWORKD_DIR.glob("40-grebond-*"):
            p.unlink()
    return (f"bond alive {alive}; gre1 qdisc: {qd!r}; enslaved {'master bond0' in master}; "
            f"ping across the bond: {ping}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", action="append", choices=("netem-networkd", "rollback", "recreate", "toggle"))
    ap.add_argument("--budget", type=float, default=300, help="seconds per mode (default 300)")
    ap.add_argument("--budget-recreate", type=float, help="seconds for recreate/toggle (default: --budget)")
    ap.add_argument("--max-cycles", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path("/tmp/grebond-livelock")
    tmp.mkdir(exist_ok=True)
    results = []
    for mode in args.mode or ["rollback", "recreate", "toggle"]:
        log(f"mode {mode}, budget {args.budget:.0f} s")
        if mode == "netem-networkd":
            with Lab(paths=2, wireguard=True, root_router="r2") as lab:
                res = networkd_netem(lab, tmp)
            log(f"networkd [NetworkEmulator] on a bonded gretap: {res}")
            results.append(f"| networkd [NetworkEmulator] DelaySec=9.5ms on gre1 (no load) | - | {res} | - |")
            continue
        if mode == "rollback":
            nd = Networkd(tmp / "networkd.log")
            with Lab(paths=2, wireguard=True, root_router="r2") as lab:
                nd.start()
                try:
                    cycles, odd, outcome = run_rollback(lab, tmp, args.budget, args.max_cycles)
                finally:
                    nd.close()
                    for p in NETWORKD_DIR.glob("40-grebond-*"):
                        p.unlink()
            results.append(f"| rollback (networkd recreates gre2) | {cycles} | {outcome} | unexpected rc {odd} |")
        else:
            with Lab(paths=2, wireguard=True) as lab:
                cfg = write_config(tmp, model(extra="offloads: off"), "good.yaml")
                for end in ("r2", "r1"):
                    done = grebond(lab, end, "apply", "--backend", "iproute2", "-c", cfg, "--node", end)
                    if done.returncode != 0:
                        raise RuntimeError(done.stdout + done.stderr)
                if not bond_alive(lab):
                    raise RuntimeError("bond never passed a ping")
                cycles, outcome = run_recreate(lab, args.budget_recreate or args.budget, args.max_cycles,
                                               mode == "toggle")
            results.append(f"| {mode} | {cycles} | {outcome} | - |")
        log(results[-1])
    print("| scenario (offloads off, iperf3 both directions) | cycles | outcome | note |\n|---|---|---|---|")
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
