"""Backend: systemd-networkd files in /etc/systemd/network, plus the convergence networkd 252 lacks.

The files carry the state across reboots; at boot networkd creates everything from them. On a
running system networkd 252 is not enough (lab-facts.md, "systemd-networkd 252"):
- ``networkctl reload`` never changes an existing netdev, and a removed .netdev leaves its
  link behind;
- after ``ip link del bond0`` + reload, the bond comes back but its gretaps are not re-attached;
- recreated gretaps stay down and unenslaved, and ``networkctl reconfigure`` does not help.
So ``apply`` deletes every link whose .netdev changed (or that exists without having come from
grebond's file), lets networkd recreate it from the new file on reload, and then enslaves over
netlink what networkd left alone (down, master, up). Offloads live in .link files, which udev
applies only when a device appears: apply tells udev to reload them before networkd creates
anything, and sets the features of devices that already exist itself (ethtool ioctl), as the
.link files will at the next boot. The same steps run on systemd >= 257: the
kernel refuses some in-place changes (bond mode with slaves), so recreating is right there too.

Only files whose name starts with ``FILE_PREFIX`` AND that carry grebond's header are ever
replaced or removed; only links named in such files (or in the new rendering) are deleted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from grebond.backends.base import Availability, Backend, Changes, Context
from grebond.errors import ApplyFailed, GrebondError, SystemAccessError
from grebond.files import check_writable, generated_files, remove_generated, under_root, write_atomic
from grebond.kernel.ethtool import converge_offloads
from grebond.procs import running_pid
from grebond.renderer import Rendering
from grebond.renderer import networkd as renderer
from grebond.renderer.ini import parse_ini

NETWORK_DIR = "/etc/systemd/network"
NETIF_DIR = Path("/run/systemd/netif")
BUS_NAME = "org.freedesktop.network1"
TUNNEL_KINDS = ("gretap", "ip6gretap")
SETTLE_S = 2.0                      # how long the verifier may retry while bond slaves come up


@dataclass(frozen=True)
class Netdev:
    """What a .netdev file makes: its interface name and kind, and the bond it is a slave of."""

    name: str
    kind: str
    sections: dict[str, dict[str, list[str]]]


@dataclass
class Plan:
    """How to get from the files on disk (and the kernel) to the desired files."""

    write: dict[str, bytes]          # file name -> content, only files that differ
    remove: list[str]                # grebond's file names the desired set no longer has
    delete_links: list[str]          # links to delete before reloading, in order
    recreate: list[str]              # of those, the ones networkd will create again
    bonds: dict[str, list[str]]      # bond -> its tunnels, for enslaving after reload
    missing: list[str] = field(default_factory=list)   # desired links absent although the files are there

    @property
    def empty(self) -> bool:
        """Nothing to write, delete or create. A missing link needs a reload even when every file is
        already as desired (an apply killed after writing, or someone ran ``ip link del``)."""
        return not (self.write or self.remove or self.delete_links or self.missing)


def _netdev(content: bytes) -> Netdev | None:
    """Parse a .netdev, ignoring comments (the header names the config path, which may move)."""
    try:
        sections = parse_ini(content.decode())
    except (ValueError, UnicodeDecodeError):
        return None
    netdev = sections.get("NetDev", {})
    name, kind = netdev.get("Name", [""])[-1], netdev.get("Kind", [""])[-1]
    return Netdev(name, kind, sections) if name else None


def _bond_of(content: bytes) -> str | None:
    try:
        return parse_ini(content.decode()).get("Network", {}).get("Bond", [None])[-1]
    except (ValueError, UnicodeDecodeError):
        return None


def _link_kind(name: str) -> str | None:
    """The kernel's kind for link ``name`` (None when it does not exist or has no kind)."""
    from grebond.kernel.netlink import ipr

    with ipr() as ip:
        found = ip.link_lookup(ifname=name)
        if not found:
            return None
        info = ip.link("get", index=found[0])[0].get_attr("IFLA_LINKINFO")
        return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def _master_name(name: str) -> str | None:
    master = Path("/sys/class/net", name, "master")
    return master.resolve().name if master.exists() else None


