"""Backend: systemd-networkd files in /etc/systemd/network, plus the convergence networkd 252 lacks.

The files carry the state across reboots; at boot networkd creates everything from them. On a
running system networkd 252 is not enough (lab-facts.md, "systemd-networkd 252"):
- ``networkctl reload`` never changes an existing netdev, and a removed .netdev leaves its
  link behind;
- after ``ip link del bond0`` + reload, the bond comes back but its gretaps are not re-attached;
- recreated gretaps stay down and unenslaved, and ``networkctl reconfigure`` does not help;
- ``MACAddress=`` is used only when networkd creates the netdev: an existing bond keeps whatever
  MAC the kernel gave it.
So ``change`` deletes every link whose .netdev changed (or that exists without having come from
grebond's file), lets networkd recreate it from the new file on reload, and then enslaves over
netlink what networkd left alone (down, master, up). A bond that is not recreated gets its
.netdev's MAC over netlink, after the deletes and before the reload, where the kernel's differs or
the deletes take every slave it has (``Plan.macs``, issue 22). Offloads live in .link files, which udev
applies only when a device appears: udev is told to reload them before networkd creates
anything, and the features of devices that already exist are set here (ethtool ioctl), as the
.link files will at the next boot. A tunnel's delay ([NetworkEmulator] in its .network) is set by
networkd when it configures the tunnel; here it is converged over netlink as well (pyroute2 tc),
because an unchanged file does not put back a delay changed by hand, and systemd.network(5) does
not say that networkd removes a qdisc whose section went away (not checked on a live networkd).
The same steps run on systemd >= 257: the kernel refuses some in-place changes (bond mode with
slaves), so recreating is right there too.

A bond with NS targets (IPv6-only) also gets a udev rule in /etc/udev/rules.d that sets them
whenever the bond is created (networkd has no key for them: renderer/networkd_ns.py). The rules
are written before the reload (udev told at once), removed with the other files, and the targets
are set here over netlink on a bond that already exists, which sees no new "add" event.

Only files whose name starts with ``FILE_PREFIX`` (rules: ``RULE_PREFIX``) AND that carry grebond's
header are ever replaced or removed; only links named in such files (or in the new rendering) are deleted.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from grebond.backends.base import Availability, Backend, Context, Snapshot
from grebond.backends.networkd import daemon
from grebond.backends.networkd.files import SEARCH_DIRS, FileSet, read_files, shadowing
from grebond.changes import Changes
from grebond.errors import GrebondError, SystemAccessError
from grebond.files import is_generated, under_root
from grebond.kernel.ethtool import converge_offloads
from grebond.kernel.netlink import delete_links, enslave, set_mac
from grebond.kernel.qdisc import converge_delays
from grebond.kernel.reader import read_state
from grebond.kernel.state import KernelState
from grebond.managed import ManagedDirectory
from grebond.renderer import RenderedFile, Rendering
from grebond.renderer import networkd as renderer
from grebond.renderer.networkd_ns import RULE_PREFIX, UDEV_RULES_DIR, rule_settings

NETWORK_DIR = "/etc/systemd/network"


@dataclass
class Plan:
    """How to get from the files on disk (and the kernel) to the desired files."""

    write: dict[str, bytes]          # file name -> content, only files that differ
    remove: list[str]                # grebond's file names the desired set no longer has
    delete_links: list[str]          # links to delete before reloading, in order
    recreate: list[str]              # of those, the ones networkd will create again
    bonds: dict[str, list[str]]      # bond -> its tunnels, for enslaving after reload
    missing: list[str] = field(default_factory=list)   # desired links absent although the files are there
    macs: dict[str, str] = field(default_factory=dict)  # bond -> the MAC to set over netlink after the deletes

    @property
    def empty(self) -> bool:
        """Nothing to write, delete or create. A missing link needs a reload even when every file is
        already as desired (an apply killed after writing, or someone ran ``ip link del``). A MAC
        to set alone needs no reload."""
        return not (self.write or self.remove or self.delete_links or self.missing)


def plan(current: dict[str, bytes], desired: dict[str, bytes], state: KernelState) -> Plan:
    """Which links must be deleted so that networkd creates them again from ``desired``. Pure."""
    old, new = read_files(current), read_files(desired)
    recreate: list[str] = []
    missing: list[str] = []
    for file, nd in new.netdevs.items():
        link = state.link(nd.name)
        if link is None:
            missing.append(nd.name)
            continue        # networkd creates it on reload
        previous = old.netdevs.get(file)
        if previous is not None and previous.sections == nd.sections:
            continue        # unchanged file, existing link: networkd's
        if previous is None and link.kind != nd.kind:
            # a link of another kind with this name is not grebond's to delete; networkd will fail to
            # create ours and verification will say so
            continue
        recreate.append(nd.name)
    # links of files that go away; one of another kind under that name was never ours
    kept = {x.name for x in new.netdevs.values()}
    gone = [nd.name for file, nd in old.netdevs.items()
            if file not in new.netdevs and nd.name not in kept
            and (link := state.link(nd.name)) is not None and link.kind == nd.kind]
    # bonds first: deleting a bond releases its slaves, so no slave is deleted while enslaved
    order = sorted(set(recreate) | set(gone), key=lambda x: (x not in new.bonds and not old.is_bond(x), x))
    return Plan(write={n: c for n, c in desired.items() if current.get(n) != c},
                remove=sorted(set(current) - set(desired)), delete_links=order, recreate=sorted(recreate),
                bonds=new.bonds, missing=sorted(missing), macs=_macs_to_set(new, state, set(order)))


def _macs_to_set(new: FileSet, state: KernelState, deleting: set[str]) -> dict[str, str]:
    """Bonds that stay (not deleted) whose MAC must be set over netlink: the kernel's differs from
    the .netdev's, or ``deleting`` takes every slave the bond has. Pure.

    Why (issue 22): when a bond's last slave goes, the kernel gives it a random MAC
    (``__bond_release_one``), and the next first slave hands the bond its own (``bond_enslave``,
    NET_ADDR_RANDOM -> STOLEN). New endpoints for every tunnel of a bond whose .netdev is unchanged
    do exactly that, networkd uses MACAddress= only when it creates the bond, and nothing else puts
    the MAC back. Set after the deletes and before anything is enslaved, it is NET_ADDR_SET, which
    no slave replaces. A bond that is deleted is created by networkd with MACAddress= itself."""
    out: dict[str, str] = {}
    for bond, mac in sorted(new.macs.items()):
        link = state.link(bond)
        if link is None or link.kind != "bond" or bond in deleting:
            continue
        slaves = {s.name for s in state.slaves_of(bond)}
        if (link.mac or "").lower() != mac or (slaves and slaves <= deleting):
            out[bond] = mac
    return out


@dataclass
class NetworkdSnapshot(Snapshot):
    files: dict[str, bytes]
    rules: dict[str, bytes] = field(default_factory=dict)    # grebond's udev rules (NS targets)

    def to_json(self) -> dict[str, Any]:
        return {"files": _b64(self.files), "rules": _b64(self.rules)}


def _b64(files: dict[str, bytes]) -> dict[str, str]:
    return {n: base64.b64encode(c).decode() for n, c in files.items()}


def _unb64(files: dict[str, str]) -> dict[str, bytes]:
    return {n: base64.b64decode(c) for n, c in files.items()}


def split_files(files: tuple[RenderedFile, ...]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A rendering's files for networkd's directory, and its udev rules, each by name."""
    return ({f.name: f.content for f in files if f.directory != UDEV_RULES_DIR},
            {f.name: f.content for f in files if f.directory == UDEV_RULES_DIR})


