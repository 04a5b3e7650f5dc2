"""Backend: NetworkManager profiles, over the system D-Bus when NM runs, as keyfiles when it does not.

Live ``apply`` (NM running):
1. Render for the running NM's version (``--target-nm`` overrides) and read every profile NM has.
2. Plan by UUID: add a profile that is absent (AddConnection2, to disk), update one that
   differs (Update2), leave one that is equal, delete grebond's profiles the model no longer
   has. "Differs" is judged after filling NM's defaults: GetSettings omits properties at their
   default values, and NM normalises bond options (it drops ``miimon=0`` next to an ARP monitor).
   grebond's profiles are recognised by the user-data key ``net.grebond.generated``, never by
   name, so nobody else's profile is ever touched.
3. All of it inside an NM checkpoint of the affected devices (rollback timeout longer than our
   own, so a crashed grebond is undone by NM itself). Activate the bond (its ports follow,
   ``autoconnect-slaves``), wait until NM reports all of them activated, then run the verifier on
   the kernel. Any failure: CheckpointRollback, ApplyFailed (exit 1) with the report. Success:
   CheckpointDestroy.

Offline (``--root``, ``--write-only``, or NM installed but not running): keyfiles into
ROOT/etc/NetworkManager/system-connections, mode 0600, root-owned; NM loads them when it starts.

All D-Bus code is in ``nm_dbus``; it is imported only when NM is actually spoken to.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grebond.backends.base import Availability, Backend, Changes, Context
from grebond.errors import ApplyFailed, GrebondError, OwnershipError, SystemAccessError, UsageError
from grebond.files import fsync_dir, is_generated, remove_generated, under_root, write_atomic
from grebond.model import ARP_VALIDATE, LACP_RATES, XMIT_HASH_POLICIES, BondMode
from grebond.procs import running_pid
from grebond.renderer import Rendering
from grebond.renderer import networkmanager as renderer
from grebond.renderer.ini import parse_ini

if TYPE_CHECKING:
    from grebond.backends.nm_dbus import NMClient

Plain = renderer.Plain
NM_BINARY = Path("/usr/sbin/NetworkManager")
SYSTEM_BUS_SOCKET = Path("/run/dbus/system_bus_socket")
CHECKPOINT_MARGIN_S = 60       # NM's own rollback fires this long after our timeout, if grebond died
PORT_NUDGE_S = 3.0             # a port not activating this long after its bond is activated explicitly


# ----------------------------------------------------------------------------- comparing

# NM's defaults for what grebond sends: GetSettings leaves these out.
_DEFAULTS: dict[tuple[str, str], tuple[str, Any]] = {
    ("connection", "autoconnect"): ("b", True),
    ("connection", "autoconnect-slaves"): ("i", -1),
    ("connection", "master"): ("s", ""),
    ("connection", "slave-type"): ("s", ""),
    ("802-3-ethernet", "mtu"): ("u", 0),
    ("802-3-ethernet", "assigned-mac-address"): ("s", ""),
    ("ip-tunnel", "local"): ("s", ""),
    ("ip-tunnel", "ttl"): ("u", 0),
    ("ip-tunnel", "input-key"): ("s", ""),
    ("ip-tunnel", "output-key"): ("s", ""),
    ("ip-tunnel", "encapsulation-limit"): ("u", 0),
    ("ip-tunnel", "mtu"): ("u", 0),
    ("ipv4", "address-data"): ("aa{sv}", []),
    ("ipv6", "address-data"): ("aa{sv}", []),
    ("user", "data"): ("a{ss}", {}),
}
# NM 1.42's bond option defaults (nm-setting-bond.c); miimon's depends on arp_interval, see below
_BOND_DEFAULTS = {"arp_interval": "0", "arp_validate": "none", "arp_ip_target": "", "updelay": "0",
                  "downdelay": "0", "xmit_hash_policy": "layer2", "min_links": "0", "packets_per_slave": "1",
                  "lacp_rate": "slow", "primary": "", "arp_missed_max": "2", "arp_all_targets": "any"}
_BOND_NAMES = {"mode": [m.value for m in BondMode], "arp_validate": list(ARP_VALIDATE),
               "xmit_hash_policy": list(XMIT_HASH_POLICIES), "lacp_rate": list(LACP_RATES)}


def effective_bond_options(options: dict[str, str]) -> dict[str, str]:
    """Bond options as NM means them: names for numbers, defaults removed.

    NM's miimon default is 100, but 0 when arp_interval is set (NM then drops an explicit
    ``miimon=0``), so ``{miimon: 0, arp_interval: 100}`` and ``{arp_interval: 100}`` are equal.
    """
    out: dict[str, str] = {}
    for key, value in options.items():
        value = str(value).strip()
        names = _BOND_NAMES.get(key)
        if names and value.isdigit() and int(value) < len(names):
            value = names[int(value)]
        if key == "arp_ip_target":
            value = ",".join(sorted(v for v in value.replace(" ", ",").split(",") if v))
        out[key] = value
    miimon_default = "0" if out.get("arp_interval", "0") not in ("", "0") else "100"
    return {k: v for k, v in sorted(out.items())
            if v != (miimon_default if k == "miimon" else _BOND_DEFAULTS.get(k))}


def _norm(setting: str, key: str, value: Any) -> Any:
    """One property in a form where equal meaning compares equal."""
    if (setting, key) == ("bond", "options"):
        return effective_bond_options(value)
    if key == "address-data":
        return sorted((str(ip_address(d["address"][1])), int(d["prefix"][1])) for d in value)
    if (setting, key) in (("ip-tunnel", "local"), ("ip-tunnel", "remote")) and value:
        return str(ip_address(value))
    if key == "assigned-mac-address":
        return str(value).lower()
    return value


def _actual_value(actual: Plain, setting: str, key: str) -> Any:
    found = actual.get(setting, {}).get(key)
    if found is None and (setting, key) == ("802-3-ethernet", "assigned-mac-address"):
        cloned = actual.get(setting, {}).get("cloned-mac-address")   # 'ay' on older daemons
        if cloned is not None:
            return ":".join(f"{b:02x}" for b in cloned[1])
    if found is None:
        found = _DEFAULTS.get((setting, key), (None, None))
    return found[1]


def differences(desired: Plain, actual: Plain) -> list[str]:
    """'setting.key' of every property grebond sets whose value NM holds differently."""
    out = []
    for setting, keys in desired.items():
        for key, (_sig, value) in keys.items():
            if _norm(setting, key, value) != _norm(setting, key, _actual_value(actual, setting, key)):
                out.append(f"{setting}.{key}")
    return out


def is_grebonds(settings: Plain) -> bool:
    """A profile grebond made: it carries the user-data marker (which NM keeps when it rewrites a keyfile)."""
    data = settings.get("user", {}).get("data")
    return bool(data and renderer.USER_KEY in data[1])


def _name(settings: Plain) -> str:
    conn = settings.get("connection", {})
    return str(conn.get("id", ("s", "?"))[1])


def _restorable(settings: Plain) -> Plain:
    """GetSettings' answer minus what NM maintains itself (connection.timestamp), so writing it
    back restores the profile byte for byte instead of adding a timestamp= line."""
    out = {name: dict(keys) for name, keys in settings.items()}
    out.get("connection", {}).pop("timestamp", None)
    return out


# ----------------------------------------------------------------------------- planning

@dataclass
class Plan:
    """What to do to NM's profiles; each list holds (uuid, connection id)."""

    add: list[tuple[str, str]] = field(default_factory=list)
    update: list[tuple[str, str, list[str]]] = field(default_factory=list)   # + which properties differ
    delete: list[tuple[str, str]] = field(default_factory=list)
    same: list[tuple[str, str]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)                     # uuid -> NM object path
    ifnames: dict[str, str] = field(default_factory=dict)                   # uuid -> interface name
    bonds: set[str] = field(default_factory=set)                            # uuids of bond profiles
    previous: dict[str, Plain] = field(default_factory=dict)                # uuid -> settings before the change

    @property
    def empty(self) -> bool:
        return not (self.add or self.update or self.delete)

    def lines(self) -> list[str]:
        out = [f"add connection {n} ({u})" for u, n in self.add]
        out += [f"update connection {n} ({u}): {', '.join(d)}" for u, n, d in self.update]
        out += [f"delete connection {n} ({u})" for u, n in self.delete]
        return out


