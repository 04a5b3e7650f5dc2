"""Two routers joined by N underlay paths, for kernel tests (run as root, in the lab guest).

Why: every grebond kernel test needs the same picture as examples/seed.yaml: two
routers, each path a veth pair, normally with a WireGuard device on each end, and
the seed's underlay addresses as point-to-point addresses on those devices. This
module builds it with ``ip``/``wg``/``tc`` (no pyroute2, so it cannot share bugs
with the code under test) and removes every trace of it in teardown.

Routers are network namespaces by default. One of them may be the ROOT namespace
(``Lab(root_router="r2")``): systemd-networkd and NetworkManager only work there.
The root namespace is only used inside the lab guest unless
``GREBOND_LAB_ALLOW_ROOT=1`` (it would reconfigure the real host otherwise).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .vm import LAB_MODULES

#: Seed underlay (examples/seed.yaml), one (addr on r2, addr on r1) tuple per path.
SEED_V4: tuple[tuple[str, str], ...] = (
    ("10.65.0.2", "10.65.0.6"),
    ("10.65.0.14", "10.65.0.10"),
    ("10.65.0.18", "10.65.0.22"),
    ("10.65.0.26", "10.65.0.30"),
)
#: IPv6 underlay variant, same shape as SEED_V4.
SEED_V6: tuple[tuple[str, str], ...] = (
    ("fd65::2", "fd65::6"),
    ("fd65::e", "fd65::a"),
    ("fd65::12", "fd65::16"),
    ("fd65::1a", "fd65::1e"),
)
MAX_PATHS = 4
WG_BASE_PORT = 51820


class LabError(RuntimeError):
    """A lab command failed; the message carries argv, exit code, stdout and stderr."""


class RootNamespaceRefused(LabError):
    """root_router was asked for outside the lab guest without GREBOND_LAB_ALLOW_ROOT=1."""


def in_guest() -> bool:
    """True inside the virtme-ng guest started by the lab plugin."""
    return os.environ.get("GREBOND_LAB_GUEST") == "1"


@dataclass
class Router:
    """One end. ``netns`` is None when the router is the root namespace."""

    name: str
    netns: str | None

    @property
    def is_root(self) -> bool:
        return self.netns is None

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """argv that runs ``argv`` inside this router (for Popen and friends).

        ``ip``/``tc`` get ``-n NS`` instead of ``ip netns exec``: every exec costs ~0.1-1 s in the
        TCG guest (binaries and libraries come over 9p), so one process beats two.
        """
        argv = [str(a) for a in argv]
        if self.netns is None:
            return argv
        if argv and argv[0] in ("ip", "tc") and (len(argv) < 2 or argv[1] != "netns"):
            return [argv[0], "-n", self.netns, *argv[1:]]
        return ["ip", "netns", "exec", self.netns, *argv]

    def ip(self) -> list[str]:
        """``ip`` argv prefix that acts on this router's namespace."""
        return ["ip"] if self.netns is None else ["ip", "-n", self.netns]


@dataclass
class LabPath:
    """Underlay path ``index`` (1-based) between the two routers."""

    index: int
    veth: str                      # same name on both routers
    wg: str | None                 # WireGuard device name on both routers, None without WireGuard
    addr: dict[str, str]           # router name -> underlay address (no prefix length)
    transport: dict[str, str]      # router name -> veth transport address (WireGuard only)
    shaping: list[str] = field(default_factory=list)  # netem args currently applied
    broken: bool = False

    @property
    def dev(self) -> str:
        """Device carrying the underlay addresses (the one gretap traffic is routed over)."""
        return self.wg or self.veth

    @property
    def family(self) -> int:
        return ipaddress.ip_address(next(iter(self.addr.values()))).version


@dataclass
class PingResult:
    """Parsed ``ping`` summary; ``loss`` is a percentage (0..100)."""

    transmitted: int
    received: int
    errors: int
    loss: float
    rtt_avg_ms: float | None
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        """Every packet answered."""
        return self.returncode == 0 and self.transmitted > 0 and self.received == self.transmitted


def _run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
         timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """subprocess.run with text I/O and an error that shows what went wrong."""
    argv = [str(a) for a in argv]
    try:
        cp = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {shlex.join(argv)}") from exc
    if check and cp.returncode != 0:
        raise LabError(
            f"command failed (exit {cp.returncode}): {shlex.join(argv)}\n"
            f"stdout:\n{cp.stdout}\nstderr:\n{cp.stderr}"
        )
    return cp


def load_modules() -> None:
    """Best effort: the guest runner already did this, but a hand-started vng shell may not have."""
    # max_bonds=0: loading bonding would otherwise create a stray bond0 in the root namespace
    subprocess.run(["modprobe", "bonding", "max_bonds=0"], capture_output=True)
    subprocess.run(["modprobe", "-a", *LAB_MODULES], capture_output=True)