class NetworkdBackend(Backend):
    name = "networkd"
    summary = "systemd-networkd .netdev/.network files in /etc/systemd/network (persistent)"

    def render(self, ctx: Context) -> Rendering:
        return renderer.render(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node, ctx.target_systemd)

    def directory(self, ctx: Context) -> ManagedDirectory:
        return ManagedDirectory(under_root(ctx.root, NETWORK_DIR), prefix=renderer.FILE_PREFIX)

    def rules_directory(self, ctx: Context) -> ManagedDirectory:
        return ManagedDirectory(under_root(ctx.root, UDEV_RULES_DIR), prefix=RULE_PREFIX)

    def available(self) -> Availability:
        if not daemon.NETIF_DIR.is_dir():
            return Availability(False, f"systemd-networkd is not running ({daemon.NETIF_DIR} does not exist)")
        pid = daemon.networkd_pid()
        if pid is None:
            return Availability(False, "systemd-networkd is not running (no systemd-networkd process)")
        bus = "" if daemon.bus_name_owned() else "; no system bus name org.freedesktop.network1, so reload may fail"
        return Availability(True, f"systemd-networkd is running (pid {pid}){bus}")

    def ready(self, ctx: Context) -> None:
        availability = self.available()
        if not availability.ok:
            raise SystemAccessError(f"{availability.reason}; start it (systemctl start systemd-networkd), "
                                    "or write the files only with --write-only or --root")

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        desired, rules = split_files(rendering.files)
        self.rules_directory(ctx).check(sorted(rules))    # refused before anything is written
        changes = self.directory(ctx).sync(desired, ctx.dry_run)
        changes.extend(self.rules_directory(ctx).sync(rules, ctx.dry_run))
        changes.notes += self.shadowed(desired, ctx)
        return changes

    def shadowed(self, desired: dict[str, bytes], ctx: Context) -> list[str]:
        """Warnings for files of others, in any of networkd's directories, that define grebond's interfaces."""
        others: dict[str, bytes] = {}
        for d in SEARCH_DIRS:
            directory = under_root(ctx.root, d)
            if not directory.is_dir():
                continue
            for path in sorted(directory.iterdir()):
                if path.suffix in (".netdev", ".network") and path.is_file() and not is_generated(path):
                    try:
                        others[str(path)] = path.read_bytes()
                    except OSError:
                        continue
        return shadowing(desired, others)

    # ------------------------------------------------------------- the transaction's steps
    def snapshot(self, ctx: Context) -> NetworkdSnapshot:
        return NetworkdSnapshot(self.directory(ctx).current(), self.rules_directory(ctx).current())

    def snapshot_from_json(self, data: dict[str, Any]) -> NetworkdSnapshot:
        return NetworkdSnapshot(_unb64(data.get("files", {})), _unb64(data.get("rules", {})))

    def change(self, ctx: Context, snapshot: Snapshot) -> Changes:
        desired, rules = split_files(self.render(ctx).files)
        changes = self._dry_run(desired, rules, ctx) if ctx.dry_run else self._converge(desired, rules, ctx)
        changes.notes += self.shadowed(desired, ctx)
        return changes

    def restore(self, ctx: Context, snapshot: Snapshot) -> str:
        """The files (and, with networkd running, the links) from before. With networkd gone only the
        files can come back: it builds the previous state from them when it runs again, as at boot."""
        assert isinstance(snapshot, NetworkdSnapshot)
        try:
            if self.available().ok:
                self._converge(snapshot.files, snapshot.rules, ctx)
                return "restored the previous files and links"
            self.rules_directory(ctx).sync(snapshot.rules)
            self.directory(ctx).sync(snapshot.files)
            return "restored the previous files; systemd-networkd is not running and brings them up when it starts"
        except GrebondError as exc:
            return f"restoring the previous state failed too: {exc}"

    def remove(self, ctx: Context) -> Changes:
        if ctx.offline:
            changes = self.directory(ctx).sync({}, ctx.dry_run)
            changes.extend(self.rules_directory(ctx).sync({}, ctx.dry_run))
            return changes
        if ctx.dry_run:
            return self._dry_run({}, {}, ctx)
        self.ready(ctx)
        return self._converge({}, {}, ctx)

    # ------------------------------------------------------------- how
    def _dry_run(self, desired: dict[str, bytes], rules: dict[str, bytes], ctx: Context) -> Changes:
        directory = self.directory(ctx)
        state = read_state()
        steps = plan(directory.current(), desired, state)
        changes = directory.sync(desired, dry_run=True)
        changes.extend(self.rules_directory(ctx).sync(rules, dry_run=True))
        changes.actions += [f"set {bond} {what}" for bond, (_t, _m, what)
                            in _ns_to_set(rules, [b for b in steps.bonds if b not in steps.recreate], state).items()]
        changes.recreated = list(steps.recreate)
        changes.actions += [f"delete link {n}" for n in steps.delete_links if n not in steps.recreate]
        changes.actions += [f"set {b} mac {m}" for b, m in steps.macs.items()]
        if not steps.empty:
            changes.actions.append("reload systemd-networkd (networkctl reload)")
        if steps.bonds and desired:
            changes.actions += [f"enslave {', '.join(s)} to {b} where networkd does not" for b, s in steps.bonds.items()]
        changes.actions += converge_offloads(read_files(desired).offloads, dry_run=True).values()
        changes.actions += converge_delays(read_files(desired).delays, dry_run=True).values()
        return changes

    def _converge(self, desired: dict[str, bytes], rules: dict[str, bytes], ctx: Context) -> Changes:
        """Delete what must be recreated, write the files, reload, enslave, wait. Returns what changed."""
        directory = self.directory(ctx)
        wanted = read_files(desired)
        steps = plan(directory.current(), desired, read_state())
        rules_directory = self.rules_directory(ctx)
        directory.check(sorted(desired))           # someone else's file in the way: refused before any change
        rules_directory.check(sorted(rules))
        if steps.empty:
            changes = directory.sync(desired)     # nothing differs; still reports unchanged files
            changes.extend(_sync_udev(rules_directory.sync(rules), steps))
            if desired:
                changes.actions += self._set_macs(steps.macs)   # heal a bond whose MAC drifted
                self._enslave(steps.bonds)        # heal a slave someone released by hand
                changes.actions += converge_offloads(wanted.offloads).values()   # or offloads set by hand
                changes.actions += converge_delays(wanted.delays).values()       # or a delay changed by hand
                changes.actions += self._set_ns(rules, list(steps.bonds))   # or NS targets (a new rule)
            return changes
        deleted = delete_links(steps.delete_links)
        macs = self._set_macs(steps.macs)         # before networkd or _enslave attaches a tunnel
        changes = directory.sync(desired)
        changes.extend(_sync_udev(rules_directory.sync(rules), steps))   # before the reload: a bond it creates needs them
        changes.actions += macs
        changes.recreated = [n for n in steps.recreate if n in deleted]
        changes.actions += [f"deleted link {n}" for n in deleted if n not in steps.recreate]
        daemon.networkctl("reload")
        changes.actions.append("reloaded systemd-networkd")
        if desired:
            names = [n for slaves in steps.bonds.values() for n in slaves] + list(steps.bonds)
            daemon.wait_links(names, ctx.timeout_s)
            changes.actions += [f"enslaved {n}" for n in self._enslave(steps.bonds)]
            changes.actions += converge_offloads(wanted.offloads).values()
            # networkd sets [NetworkEmulator] as it configures each port; whether it removes a netem
            # qdisc whose section went is undocumented: converging after the wait covers both
            changes.actions += converge_delays(wanted.delays).values()
            changes.actions += self._set_ns(rules, list(steps.bonds))
        return changes

    def _set_ns(self, rules: dict[str, bytes], bonds: list[str]) -> list[str]:
        """Set what the rules set on grebond's ``bonds`` where the kernel differs: a bond that
        existed sees no new "add" event, and udev runs a rule for a new one asynchronously."""
        todo = _ns_to_set(rules, bonds, read_state())
        if todo:
            # its raw socket module stays off the render path, which imports this module
            from grebond.kernel.bond_attrs import set_bond_attrs

            for bond, (targets, missed, _what) in todo.items():
                set_bond_attrs(bond, missed_max=missed, ns_ip6_targets=targets)
        return [f"set {bond} {what}" for bond, (_t, _m, what) in todo.items()]

    def _set_macs(self, macs: dict[str, str]) -> list[str]:
        for bond, mac in macs.items():
            set_mac(bond, mac)
        return [f"set {b} mac {m}" for b, m in macs.items()]

    def _enslave(self, bonds: dict[str, list[str]]) -> list[str]:
        """Attach each tunnel networkd left unenslaved (it never re-attaches after a recreate on 252)."""
        state = read_state()
        done: list[str] = []
        for bond, slaves in bonds.items():
            if state.link(bond) is None:
                continue
            todo = [s for s in slaves if (link := state.link(s)) is not None
                    and (link.master != bond or not link.admin_up)]
            if todo:
                enslave(bond, todo)
                done += todo
        return done