async def _plan(nm: NMClient, desired: dict[str, Plain]) -> Plan:
    plan = Plan()
    existing: dict[str, tuple[str, Plain]] = {}
    for path in await nm.connections():
        try:
            settings = await nm.get_settings(path)
        except SystemAccessError:
            continue        # deleted meanwhile
        uuid = str(settings.get("connection", {}).get("uuid", ("s", ""))[1])
        existing[uuid] = (path, settings)
    for uuid, want in desired.items():
        plan.ifnames[uuid] = want["connection"]["interface-name"][1]
        if want["connection"]["type"][1] == "bond":
            plan.bonds.add(uuid)
        if uuid not in existing:
            plan.add.append((uuid, _name(want)))
            continue
        path, have = existing[uuid]
        plan.paths[uuid] = path
        plan.previous[uuid] = have
        diff = differences(want, have)
        (plan.update.append((uuid, _name(want), diff)) if diff else plan.same.append((uuid, _name(want))))
    for uuid, (path, have) in existing.items():
        if uuid not in desired and is_grebonds(have):
            plan.delete.append((uuid, _name(have)))
            plan.paths[uuid] = path
            plan.previous[uuid] = have
            plan.ifnames[uuid] = str(have.get("connection", {}).get("interface-name", ("s", ""))[1])
            if have.get("connection", {}).get("type", ("s", ""))[1] == "bond":
                plan.bonds.add(uuid)
    return plan


