"""A hub and two spokes, each a router Ansible reaches over real SSH, for the fleet tests.

Why: a fleet change is only proven by the real chain: ansible-playbook on a controller, ssh to
each router, the module on the router driving the grebond installed there, and traffic across
every bond afterwards. The lab guest has one kernel, so each router is a network namespace
with its own management address and its own sshd, and its own mount namespace in which /usr,
/var and /etc are overlays on a tmpfs (what the role installs lands there, one install per
router, and vanishes with it) and /run is private (grebond's lock and its pending try are per
host). Everything an ssh session on the router does, and what it leaves running (grebond's
rollback guardian), lives in those namespaces.

Topology (examples/hub-spokes.yaml): link L (1: hub-spoke1, 2: hub-spoke2) has paths P (1, 2),
each a veth pair ``veLP`` with a WireGuard device ``wgLP`` on each end: transport
172.30.LP.1/.2 on the veth, underlay 10.65.LP.1 (hub) / .2 (spoke) point-to-point on the
WireGuard device. Router i (hub 1, spoke1 2, spoke2 3) has ``mgmt0`` 10.98.i.2/30, the guest's
root namespace 10.98.i.1 on the other end; its sshd listens on 10.98.i.2:22. The SSH keys (one
client key, one host key per router) are generated for each fleet.
Built with ip/wg/ssh-keygen, like tests/lab/topology.py; torn down completely.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from .topology import (
    LabError,
    PingResult,
    _run,
    load_modules,
    parse_ping,
    root_links,
    wait_for,
)

ROUTERS = ("hub", "spoke1", "spoke2")
SPOKES = {1: "spoke1", 2: "spoke2"}       # link index -> the spoke; the hub is the other end
PATHS = (1, 2)
WG_BASE_PORT = 51800
#: The lab guest serves Python from RAM (tests/lab/vm.py); an overlay on /usr hides those binds.
RAM_PYTHON = Path("/tmp/grebond-lab-python")
#: What the routers' Python (Debian's, which the installed grebond and Ansible's modules run on)
#: reads at every start, served from RAM too: the guest reads /usr over 9p without a page cache.
#: Only what no package install writes into (dpkg puts grebond beside these, in the overlay).
DEBIAN_PYTHON = ("usr/bin/python3.11", "usr/lib/python3.11", "usr/lib/python3/dist-packages/pyroute2",
                 "usr/lib/python3/dist-packages/yaml", "usr/lib/python3/dist-packages/_yaml",
                 "usr/lib/python3/dist-packages/dbus_next", "usr/lib/python3/dist-packages/apt",
                 "usr/lib/python3/dist-packages/aptsources",
                 "usr/lib/python3/dist-packages/apt_pkg.cpython-311-x86_64-linux-gnu.so",
                 "usr/lib/python3/dist-packages/apt_inst.cpython-311-x86_64-linux-gnu.so")

_HOLDER = """
set -e
mount -t tmpfs -o size=768M,mode=755 gbf-{name} /mnt
for d in usr var etc; do
    mkdir -p /mnt/$d/upper /mnt/$d/work
    mount -t overlay overlay -o lowerdir=/$d,upperdir=/mnt/$d/upper,workdir=/mnt/$d/work /$d