class NetworkdBackend(Backend):
    name = "networkd"
    summary = "systemd-networkd .netdev/.network files in /etc/systemd/network (persistent)"
    persistent = True

    # ------------------------------------------------------------------ pure
    def render(self, ctx: Context) -> Rendering:
        return renderer.render(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node, ctx.target_systemd)

    def directory(self, ctx: Context) -> Path:
        return under_root(ctx.root, NETWORK_DIR)

    # ------------------------------------------------------------- probing
    def available(self) -> Availability:
        if not NETIF_DIR.is_dir():
            return Availability(False, f"systemd-networkd is not running ({NETIF_DIR} does not exist)")
        pid = _networkd_pid()
        if pid is None:
            return Availability(False, "systemd-networkd is not running (no systemd-networkd process)")
        bus = "" if _bus_name_owned() else "; no system bus name org.freedesktop.network1, so reload may fail"
        return Availability(True, f"systemd-networkd is running (pid {pid}){bus}")

    # ------------------------------------------------------------- files
    def current_files(self, ctx: Context) -> dict[str, bytes]:
        """grebond's files (prefix and header) in the target directory, by name."""
        return {p.name: p.read_bytes() for p in generated_files(self.directory(ctx), renderer.FILE_PREFIX)}

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        return self._write_files({f.name: f.content for f in rendering.files}, ctx)

    def _write_files(self, desired: dict[str, bytes], ctx: Context) -> Changes:
        """Make grebond's files in the directory exactly ``desired``; others are never touched."""
        directory = self.directory(ctx)
        changes = Changes()
        for name in desired:   # refuse before changing anything: a user's file with our name
            if not name.startswith(renderer.FILE_PREFIX):
                raise SystemAccessError(f"refusing to write {name}: grebond's files start with {renderer.FILE_PREFIX}")
            check_writable(directory / name)
        current = self.current_files(ctx)
        for name, content in sorted(desired.items()):
            path = directory / name
            if ctx.dry_run:
                same = current.get(name) == content and (path.stat().st_mode & 0o7777) == 0o644
                (changes.unchanged if same else changes.written).append(str(path))
            elif write_atomic(path, content, 0o644):
                changes.written.append(str(path))
            else:
                changes.unchanged.append(str(path))
        for name in sorted(set(current) - set(desired)):
            path = directory / name
            if ctx.dry_run or remove_generated(path):
                changes.removed.append(str(path))
        return changes

    # ------------------------------------------------------------- planning
    def plan(self, desired: dict[str, bytes], ctx: Context) -> Plan:
        """Which links must be deleted so that networkd creates them again from ``desired``."""
        from grebond.kernel.netlink import link_exists

        current = self.current_files(ctx)
        write = {n: c for n, c in desired.items() if current.get(n) != c}
        remove = sorted(set(current) - set(desired))
        new_netdevs = {n: nd for n, c in desired.items() if n.endswith(".netdev") and (nd := _netdev(c))}
        old_netdevs = {n: nd for n, c in current.items() if n.endswith(".netdev") and (nd := _netdev(c))}
        bonds: dict[str, list[str]] = {}
        for n, c in desired.items():
            if n.endswith(".network") and (bond := _bond_of(c)):
                match = parse_ini(c.decode()).get("Match", {}).get("Name", [""])[-1]
                bonds.setdefault(bond, []).append(match)
        recreate: list[str] = []
        missing: list[str] = []
        for file, nd in new_netdevs.items():
            if not link_exists(nd.name):
                missing.append(nd.name)
                continue        # networkd creates it on reload
            old = old_netdevs.get(file)
            if old is not None and old.sections == nd.sections:
                continue        # unchanged file, existing link: networkd's
            if old is None and _link_kind(nd.name) != nd.kind:
                # a link of another kind with this name is not grebond's to delete; networkd will
                # fail to create ours and verification will say so
                continue
            recreate.append(nd.name)
        # links of files that go away; one of another kind under that name was never ours
        gone = [nd.name for file, nd in old_netdevs.items()
                if file not in new_netdevs and nd.name not in {x.name for x in new_netdevs.values()}
                and link_exists(nd.name) and _link_kind(nd.name) == nd.kind]
        # bonds first: deleting a bond releases its slaves, so no slave is deleted while enslaved
        order = sorted(set(recreate) | set(gone), key=lambda x: (x not in bonds and not _is_bond(old_netdevs, x), x))
        return Plan(write=write, remove=remove, delete_links=order, recreate=sorted(recreate), bonds=bonds,
                    missing=sorted(missing))

    # ------------------------------------------------------------- live
    def apply(self, ctx: Context) -> Changes:
        if ctx.offline:
            return self.write(self.render(ctx), ctx)
        rendering = self.render(ctx)           # ConfigError before anything changes
        desired = {f.name: f.content for f in rendering.files}
        if ctx.dry_run:                        # shows the plan even where networkd is not running
            return self._dry_run(desired, ctx)
        self._require_running()
        previous = self.current_files(ctx)
        try:
            changes = self._converge(desired, ctx)
        except (SystemAccessError, ApplyFailed) as exc:   # e.g. networkd died and its reload failed
            if not ctx.rollback:
                raise
            kind = ApplyFailed if isinstance(exc, ApplyFailed) else SystemAccessError
            raise kind(f"{exc}; {self._restore(previous, ctx)}") from exc
        report = self._verify(ctx)
        if report is None or report.ok:
            return changes
        if not ctx.rollback:
            raise ApplyFailed("the new state did not verify (kept: --no-rollback):\n" + "\n".join(report.lines()))
        raise ApplyFailed(f"the new state did not verify; {self._restore(previous, ctx)}:\n" + "\n".join(report.lines()))

    def _restore(self, previous: dict[str, bytes], ctx: Context) -> str:
        """Bring back the files (and, with networkd running, the links) from before; say what happened.

        With networkd gone only the files can be restored: it builds the previous state from them
        when it runs again, as it would at boot.
        """
        try:
            if self.available().ok:
                self._converge(previous, ctx)
                return "restored the previous files and links"
            self._write_files(previous, ctx)
            return "restored the previous files; systemd-networkd is not running and brings them up when it starts"
        except GrebondError as exc:
            return f"restoring the previous state failed too: {exc}"

    def remove(self, ctx: Context) -> Changes:
        if ctx.offline:
            return self._write_files({}, ctx)
        if ctx.dry_run:
            return self._dry_run({}, ctx)
        self._require_running()
        return self._converge({}, ctx)

    def _dry_run(self, desired: dict[str, bytes], ctx: Context) -> Changes:
        plan = self.plan(desired, ctx)
        changes = self._write_files(desired, ctx)
        changes.recreated = list(plan.recreate)
        changes.actions += [f"delete link {n}" for n in plan.delete_links if n not in plan.recreate]
        if not plan.empty:
            changes.actions.append("reload systemd-networkd (networkctl reload)")
        if plan.bonds and desired:
            changes.actions += [f"enslave {', '.join(s)} to {b} where networkd does not" for b, s in plan.bonds.items()]
        changes.actions += converge_offloads(_link_offloads(desired), dry_run=True).values()
        return changes

    def _converge(self, desired: dict[str, bytes], ctx: Context) -> Changes:
        """Delete what must be recreated, write the files, reload, enslave, wait. Returns what changed."""
        from grebond.kernel.netlink import delete_links

        plan = self.plan(desired, ctx)
        if plan.empty:
            changes = self._write_files(desired, ctx)   # nothing differs; still reports unchanged files
            if desired:
                self._enslave(plan.bonds, ctx)          # heal a slave someone released by hand
                changes.actions += converge_offloads(_link_offloads(desired)).values()   # or offloads set by hand
            return changes
        deleted = delete_links(plan.delete_links)
        changes = self._write_files(desired, ctx)
        changes.recreated = [n for n in plan.recreate if n in deleted]
        changes.actions += [f"deleted link {n}" for n in deleted if n not in plan.recreate]
        if any(n.endswith(".link") for n in [*plan.write, *plan.remove]):
            _reload_udev()
        _networkctl("reload")
        changes.actions.append("reloaded systemd-networkd")
        if desired:
            names = [n for slaves in plan.bonds.values() for n in slaves] + list(plan.bonds)
            self._wait_links(names, ctx.timeout_s)
            enslaved = self._enslave(plan.bonds, ctx)
            changes.actions += [f"enslaved {n}" for n in enslaved]
            changes.actions += converge_offloads(_link_offloads(desired)).values()
        return changes

    def _enslave(self, bonds: dict[str, list[str]], ctx: Context) -> list[str]:
        """Attach each tunnel networkd left unenslaved (it never re-attaches after a recreate on 252)."""
        from grebond.kernel.netlink import enslave, link_exists

        done: list[str] = []
        for bond, slaves in bonds.items():
            if not link_exists(bond):
                continue
            todo = [s for s in slaves if link_exists(s) and (_master_name(s) != bond or not _is_up(s))]
            if todo:
                enslave(bond, todo)
                done += todo
        return done

    def _wait_links(self, names: list[str], timeout_s: float) -> None:
        """Wait until networkd created every link and finished (or gave up) configuring it."""
        from grebond.kernel.netlink import link_exists

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            missing = [n for n in names if not link_exists(n)]
            busy = [n for n in names if n not in missing and _admin_state(n) in ("pending", "initialized", None)]
            if not missing and not busy:
                return
            time.sleep(0.1)
        missing = [n for n in names if not link_exists(n)]
        if missing:
            raise ApplyFailed(f"systemd-networkd did not create {', '.join(missing)} within {timeout_s:.0f} s; "
                              "see its log (journalctl -u systemd-networkd)")

    def _verify(self, ctx: Context):  # type: ignore[no-untyped-def]
        """The verifier's report for the new state, retried until it passes or ``ctx.timeout_s`` ends."""
        try:
            from grebond.verifier import verify
        except ImportError as exc:
            raise SystemAccessError(f"cannot verify the new state: {exc}") from exc

        deadline = time.monotonic() + ctx.timeout_s
        while True:
            report = verify(ctx.config, ctx.node, settle_s=SETTLE_S)
            if report.ok or time.monotonic() >= deadline:
                return report
            time.sleep(0.5)

    def _require_running(self) -> None:
        availability = self.available()
        if not availability.ok:
            raise SystemAccessError(f"{availability.reason}; start it (systemctl start systemd-networkd), "
                                    "or write the files only with --write-only or --root")