# ----------------------------------------------------------------------------- backend

class NetworkManagerBackend(Backend):
    name = "networkmanager"
    summary = "NetworkManager profiles over D-Bus (keyfiles offline); persistent, with checkpoint rollback"
    persistent = True

    # ------------------------------------------------------------------ pure
    def render(self, ctx: Context) -> Rendering:
        return self._render(ctx, ctx.target_nm or renderer.DEFAULT_TARGET_NM)

    def _render(self, ctx: Context, target_nm: str) -> Rendering:
        try:
            renderer.parse_version(target_nm)
        except ValueError as exc:
            raise UsageError(f"--target-nm: {exc}") from None
        return renderer.render(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node, target_nm)

    def directory(self, ctx: Context) -> Path:
        return under_root(ctx.root, renderer.KEYFILE_DIR)

    # ------------------------------------------------------------- probing
    def available(self) -> Availability:
        pid = _nm_pid()
        if pid is None:
            why = "is not running" if NM_BINARY.exists() else "is not installed"
            return Availability(False, f"NetworkManager {why}")
        if not SYSTEM_BUS_SOCKET.exists():
            return Availability(False, f"NetworkManager runs (pid {pid}) but there is no system bus at "
                                       f"{SYSTEM_BUS_SOCKET}")
        return Availability(True, f"NetworkManager is running (pid {pid})")

    # ------------------------------------------------------------- keyfiles
    def current_files(self, ctx: Context) -> dict[str, bytes]:
        """grebond's keyfiles in the directory: with its header, or rewritten by NM but still marked."""
        directory = self.directory(ctx)
        if not directory.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if _is_our_keyfile(p)}

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        return self._write_files({f.name: f.content for f in rendering.files}, ctx)

    def _write_files(self, desired: dict[str, bytes], ctx: Context) -> Changes:
        """Make grebond's keyfiles exactly ``desired`` (0600, root); nobody else's file is touched."""
        directory = self.directory(ctx)
        changes = Changes()
        for name in desired:              # refuse before changing anything
            path = directory / name
            if (path.exists() or path.is_symlink()) and not _is_our_keyfile(path):
                raise OwnershipError(path)
        current = self.current_files(ctx)
        owner = 0 if os.geteuid() == 0 else None
        for name, content in sorted(desired.items()):
            path = directory / name
            if ctx.dry_run:
                same = current.get(name) == content and (path.stat().st_mode & 0o7777) == renderer.KEYFILE_MODE
                (changes.unchanged if same else changes.written).append(str(path))
            elif _write_keyfile(path, content, owner):
                changes.written.append(str(path))
            else:
                changes.unchanged.append(str(path))
        for name in sorted(set(current) - set(desired)):
            path = directory / name
            if not ctx.dry_run:
                _remove_keyfile(path)
            changes.removed.append(str(path))
        return changes

    # ------------------------------------------------------------- live
    def apply(self, ctx: Context) -> Changes:
        import asyncio

        if ctx.offline:
            return self.write(self.render(ctx), ctx)
        if _nm_pid() is None:
            return self._not_running(ctx, lambda: self.write(self.render(ctx), ctx))
        previous = self.current_files(ctx)
        try:
            return asyncio.run(self._apply(ctx))
        except SystemAccessError as exc:
            if ctx.dry_run or not ctx.rollback or _nm_pid() is not None:
                raise
            # NM stopped in the middle: its checkpoint died with it, and what it had saved of our
            # profiles is the new state. Put grebond's previous keyfiles back: NM loads them when
            # it starts again, as at boot.
            try:
                self._write_files(previous, ctx)
                restored = "restored the previous keyfiles; NetworkManager loads them when it starts"
            except GrebondError as again:
                restored = f"restoring the previous keyfiles failed too: {again}"
            raise SystemAccessError(f"NetworkManager stopped during the apply ({exc}); {restored}") from exc

    def remove(self, ctx: Context) -> Changes:
        import asyncio

        if ctx.offline:
            return self._write_files({}, ctx)
        if _nm_pid() is None:
            return self._not_running(ctx, lambda: self._write_files({}, ctx))
        return asyncio.run(self._remove(ctx))

    def _not_running(self, ctx: Context, write: Any) -> Changes:
        """NM installed but stopped (an install hook, a rescue shell): keyfiles it will load when it starts."""
        if not NM_BINARY.exists() and not under_root(ctx.root, "/etc/NetworkManager").is_dir():
            raise SystemAccessError("NetworkManager is not installed (no /usr/sbin/NetworkManager); install "
                                    "network-manager or choose another backend")
        changes: Changes = write()
        changes.actions.append("NetworkManager is not running: only the keyfiles changed; it loads them when it "
                               "starts")
        return changes

    async def _connect(self, ctx: Context) -> NMClient:
        from grebond.backends.nm_dbus import NMClient

        return await NMClient.connect(call_timeout_s=max(ctx.timeout_s, 10.0))

    async def _apply(self, ctx: Context) -> Changes:
        import asyncio

        nm = await self._connect(ctx)
        try:
            version = await nm.version()
            rendering = self._render(ctx, ctx.target_nm or version)
            desired: dict[str, Plain] = rendering.data
            plan = await _plan(nm, desired)
            changes = Changes(unchanged=[f"connection {n}" for _u, n in plan.same])
            if ctx.dry_run:
                changes.actions += plan.lines() or []
                if not await self._all_active(nm, desired):
                    changes.actions.append(f"activate {self._bond_ids(desired)}")
                return changes
            if plan.empty and await self._all_active(nm, desired):
                report = await asyncio.to_thread(_verify, ctx, 2.0)
                if report.ok:
                    return changes
            return await self._converge(nm, ctx, desired, plan, changes)
        finally:
            nm.close()

    async def _converge(self, nm: NMClient, ctx: Context, desired: dict[str, Plain], plan: Plan,
                        changes: Changes) -> Changes:
        import asyncio

        from grebond.backends import nm_dbus

        devices = [d for d in [await nm.device_by_iface(i) for i in sorted(set(plan.ifnames.values()))] if d]
        # NM (checked on 1.42.4) accepts DISCONNECT_NEW_DEVICES only with an empty (= every device)
        # list. With our devices listed, DELETE_NEW_CONNECTIONS alone still removes what we added,
        # and deleting a profile takes down the software device NM created for it.
        flags = nm_dbus.CHECKPOINT_DELETE_NEW_CONNECTIONS
        if not devices:
            flags |= nm_dbus.CHECKPOINT_DISCONNECT_NEW_DEVICES
        checkpoint = await nm.checkpoint_create(devices, int(ctx.timeout_s) + CHECKPOINT_MARGIN_S, flags)
        changes.actions.append(f"created checkpoint {checkpoint.rsplit('/', 1)[-1]} over "
                               f"{len(devices) or 'all'} device(s)")
        try:
            await self._change_profiles(nm, desired, plan, changes)
            await self._activate(nm, ctx, desired, plan, changes)
            report = await asyncio.to_thread(_verify, ctx, ctx.timeout_s)
            if not report.ok:
                raise _NotVerified(report.lines())
        except (_NotVerified, SystemAccessError, ApplyFailed) as exc:
            lines = exc.lines if isinstance(exc, _NotVerified) else [str(exc)]
            if not ctx.rollback:
                await nm.checkpoint_destroy(checkpoint)
                raise ApplyFailed("the new state did not come up (kept: --no-rollback):\n" + "\n".join(lines)) from None
            result = await nm.checkpoint_rollback(checkpoint)
            failed = {d: r for d, r in result.items() if r not in ("ok", "unmanaged")}
            if failed:
                # NM 1.42 answers 'failed' for a profile updated in place (sound only from 1.48):
                # put back the settings saved before the change ourselves, then re-activate.
                failed = await self._restore(nm, ctx, plan, failed)
            done = ("rolled back to the previous NetworkManager state" if not failed
                    else f"rollback incomplete: {failed}")
            raise ApplyFailed(f"the new state did not come up; {done}:\n" + "\n".join(lines)) from None
        await nm.checkpoint_destroy(checkpoint)
        return changes

    async def _restore(self, nm: NMClient, ctx: Context, plan: Plan, failed: dict[str, str]) -> dict[str, str]:
        """Undo our profile changes from the settings saved in the plan; return what still failed."""
        restore = Plan(paths=dict(plan.paths), ifnames=dict(plan.ifnames), bonds=set(plan.bonds))
        wanted: dict[str, Plain] = {}
        saved = {uuid: _restorable(settings) for uuid, settings in plan.previous.items()}
        try:
            for uuid, _name_ in plan.add:               # ours and new: delete what the checkpoint left
                path = await nm.get_by_uuid(uuid)
                if path:
                    await nm.delete(path)
            for uuid, name_, _diff in plan.update:      # updated in place: the saved settings back
                path = await nm.get_by_uuid(uuid) or plan.paths[uuid]
                await nm.update(path, saved[uuid])
                restore.paths[uuid] = path
                restore.update.append((uuid, name_, ["restored"]))
                wanted[uuid] = saved[uuid]
            for uuid, name_ in plan.delete:             # deleted: add the saved profile again
                if await nm.get_by_uuid(uuid) is None:
                    restore.paths[uuid] = await nm.add(saved[uuid])
                    restore.add.append((uuid, name_))
                wanted[uuid] = saved[uuid]
            if wanted:
                for uuid, _n in plan.same:
                    wanted[uuid] = saved[uuid]
                await self._activate(nm, ctx, wanted, restore, Changes())
        except (SystemAccessError, ApplyFailed) as exc:
            return {**failed, "grebond restore": str(exc)}
        return {}

    async def _change_profiles(self, nm: NMClient, desired: dict[str, Plain], plan: Plan, changes: Changes) -> None:
        # ports before bonds when deleting; bonds before ports when adding (ports name their bond)
        for uuid, name in sorted(plan.delete, key=lambda x: x[0] in plan.bonds):
            await nm.delete(plan.paths[uuid])
            changes.actions.append(f"deleted connection {name}")
        for uuid, name, diff in plan.update:
            await nm.update(plan.paths[uuid], desired[uuid])
            changes.actions.append(f"updated connection {name} ({', '.join(diff)})")
        for uuid, name in sorted(plan.add, key=lambda x: x[0] not in plan.bonds):
            plan.paths[uuid] = await nm.add(desired[uuid])
            changes.actions.append(f"added connection {name}")

    async def _activate(self, nm: NMClient, ctx: Context, desired: dict[str, Plain], plan: Plan,
                        changes: Changes) -> None:
        """(Re-)activate each bond with its ports; wait until NM says every one is activated."""
        from grebond.backends import nm_dbus

        changed = {u for u, _n in plan.add} | {u for u, _n, _d in plan.update}
        active = {a.uuid: a for a in await nm.active_connections()}
        # A changed profile takes effect only on activation; deactivate first so NM recreates the
        # devices (a tunnel's endpoints cannot change in place) rather than reapplying a subset.
        for uuid in sorted(changed & set(active), key=lambda u: desired[u]["connection"]["type"][1] == "bond"):
            await nm.deactivate(active[uuid].path)
        if changed & set(active):
            await self._wait(nm, lambda now: not (changed & {u for u, a in now.items()
                                                            if a.state != nm_dbus.DEACTIVATED}),
                             ctx.timeout_s, "deactivating the changed connections")
        active = {a.uuid: a for a in await nm.active_connections()}
        bonds = [u for u, p in desired.items() if p["connection"]["type"][1] == "bond"]
        for bond in bonds:
            ports = [u for u, p in desired.items() if p["connection"].get("master", ("s", ""))[1] == bond]
            if bond in active and active[bond].state == nm_dbus.ACTIVATED:
                # the bond itself is fine: (re-)activate only the ports that need it, traffic keeps flowing
                for port in ports:
                    if port in changed or port not in active:
                        await nm.activate(plan.paths[port])
                        changes.actions.append(f"activated {_name(desired[port])}")
            else:
                await nm.activate(plan.paths[bond])     # its ports follow (autoconnect-slaves)
                changes.actions.append(f"activated {_name(desired[bond])}")
            await self._wait_bond(nm, ctx, bond, ports, plan, desired)

    async def _wait_bond(self, nm: NMClient, ctx: Context, bond: str, ports: list[str], plan: Plan,
                         desired: dict[str, Plain]) -> None:
        import asyncio

        from grebond.backends import nm_dbus

        deadline = time.monotonic() + ctx.timeout_s
        bond_up_at: float | None = None
        seen = False
        nudged: set[str] = set()
        while True:
            now = {a.uuid: a for a in await nm.active_connections()}
            state = {u: (now[u].state if u in now else nm_dbus.DEACTIVATED) for u in [bond, *ports]}
            if all(s == nm_dbus.ACTIVATED for s in state.values()):
                return
            if bond in now:
                seen = True
            elif seen:      # it was activating and NM dropped it: activation failed
                raise ApplyFailed(f"NetworkManager gave up activating {_name(desired[bond])}; see its log "
                                  "(journalctl -u NetworkManager)")
            if state[bond] == nm_dbus.ACTIVATED:
                bond_up_at = bond_up_at or time.monotonic()
                for port in ports:   # autoconnect-slaves should have started them; nudge a straggler once
                    if (port not in now and port not in nudged
                            and time.monotonic() - bond_up_at > PORT_NUDGE_S):
                        await nm.activate(plan.paths[port])
                        nudged.add(port)
            if time.monotonic() >= deadline:
                pending = ", ".join(f"{_name(desired[u])} {_STATE.get(s, s)}" for u, s in state.items()
                                    if s != nm_dbus.ACTIVATED)
                raise ApplyFailed(f"NetworkManager did not activate everything within {ctx.timeout_s:g} s: {pending}")
            await asyncio.sleep(0.2)

    async def _wait(self, nm: NMClient, done: Any, timeout_s: float, what: str) -> None:
        import asyncio

        deadline = time.monotonic() + timeout_s
        while not done({a.uuid: a for a in await nm.active_connections()}):
            if time.monotonic() >= deadline:
                raise ApplyFailed(f"NetworkManager did not finish {what} within {timeout_s:g} s")
            await asyncio.sleep(0.2)

    async def _all_active(self, nm: NMClient, desired: dict[str, Plain]) -> bool:
        from grebond.backends import nm_dbus

        states = {a.uuid: a.state for a in await nm.active_connections()}
        return all(states.get(u) == nm_dbus.ACTIVATED for u in desired)

    @staticmethod
    def _bond_ids(desired: dict[str, Plain]) -> str:
        return ", ".join(_name(p) for p in desired.values() if p["connection"]["type"][1] == "bond")

    async def _remove(self, ctx: Context) -> Changes:
        nm = await self._connect(ctx)
        try:
            plan = await _plan(nm, {})
            ours = {u for u, _n in plan.delete}
            # also profiles with this model's UUIDs that lost their marker (edited by hand)
            try:
                wanted = self.render(ctx).data
            except GrebondError:
                wanted = {}
            for uuid in wanted:
                if uuid not in ours and (path := await nm.get_by_uuid(uuid)):
                    plan.delete.append((uuid, _name(wanted[uuid])))
                    plan.paths[uuid] = path
                    plan.ifnames[uuid] = wanted[uuid]["connection"]["interface-name"][1]
            changes = Changes()
            if ctx.dry_run:
                changes.actions += plan.lines()
                return changes
            await self._change_profiles(nm, {}, plan, changes)
        finally:
            nm.close()
        leftovers = self._write_files({}, ctx)     # keyfiles NM never loaded
        changes.removed += leftovers.removed
        return changes