done
# the RAM copies of the interpreter's files (tests/lab/vm.py) again, over the /usr overlay
for m in {ram_binds}; do [ -e "{ram}$m" ] && mount --rbind "{ram}$m" "$m" || true; done
for m in {debian_python}; do mount --bind "{debian_ram}/$m" "/$m"; done
# dpkg's man-db trigger rebuilds the whole index: minutes under TCG, nothing the tests look at
rm -f /var/lib/man-db/auto-update
mount -t tmpfs -o mode=755 gbf-run-{name} /run
mkdir -p /run/sshd /run/lock
exec /usr/sbin/sshd -D -e -f {config}
"""

_SSHD_CONFIG = """\
# sshd of lab router {name} (tests/lab/fleet.py); nothing outside the lab uses it
ListenAddress {address}
Port 22
HostKey {host_key}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
MaxStartups 30
MaxSessions 30
LogLevel VERBOSE
"""


@dataclass
class FleetRouter:
    """One router: its namespace, management address and the sshd that holds its mount namespace."""

    name: str
    index: int
    netns: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """Where its sshd listens (the inventory's ansible_host)."""
        return f"10.98.{self.index}.2"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "fleet not set up"
        return self.proc.pid

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """argv run as an ssh session on the router would be: its network and mount namespaces."""
        return ["nsenter", f"--target={self.pid}", "--net", "--mount", "--", *[str(a) for a in argv]]


def underlay(link: int, path: int, end: str) -> str:
    """Underlay (WireGuard) address of ``end`` ('hub' or the spoke) on path ``path`` of link ``link``."""
    return f"10.65.{link}{path}.{1 if end == 'hub' else 2}"


def bond_address(link: int, end: str) -> str:
    return f"10.67.{link}.{1 if end == 'hub' else 2}"


def ram_binds() -> list[str]:
    """Mount points under /usr that the guest serves from RAM (so the routers can too)."""
    out = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith("/usr/") and (RAM_PYTHON / point.lstrip("/")).exists():
                out.append(point)
    except OSError:
        pass
    return out


class Fleet:
    """hub, spoke1 and spoke2 (see the module docstring); ``setup()`` / ``teardown()``."""

    def __init__(self, workdir: Path) -> None:
        self.token = secrets.token_hex(3)
        self.workdir = workdir
        self.routers = {name: FleetRouter(name, i, f"gbf{self.token}-{name}") for i, name in enumerate(ROUTERS, 1)}
        self.client_key = workdir / "client_key"
        self.known_hosts = workdir / "known_hosts"
        self._root_links_before: set[str] = set()
        self._is_setup = False
        self.debian_ram = Path(f"/tmp/gbf{self.token}-python")
        self.debian_python: list[str] = []
        self._mounted: list[Path] = []
        self.timings: dict[str, float] = {}

    def router(self, name: str) -> FleetRouter:
        return self.routers[name]

    def mgmt_link(self, r: FleetRouter) -> str:
        """The root namespace's end of the router's management veth."""
        return f"gbf{self.token}m{r.index}"

    # ---------------------------------------------------------------- commands
    def run(self, router: str, *argv: str | int, check: bool = True, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return _run(self.router(router).wrap([str(a) for a in argv]), check=check, timeout=timeout, input=input)

    def ping(self, router: str, dst: str, count: int = 5, interval: float = 0.2, wait: float = 1.0,
             deadline: float | None = None, iface: str | None = None) -> PingResult:
        argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait),
                "-w", str(int(deadline if deadline is not None else count * interval + wait + 5))]
        if iface:
            argv += ["-I", iface]
        cp = self.run(router, *argv, dst, check=False, timeout=count * interval + wait + 60)
        return parse_ping(cp.stdout + cp.stderr, cp.returncode)

    def links(self, router: str) -> str:
        return self.run(router, "ip", "-o", "link", "show").stdout

    # ---------------------------------------------------------------- build
    def setup(self) -> Self:
        started = time.monotonic()
        load_modules()
        self._is_setup = True
        self._root_links_before = set(root_links())
        self.workdir.mkdir(parents=True, exist_ok=True)
        _run(["ip", "-batch", "-"], input="".join(f"netns add {r.netns}\n" for r in self.routers.values()))
        root, lines = [], {name: ["link set lo up"] for name in ROUTERS}
        for r in self.routers.values():
            root += [f"link add {self.mgmt_link(r)} type veth peer name mgmt0 netns {r.netns}",
                     f"addr add 10.98.{r.index}.1/30 dev {self.mgmt_link(r)}", f"link set {self.mgmt_link(r)} up"]
            lines[r.name] += [f"addr add {r.address}/30 dev mgmt0", "link set mgmt0 up"]
        _run(["ip", "-batch", "-"], input="\n".join(root) + "\n")
        for link, spoke in SPOKES.items():
            for p in PATHS:
                veth = f"ve{link}{p}"
                lines["hub"].append(f"link add {veth} type veth peer name {veth} netns {self.routers[spoke].netns}")
                for end in ("hub", spoke):
                    lines[end] += [f"addr add 172.30.{link}{p}.{1 if end == 'hub' else 2}/30 dev {veth}",
                                   f"link set {veth} up", f"link add wg{link}{p} type wireguard"]
        for name in ("hub", *SPOKES.values()):   # the hub first: it creates the veths
            _run(["ip", "-n", self.routers[name].netns, "-batch", "-"], input="\n".join(lines[name]) + "\n")
        t0 = time.monotonic()
        self._wireguard()
        t1 = time.monotonic()
        self._python_in_ram()
        t2 = time.monotonic()
        self._ssh()
        self.timings = {"namespaces and veths": t0 - started, "WireGuard": t1 - t0,
                        "Debian's Python into RAM": t2 - t1, "keys and 3 sshd listening": time.monotonic() - t2}
        return self

    def _python_in_ram(self) -> None:
        """Copy DEBIAN_PYTHON into a tmpfs once; each router binds it over its /usr overlay."""
        self.debian_python = [p for p in DEBIAN_PYTHON if Path("/", p).exists()]
        self.debian_ram.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", "size=400M", f"gbf{self.token}-python", str(self.debian_ram)])
        self._mounted.append(self.debian_ram)
        # over 9p: ~1 min in a guest alone, more than 2 with another guest beside it on 2 CPUs
        _run(["sh", "-c", f"tar -C / -cf - {' '.join(self.debian_python)} | tar -C {self.debian_ram} -xf -"],
             timeout=900)

    def _wireguard(self) -> None:
        keys = {}
        for name in ROUTERS:
            private = _run(["wg", "genkey"]).stdout.strip()
            keys[name] = (private, _run(["wg", "pubkey"], input=private + "\n").stdout.strip())
        for name, r in self.routers.items():
            wg, ip = [], []
            for link, spoke in SPOKES.items():
                if name not in ("hub", spoke):
                    continue
                other = spoke if name == "hub" else "hub"
                for p in PATHS:
                    dev, port = f"wg{link}{p}", WG_BASE_PORT + 10 * link + p
                    transport = f"172.30.{link}{p}.{1 if other == 'hub' else 2}"
                    wg.append(shlex.join(["wg", "set", dev, "listen-port", str(port), "private-key", "/dev/stdin",
                                          "peer", keys[other][1], "endpoint", f"{transport}:{port}",
                                          "allowed-ips", f"{underlay(link, p, other)}/32"])
                              + f" <<EOF\n{keys[name][0]}\nEOF")
                    ip += [f"link set {dev} mtu 1440 up",
                           f"addr add {underlay(link, p, name)} peer {underlay(link, p, other)} dev {dev}"]
            _run(["ip", "netns", "exec", r.netns, "sh", "-ec", "\n".join(wg)])
            _run(["ip", "-n", r.netns, "-batch", "-"], input="\n".join(ip) + "\n")

    def _ssh(self) -> None:
        d = self.workdir
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-controller", "-f", str(self.client_key)])
        authorized = d / "authorized_keys"
        authorized.write_text((d / "client_key.pub").read_text())
        known = []
        binds = " ".join(shlex.quote(m) for m in ram_binds())
        for r in self.routers.values():
            host_key = d / f"{r.name}_host_key"
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fleet-{r.name}", "-f", str(host_key)])
            kind, key = Path(f"{host_key}.pub").read_text().split()[:2]
            known.append(f"{r.address} {kind} {key}")
            config = d / f"{r.name}_sshd_config"
            config.write_text(_SSHD_CONFIG.format(name=r.name, address=r.address, host_key=host_key,
                                                  authorized=authorized))
            log = (d / f"{r.name}_sshd.log").open("ab")
            script = _HOLDER.format(name=r.name, config=shlex.quote(str(config)), ram=RAM_PYTHON, ram_binds=binds,
                                    debian_ram=self.debian_ram, debian_python=" ".join(self.debian_python))
            r.proc = subprocess.Popen(["ip", "netns", "exec", r.netns, "unshare", "--mount", "--propagation",
                                       "private", "sh", "-c", script], stdout=log, stderr=log)
            log.close()
        self.known_hosts.write_text("\n".join(known) + "\n")
        for r in self.routers.values():
            if not wait_for(lambda r=r: _listening(r.address), timeout=90, interval=0.5):  # type: ignore[misc]
                raise LabError(f"sshd of {r.name} is not listening on {r.address}:22: "
                               + (d / f"{r.name}_sshd.log").read_text(errors="replace")[-2000:])

    # ---------------------------------------------------------------- Ansible's view
    def inventory(self, **group_vars: str) -> str:
        """INI inventory of the three routers (group ``grebond``), root over the fleet's SSH key."""
        lines = ["[grebond]"]
        for r in self.routers.values():
            lines.append(f"{r.name} ansible_host={r.address} ansible_remote_tmp=/tmp/gbf-remote-{self.token}-{r.name}")
        lines += ["", "[grebond:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={self.client_key}",
                  "ansible_python_interpreter=/usr/bin/python3"]
        lines += [f"{k}={v}" for k, v in group_vars.items()]
        return "\n".join(lines) + "\n"

    def ansible_cfg(self) -> str:
        cp = self.workdir / "cp"
        cp.mkdir(exist_ok=True)
        return (
            "[defaults]\n"
            "forks = 10\n"
            "gathering = explicit\n"
            "host_key_checking = True\n"
            f"local_tmp = {self.workdir / 'ansible-local'}\n"
            # the guest's /root is read-only: the controller's own tasks (delegate_to: localhost) need this
            f"remote_tmp = /tmp/gbf-remote-{self.token}-controller\n"
            "timeout = 60\n"
            "\n[ssh_connection]\n"
            "pipelining = True\n"
            f"control_path_dir = {cp}\n"
            f"ssh_common_args = -o UserKnownHostsFile={self.known_hosts} -o IdentitiesOnly=yes\n"
        )

    # ---------------------------------------------------------------- tear down
    def teardown(self) -> None:
        if not self._is_setup:
            return
        self._is_setup = False
        errors = []
        for r in self.routers.values():
            # sshd, every session, and whatever they left running (grebond's guardian)
            pids = _run(["ip", "netns", "pids", r.netns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            if r.proc is not None:
                try:
                    r.proc.kill()
                except ProcessLookupError:
                    pass
                r.proc.wait()
        cp = _run(["ip", "-force", "-batch", "-"],
                  input="".join(f"netns del {r.netns}\n" for r in self.routers.values()), check=False)
        if cp.returncode != 0:
            errors.append(cp.stderr.strip())
        for mount in self._mounted:
            _run(["umount", "-l", str(mount)], check=False)
        self._mounted.clear()
        doomed = sorted(set(root_links()) - self._root_links_before)
        if doomed:
            _run(["ip", "-force", "-batch", "-"], input="".join(f"link del {n}\n" for n in doomed), check=False)
        left = set(root_links()) - self._root_links_before
        if left:
            errors.append(f"links left in the root namespace: {sorted(left)}")
        if errors:
            raise LabError("fleet teardown incomplete: " + "; ".join(errors))

    def __enter__(self) -> Self:
        return self.setup()

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def _listening(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=2) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def ansible_bin(tool: str) -> str:
    """ansible-playbook & co. of this environment (ansible-core is a test dependency)."""
    return str(Path(sys.executable).parent / tool)