def _sync_udev(rule_changes: Changes, steps: Plan) -> Changes:
    """udev reads both grebond's rules and its .link files, and only when it reloads: one reload,
    once both are written and before networkd creates a device, when either changed."""
    if rule_changes.written or rule_changes.removed or any(n.endswith(".link") for n in [*steps.write, *steps.remove]):
        daemon.reload_udev()
    return rule_changes


def _ns_to_set(rules: dict[str, bytes], bonds: list[str],
               state: KernelState) -> dict[str, tuple[tuple[str, ...], int | None, str]]:
    """bond -> (NS targets, arp_missed_max or None, what differs) for each of ``bonds`` that exists
    and differs from its rule; a bond without a rule must have no NS targets."""
    wanted = {bond: (targets, missed) for bond, targets, missed in map(rule_settings, rules.values())}
    out: dict[str, tuple[tuple[str, ...], int | None, str]] = {}
    for bond in bonds:
        link = state.link(bond)
        if link is None or link.bond is None:
            continue
        targets, missed = wanted.get(bond, ((), None))
        parts = []
        if tuple(link.bond.ns_ip6_targets) != targets:
            parts.append(f"ns_ip6_target {','.join(targets) or '(none)'}")
        if missed is not None and link.bond.arp_missed_max != missed:
            parts.append(f"arp_missed_max {missed}")
        if parts:
            out[bond] = (targets, missed, ", ".join(parts))
    return out


__all__ = ["NetworkdBackend", "NetworkdSnapshot", "Plan", "plan", "split_files"]