class _NotVerified(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


_STATE = {0: "unknown", 1: "activating", 2: "activated", 3: "deactivating", 4: "not active"}


def _verify(ctx: Context, settle_s: float):  # type: ignore[no-untyped-def]
    """The verifier's report (runs in a thread: pyroute2 0.9's sync IPRoute refuses a running loop)."""
    try:
        from grebond.verifier import verify
    except ImportError as exc:
        raise SystemAccessError(f"cannot verify the new state: {exc}") from exc
    return verify(ctx.config, ctx.node, settle_s=settle_s)


def _has_marker(path: Path) -> bool:
    try:
        sections = parse_ini(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return False
    return renderer.USER_KEY in sections.get("user", {})


def _is_our_keyfile(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    return is_generated(path) or _has_marker(path)


def _write_keyfile(path: Path, content: bytes, owner: int | None) -> bool:
    """Atomic write, also over a keyfile NM rewrote (no header, only the marker) — still grebond's."""
    if path.exists() and not is_generated(path):
        if path.read_bytes() == content:
            return False
        tmp = path.with_name(f".{path.name}.grebond-new")
        write_atomic(tmp, content, renderer.KEYFILE_MODE, owner, owner)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        return True
    return write_atomic(path, content, renderer.KEYFILE_MODE, owner, owner)


def _remove_keyfile(path: Path) -> None:
    if not remove_generated(path) and _has_marker(path):
        path.unlink()
        fsync_dir(path.parent)


def _nm_pid() -> int | None:
    """The pid of a running NetworkManager, from /proc (no D-Bus: available() must be cheap)."""
    return running_pid("NetworkManager")


__all__ = ["NetworkManagerBackend", "Plan", "differences", "effective_bond_options", "is_grebonds"]