class Lab:
    """Two routers (``r2`` first, ``r1`` second, as in the seed) and ``paths`` underlay paths.

    Use as a context manager or call ``setup()``/``teardown()``; the pytest fixtures
    ``lab`` and ``lab_factory`` (tests/lab/plugin.py) do that for you.
    """

    def __init__(
        self,
        paths: int | None = None,
        *,
        addresses: Sequence[tuple[str, str]] | None = None,
        wireguard: bool = True,
        wg_mtu: int = 1440,
        veth_mtu: int = 1500,
        root_router: str | None = None,
        names: tuple[str, str] = ("r2", "r1"),
        sweep_root: bool = True,
    ) -> None:
        """
        paths: number of paths (1..4); defaults to len(addresses) or 2.
        addresses: (addr on names[0], addr on names[1]) per path; default SEED_V4.
        wireguard: put a WireGuard device on each veth end and the underlay addresses on it.
        root_router: None, or one of ``names``: that router is the root namespace.
        sweep_root: with a root router, teardown also deletes every root link that did not
            exist at setup (bonds/gretaps created by networkd, NM or grebond).
        """
        if addresses is None:
            n = paths or 2
            base = SEED_V4
        else:
            n = paths or len(addresses)
            base = tuple(addresses)
        if not 1 <= n <= MAX_PATHS or n > len(base):
            raise ValueError(f"paths must be 1..{min(MAX_PATHS, len(base))}, got {n}")
        if root_router is not None and root_router not in names:
            raise ValueError(f"root_router must be one of {names}, got {root_router!r}")
        self.token = secrets.token_hex(3)
        self.names = names
        self.routers: dict[str, Router] = {
            nm: Router(nm, None if nm == root_router else f"gbl{self.token}-{nm}") for nm in names
        }
        self.wireguard = wireguard
        self.wg_mtu = wg_mtu
        self.veth_mtu = veth_mtu
        self.sweep_root = sweep_root
        a, b = names
        self.paths: list[LabPath] = []
        for i in range(1, n + 1):
            ra, rb = base[i - 1]
            self.paths.append(LabPath(
                index=i,
                veth=f"veth{i}",
                wg=f"wg{i}" if wireguard else None,
                addr={a: str(ipaddress.ip_address(ra)), b: str(ipaddress.ip_address(rb))},
                transport={a: f"172.30.{i}.1", b: f"172.30.{i}.2"} if wireguard else {},
            ))
        self._root_links_before: set[str] | None = None
        self._root_created: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._is_setup = False

    # ------------------------------------------------------------------ access
    @property
    def r2(self) -> Router:
        """First router (names[0]); the one that may be the root namespace."""
        return self.routers[self.names[0]]

    @property
    def r1(self) -> Router:
        """Second router (names[1])."""
        return self.routers[self.names[1]]

    def router(self, router: Router | str) -> Router:
        return router if isinstance(router, Router) else self.routers[router]

    def peer(self, router: Router | str) -> Router:
        """The other router."""
        r = self.router(router)
        return self.routers[self.names[1] if r.name == self.names[0] else self.names[0]]

    def path(self, i: int) -> LabPath:
        """Path by 1-based index."""
        if not 1 <= i <= len(self.paths):
            raise IndexError(f"path {i} does not exist (1..{len(self.paths)})")
        return self.paths[i - 1]

    def local(self, router: Router | str, i: int) -> str:
        """Underlay address of ``router`` on path i."""
        return self.path(i).addr[self.router(router).name]

    def remote(self, router: Router | str, i: int) -> str:
        """Underlay address of the other router on path i (= the gretap remote)."""
        return self.path(i).addr[self.peer(router).name]

    # ---------------------------------------------------------------- commands
    def run(self, router: Router | str, *argv: str | int, check: bool = True, input: str | None = None,
            timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv in ``router`` (``ip netns exec`` unless root); raises LabError if check and exit != 0."""
        return _run(self.router(router).wrap([str(a) for a in argv]), check=check, input=input,
                    timeout=timeout, env=env)

    def batch(self, router: Router | str, lines: Sequence[str], *, force: bool = False,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run many ``ip`` commands (without the leading ``ip``) in one process: ``ip -batch -``."""
        argv = [*self.router(router).ip(), *(["-force"] if force else []), "-batch", "-"]
        return _run(argv, input="\n".join(lines) + "\n", check=check)

    def sh(self, router: Router | str, script: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet in ``router``."""
        return self.run(router, "sh", "-ec", script, **kw)  # type: ignore[arg-type]

    def python(self, router: Router | str, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """Run this interpreter (the project venv) with ``args`` in ``router``, e.g. ``("-c", code)``."""
        return self.run(router, sys.executable, *args, **kw)  # type: ignore[arg-type]

    def grebond(self, router: Router | str, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """Run the grebond CLI (``python -m grebond``) in ``router``."""
        return self.python(router, "-m", "grebond", *args, **kw)

    def spawn(self, router: Router | str, *argv: str | int, **popen_kw: object) -> subprocess.Popen[bytes]:
        """Start a background process in ``router`` (iperf3 -s, a daemon...); stopped in teardown."""
        popen_kw.setdefault("stdout", subprocess.DEVNULL)
        popen_kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.router(router).wrap([str(a) for a in argv]), **popen_kw)  # type: ignore[call-overload]
        self._procs.append(proc)
        return proc

    def ping(self, router: Router | str, dst: str, count: int = 5, interval: float = 0.2,
             size: int | None = None, df: bool = False, wait: float = 1.0,
             deadline: float | None = None, iface: str | None = None) -> PingResult:
        """Ping ``dst`` from ``router``; never raises on loss. df=True sets ``-M do`` (no fragmentation)."""
        argv: list[str] = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait)]
        argv += ["-w", str(int(deadline if deadline is not None else count * interval + wait + 5))]
        if size is not None:
            argv += ["-s", str(size)]
        if df:
            argv += ["-M", "do"]
        if iface:
            argv += ["-I", iface]
        argv.append(dst)
        cp = self.run(router, *argv, check=False, timeout=count * interval + wait + 60)
        return parse_ping(cp.stdout + cp.stderr, cp.returncode)

    def offloads(self, router: Router | str, dev: str) -> dict[str, str]:
        """The four offloads grebond manages on ``dev``, as ``ethtool -k`` prints them ("on"/"off")."""
        names = {"generic-segmentation-offload": "gso", "tx-tcp-segmentation": "tso",
                 "tx-tcp6-segmentation": "tso6", "generic-receive-offload": "gro"}
        out: dict[str, str] = {}
        for line in self.run(router, "ethtool", "-k", dev).stdout.splitlines():
            name, _, value = line.strip().partition(": ")
            if name in names:
                out[names[name]] = value.split()[0]
        return out

    # ------------------------------------------------------------- impairments
    def _apply_qdisc(self, i: int) -> None:
        p = self.path(i)
        args = ["loss", "100%"] if p.broken else p.shaping
        for r in self.routers.values():
            if args:
                _run(r.wrap(["tc", "qdisc", "replace", "dev", p.veth, "root", "netem", "limit", "100000", *args]))
            else:
                _run(r.wrap(["tc", "qdisc", "del", "dev", p.veth, "root"]), check=False)

    def break_path(self, i: int) -> None:
        """Silently drop everything on path i, both directions (netem loss 100%); carrier stays up."""
        self.path(i).broken = True
        self._apply_qdisc(i)

    def heal_path(self, i: int) -> None:
        """Undo break_path; shaping set with shape_path is restored."""
        self.path(i).broken = False
        self._apply_qdisc(i)

    def shape_path(self, i: int, rate_mbit: float | None = None, delay_ms: float | None = None,
                   loss_pct: float | None = None) -> None:
        """Rate-limit/delay path i on both veth ends with netem; all None removes shaping."""
        args: list[str] = []
        if delay_ms is not None:
            args += ["delay", f"{delay_ms}ms"]
        if rate_mbit is not None:
            args += ["rate", f"{rate_mbit}mbit"]
        if loss_pct is not None:
            args += ["loss", f"{loss_pct}%"]
        self.path(i).shaping = args
        self._apply_qdisc(i)

    # ------------------------------------------------------------ build / tear
    def setup(self) -> Lab:
        """Create namespaces, veths, WireGuard devices and underlay addresses."""
        if any(r.is_root for r in self.routers.values()) and not (
            in_guest() or os.environ.get("GREBOND_LAB_ALLOW_ROOT") == "1"
        ):
            raise RootNamespaceRefused(
                "root_router reconfigures the root network namespace; allowed only in the lab guest "
                "(or with GREBOND_LAB_ALLOW_ROOT=1)"
            )
        load_modules()
        self._is_setup = True  # from here on teardown has something to undo
        if any(r.is_root for r in self.routers.values()):
            self._root_links_before = set(root_links())
        # Few processes on purpose: each exec is slow in the TCG guest (see Router.wrap).
        nss = [r.netns for r in self.routers.values() if r.netns]
        _run(["ip", "-batch", "-"], input="".join(f"netns add {ns}\n" for ns in nss))
        a, b = self.r2, self.r1
        first, second = (b, a) if b.is_root else (a, b)  # create veths from the root side, if any
        lines: dict[str, list[str]] = {r.name: [] if r.is_root else ["link set lo up"] for r in (a, b)}
        for p in self.paths:
            lines[first.name].append(
                f"link add {p.veth} mtu {self.veth_mtu} type veth peer name {p.veth} "
                f"mtu {self.veth_mtu} netns {second.netns}")
            if first.is_root:
                self._root_created.append(p.veth)
                if p.wg:
                    self._root_created.append(p.wg)
            for r in (a, b):
                lines[r.name].append(f"link set {p.veth} up")
                if p.wg:
                    lines[r.name] += [f"addr add {p.transport[r.name]}/30 dev {p.veth}",
                                      f"link add {p.wg} type wireguard"]
                else:
                    lines[r.name].append(self._p2p_line(p.veth, p.addr[r.name], p.addr[self.peer(r).name]))
        if second.is_root and self.wireguard:
            self._root_created += [p.wg for p in self.paths if p.wg]
        for r in (first, second):
            self.batch(r, lines[r.name])
        if not self.wireguard:
            return self
        keys = {nm: self._keypair() for nm in self.names}
        for r in (a, b):
            other = self.peer(r)
            wg_cmds, ip_lines = [], []
            for p in self.paths:
                port = WG_BASE_PORT + p.index
                plen = 32 if p.family == 4 else 128
                wg_cmds.append(shlex.join([
                    "wg", "set", str(p.wg), "listen-port", str(port), "private-key", "/dev/stdin",
                    "peer", keys[other.name][1], "endpoint", f"{p.transport[other.name]}:{port}",
                    "allowed-ips", f"{p.addr[other.name]}/{plen}"]) + f" <<EOF\n{keys[r.name][0]}\nEOF")
                ip_lines += [f"link set {p.wg} mtu {self.wg_mtu} up",
                             self._p2p_line(str(p.wg), p.addr[r.name], p.addr[other.name])]
            self.sh(r, "\n".join(wg_cmds))
            self.batch(r, ip_lines)
        return self

    def _keypair(self) -> tuple[str, str]:
        priv = _run(["wg", "genkey"]).stdout.strip()
        pub = _run(["wg", "pubkey"], input=priv + "\n").stdout.strip()
        return priv, pub

    @staticmethod
    def _p2p_line(dev: str, local: str, remote: str) -> str:
        """``ip -batch`` line putting a point-to-point underlay address on ``dev``."""
        nodad = " nodad" if ipaddress.ip_address(local).version == 6 else ""
        return f"addr add {local} peer {remote} dev {dev}{nodad}"

    def teardown(self) -> None:
        """Stop spawned processes, delete namespaces, and remove what we (and the test) left in root."""
        if not self._is_setup:
            return
        self._is_setup = False
        errors: list[str] = []
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs.clear()
        for r in self.routers.values():
            if not r.netns:
                continue
            # Anything else still running in our namespace (a daemon a test started) would keep it alive.
            pids = _run(["ip", "netns", "pids", r.netns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        nss = [r.netns for r in self.routers.values() if r.netns]
        if nss:
            cp = _run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {ns}\n" for ns in nss),
                      check=False)
            if cp.returncode != 0:
                errors.append(cp.stderr.strip())
        if self._root_links_before is not None:
            # Ours may already be gone with their veth peer; -force keeps going past those errors.
            doomed = list(reversed(self._root_created))
            if self.sweep_root:  # plus whatever the test (networkd, NM, grebond) created in root
                doomed += sorted(set(root_links()) - self._root_links_before - set(doomed))
            if doomed:
                _run(["ip", "-force", "-batch", "-"], input="".join(f"link del {n}\n" for n in doomed),
                     check=False)
            left = set(root_links()) - self._root_links_before
            if left:
                errors.append(f"links left in the root namespace: {sorted(left)}")
        if errors:
            raise LabError("lab teardown incomplete: " + "; ".join(errors))

    def __enter__(self) -> Lab:
        return self.setup()

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def root_links() -> list[str]:
    """Names of the links in the root namespace (``ip -o link``), without @peer suffixes."""
    out = _run(["ip", "-o", "link", "show"]).stdout
    return [m.group(1) for m in re.finditer(r"^\d+:\s+([^:@\s]+)", out, re.M)]


def lab_netns() -> list[str]:
    """Namespaces that look like ours (for leak checks)."""
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("gbl")]


_PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+(\d+) errors)?")
_PING_RTT = re.compile(r"= [\d.]+/([\d.]+)/")


def parse_ping(output: str, returncode: int) -> PingResult:
    """Parse iputils ping output; a missing summary counts as 100% loss."""
    m = _PING_SUMMARY.search(output)
    tx, rx, err = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else (0, 0, 0)
    rtt = _PING_RTT.search(output)
    loss = 100.0 if tx == 0 else 100.0 * (tx - rx) / tx
    return PingResult(tx, rx, err, loss, float(rtt.group(1)) if rtt else None, returncode, output)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.1) -> bool:
    """Poll ``predicate()`` until true or timeout; True if it became true (kernel state settles asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