def _link_offloads(files: dict[str, bytes]) -> dict[str, bool]:
    """Interface -> offloads on/off, as grebond's .link files among ``files`` set them."""
    out: dict[str, bool] = {}
    for name, content in files.items():
        if not name.endswith(".link"):
            continue
        try:
            sections = parse_ini(content.decode())
        except (ValueError, UnicodeDecodeError):
            continue
        ifname = sections.get("Match", {}).get("OriginalName", [""])[-1]
        value = sections.get("Link", {}).get(renderer.LINK_OFFLOAD_KEYS[0], [""])[-1]
        if ifname and value in ("true", "false"):
            out[ifname] = value == "true"
    return out


def _reload_udev() -> None:
    """Have udevd read the changed .link files before networkd creates devices (it would otherwise
    notice within ~3 s, maybe after). Without a running udevd there is nothing to tell."""
    import subprocess

    try:
        subprocess.run(["udevadm", "control", "--reload"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _is_bond(netdevs: dict[str, Netdev], name: str) -> bool:
    return any(nd.name == name and nd.kind == "bond" for nd in netdevs.values())


def _is_up(name: str) -> bool:
    try:
        flags = int(Path("/sys/class/net", name, "flags").read_text(), 16)
    except (OSError, ValueError):
        return False
    return bool(flags & 1)


def _admin_state(name: str) -> str | None:
    """networkd's setup state for ``name`` from /run/systemd/netif/links/IFINDEX (None: not yet known)."""
    try:
        index = Path("/sys/class/net", name, "ifindex").read_text().strip()
        text = (NETIF_DIR / "links" / index).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ADMIN_STATE="):
            return line.partition("=")[2].strip()
    return None


def _networkd_pid() -> int | None:
    """The pid of a running systemd-networkd (its comm is truncated to 'systemd-network')."""
    return running_pid("systemd-network", b"systemd-networkd")


def _bus_name_owned() -> bool:
    import subprocess

    try:
        done = subprocess.run(["busctl", "--system", "status", BUS_NAME], capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _networkctl(*args: str) -> None:
    import subprocess

    argv = ["networkctl", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SystemAccessError(f"'{' '.join(argv)}' failed: {exc}") from exc
    if done.returncode != 0:
        raise SystemAccessError(f"'{' '.join(argv)}' failed: {done.stderr.strip() or done.stdout.strip()}; "
                                "is systemd-networkd running with a system bus?")

