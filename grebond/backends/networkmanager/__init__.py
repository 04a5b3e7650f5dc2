"""Backend: NetworkManager profiles over the system D-Bus, with a checkpoint; keyfiles offline.

A live change (``change``):
1. Render for the running NM's version (``--target-nm`` overrides) and read every profile NM has.
2. Plan by UUID (``plan.plan_profiles``): add a profile that is absent (AddConnection2, to disk),
   update one that differs (Update2), leave one that is equal, delete grebond's profiles the
   model no longer has.
3. All of it inside an NM checkpoint of the affected devices, whose own rollback timeout is
   longer than grebond's (so a crashed grebond is undone by NM itself). Activate each bond (its
   ports follow, ``autoconnect-slaves``) and wait until NM reports all of them activated.
The transaction then verifies the kernel; ``restore`` rolls the checkpoint back (and, where NM
1.42's rollback fails for a profile updated in place, writes the saved settings back itself),
``commit`` destroys it. With NetworkManager gone in the middle, ``restore`` puts grebond's
previous keyfiles back, which NM loads when it starts again, as at boot.

Offline (``--root``, ``--write-only``): keyfiles into ROOT/etc/NetworkManager/system-connections,
mode 0600, root-owned; NM loads them when it starts.

All D-Bus code is in ``dbus``; it is imported only when NM is actually spoken to.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grebond.backends.base import Availability, Backend, Context, Snapshot
from grebond.backends.networkmanager.compare import (
    actual_value,
    controller_of,
    differences,
    is_bond,
    name_of,
    restorable,
    uuid_of,
)
from grebond.backends.networkmanager.keyfiles import foreign_keyfiles, keyfile_directory
from grebond.backends.networkmanager.plan import Plan, foreign_profiles, plan_profiles
from grebond.changes import Changes
from grebond.errors import ApplyFailed, GrebondError, SystemAccessError, UsageError
from grebond.procs import running_pid
from grebond.renderer import Rendering
from grebond.renderer import networkmanager as renderer

if TYPE_CHECKING:
    from grebond.backends.networkmanager.dbus import Active, NMClient

Plain = renderer.Plain
NM_BINARY = Path("/usr/sbin/NetworkManager")
SYSTEM_BUS_SOCKET = Path("/run/dbus/system_bus_socket")
CHECKPOINT_MARGIN_S = 60       # NM's own rollback fires this long after grebond's deadline, if grebond died
PORT_NUDGE_S = 3.0             # a port not activating this long after its bond is activated explicitly
_STATE = {0: "unknown", 1: "activating", 2: "activated", 3: "deactivating", 4: "not active"}


def nm_pid() -> int | None:
    """The pid of a running NetworkManager, from /proc (no D-Bus: available() must be cheap)."""
    return running_pid("NetworkManager")


@dataclass
class NMSnapshot(Snapshot):
    """grebond's keyfiles before the change; once ``change`` ran, its checkpoint and plan."""

    files: dict[str, bytes]
    checkpoint: str | None = None
    plan: Plan | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return {"files": {n: base64.b64encode(c).decode() for n, c in self.files.items()},
                "checkpoint": self.checkpoint, "plan": self.plan.to_json() if self.plan else None}


class NetworkManagerBackend(Backend):
    name = "networkmanager"
    summary = "NetworkManager profiles over D-Bus (keyfiles offline); persistent, with checkpoint rollback"

    def render(self, ctx: Context) -> Rendering:
        return renderer.render(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node, self._target(ctx))

    @staticmethod
    def _target(ctx: Context, running: str | None = None) -> str:
        target = ctx.target_nm or running or renderer.DEFAULT_TARGET_NM
        try:
            renderer.parse_version(target)
        except ValueError as exc:
            raise UsageError(f"--target-nm: {exc}") from None
        return target

    def available(self) -> Availability:
        pid = nm_pid()
        if pid is None:
            why = "is not running" if NM_BINARY.exists() else "is not installed"
            return Availability(False, f"NetworkManager {why}")
        if not SYSTEM_BUS_SOCKET.exists():
            return Availability(False, f"NetworkManager runs (pid {pid}) but there is no system D-Bus "
                                       f"({SYSTEM_BUS_SOCKET} is missing)")
        return Availability(True, f"NetworkManager is running (pid {pid})")

    def ready(self, ctx: Context) -> None:
        availability = self.available()
        if availability.ok:
            return
        if nm_pid() is None:
            raise SystemAccessError(f"{availability.reason}; start it (systemctl start NetworkManager), or write "
                                    "the keyfiles only with --write-only or --root")
        raise SystemAccessError(f"{availability.reason}; start dbus, or write keyfiles only with --write-only or "
                                "--root")

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        changes = keyfile_directory(ctx.root).sync({f.name: f.content for f in rendering.files}, ctx.dry_run)
        ifnames = {b.name for b in ctx.config.bonds_of(ctx.node)} | {
            t.name for b in ctx.config.bonds_of(ctx.node) for t in b.tunnels}
        changes.notes += foreign_keyfiles(ctx.root, ifnames)
        return changes

    # ------------------------------------------------------------- the transaction's steps
    def snapshot(self, ctx: Context) -> NMSnapshot:
        return NMSnapshot(keyfile_directory(ctx.root).current())

    def snapshot_from_json(self, data: dict[str, Any]) -> NMSnapshot:
        plan = data.get("plan")
        return NMSnapshot({n: base64.b64decode(c) for n, c in data.get("files", {}).items()},
                          data.get("checkpoint"), Plan.from_json(plan) if plan else None)

    def change(self, ctx: Context, snapshot: Snapshot) -> Changes:
        import asyncio

        assert isinstance(snapshot, NMSnapshot)
        if ctx.dry_run and nm_pid() is None:
            changes = self.write(self.render(ctx), ctx)
            changes.notes.append("NetworkManager is not running: these are the keyfiles --write-only would write")
            return changes
        try:
            return asyncio.run(self._dry_run(ctx) if ctx.dry_run else self._change(ctx, snapshot))
        except SystemAccessError as exc:
            if nm_pid() is None:    # a call that died with NM comes back as a D-Bus error (NoReply) too
                raise SystemAccessError(f"NetworkManager stopped during the apply ({exc})") from exc
            raise ApplyFailed(str(exc)) from exc    # NM refused a setting: the change did not take

    def restore(self, ctx: Context, snapshot: Snapshot) -> str:
        import asyncio

        assert isinstance(snapshot, NMSnapshot)
        if nm_pid() is None:
            # NM stopped in the middle: its checkpoint died with it, and what it had saved of our
            # profiles is the new state. grebond's previous keyfiles go back: NM loads them when it starts.
            try:
                keyfile_directory(ctx.root).sync(snapshot.files)
            except GrebondError as exc:
                return f"restoring the previous keyfiles failed too: {exc}"
            return "restored the previous keyfiles; NetworkManager loads them when it starts"
        if snapshot.checkpoint is None:
            return "NetworkManager had not been changed"
        try:
            return asyncio.run(self._roll_back(ctx, snapshot))
        except GrebondError as exc:
            return f"rolling back NetworkManager failed: {exc}"

    def commit(self, ctx: Context, snapshot: Snapshot) -> None:
        import asyncio

        assert isinstance(snapshot, NMSnapshot)
        if snapshot.checkpoint is not None:
            asyncio.run(self._destroy(ctx, snapshot.checkpoint))
            snapshot.checkpoint = None

    def remove(self, ctx: Context) -> Changes:
        import asyncio

        if ctx.offline:
            return keyfile_directory(ctx.root).sync({}, ctx.dry_run)
        self.ready(ctx)
        return asyncio.run(self._remove(ctx))

    # ------------------------------------------------------------- over D-Bus
    async def _connect(self, ctx: Context) -> NMClient:
        from grebond.backends.networkmanager.dbus import NMClient

        return await NMClient.connect(call_timeout_s=max(ctx.timeout_s, 10.0))

    async def _desired(self, nm: NMClient, ctx: Context) -> dict[str, Plain]:
        target = self._target(ctx, await nm.version())
        return renderer.settings(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node, target)

    async def _profiles(self, nm: NMClient) -> dict[str, tuple[str, Plain]]:
        existing: dict[str, tuple[str, Plain]] = {}
        for path in await nm.connections():
            try:
                settings = await nm.get_settings(path)
            except SystemAccessError:
                continue        # deleted meanwhile
            existing[uuid_of(settings)] = (path, settings)
        return existing

    async def _dry_run(self, ctx: Context) -> Changes:
        nm = await self._connect(ctx)
        try:
            desired = await self._desired(nm, ctx)
            existing = await self._profiles(nm)
            plan = plan_profiles(desired, existing)
            changes = Changes(unchanged=[f"connection {n}" for _u, n in plan.same],
                              notes=foreign_profiles(desired, existing))
            changes.actions += plan.lines()
            if not await self._all_active(nm, desired):
                changes.actions.append(f"activate {', '.join(name_of(p) for p in desired.values() if is_bond(p))}")
            changes.diff = settings_diff(desired, {u: s for u, (_p, s) in existing.items()}, plan)
            return changes
        finally:
            nm.close()

    async def _change(self, ctx: Context, snapshot: NMSnapshot) -> Changes:
        import asyncio

        from grebond.backends.networkmanager import dbus
        from grebond.verifier import verify

        nm = await self._connect(ctx)
        try:
            desired = await self._desired(nm, ctx)
            existing = await self._profiles(nm)
            plan = snapshot.plan = plan_profiles(desired, existing)
            changes = Changes(unchanged=[f"connection {n}" for _u, n in plan.same],
                              notes=foreign_profiles(desired, existing))
            if plan.empty and await self._all_active(nm, desired):
                # every profile equal and active: re-activate only if the kernel drifted under NM
                report = await asyncio.to_thread(verify, ctx.config, ctx.node, settle_s=2.0)
                if report.ok:
                    return changes
            devices = [d for d in [await nm.device_by_iface(i) for i in sorted(set(plan.ifnames.values()))] if d]
            # NM (checked on 1.42.4) accepts DISCONNECT_NEW_DEVICES only with an empty (= every device)
            # list. With our devices listed, DELETE_NEW_CONNECTIONS alone still removes what we added,
            # and deleting a profile takes down the software device NM created for it.
            flags = dbus.CHECKPOINT_DELETE_NEW_CONNECTIONS
            if not devices:
                flags |= dbus.CHECKPOINT_DISCONNECT_NEW_DEVICES
            hold = int(ctx.timeout_s + (ctx.hold_s or 0)) + CHECKPOINT_MARGIN_S
            snapshot.checkpoint = await nm.checkpoint_create(devices, hold, flags)
            if ctx.snapshot_grew is not None:
                ctx.snapshot_grew(snapshot)
            changes.actions.append(f"created checkpoint {snapshot.checkpoint.rsplit('/', 1)[-1]} over "
                                   f"{len(devices) or 'all'} device(s)")
            await self._change_profiles(nm, desired, plan, changes)
            await self._activate(nm, ctx, desired, plan, changes)
            return changes
        finally:
            nm.close()

    async def _roll_back(self, ctx: Context, snapshot: NMSnapshot) -> str:
        assert snapshot.checkpoint is not None
        nm = await self._connect(ctx)
        try:
            result = await nm.checkpoint_rollback(snapshot.checkpoint)
            snapshot.checkpoint = None
            failed = {d: r for d, r in result.items() if r not in ("ok", "unmanaged")}
            if failed and snapshot.plan is not None:
                # NM 1.42 answers 'failed' for a profile updated in place (sound only from 1.48):
                # put back the settings saved before the change ourselves, then re-activate.
                failed = await self._restore_saved(nm, ctx, snapshot.plan, failed)
        finally:
            nm.close()
        return "rolled back to the previous NetworkManager state" if not failed else f"rollback incomplete: {failed}"

    async def _destroy(self, ctx: Context, checkpoint: str) -> None:
        nm = await self._connect(ctx)
        try:
            await nm.checkpoint_destroy(checkpoint)
        finally:
            nm.close()

    async def _restore_saved(self, nm: NMClient, ctx: Context, plan: Plan, failed: dict[str, str]) -> dict[str, str]:
        """Undo our profile changes from the settings saved in the plan; return what still failed."""
        restore = Plan(paths=dict(plan.paths), ifnames=dict(plan.ifnames), bonds=set(plan.bonds))
        wanted: dict[str, Plain] = {}
        saved = {uuid: restorable(settings) for uuid, settings in plan.previous.items()}
        try:
            for uuid, _name in plan.add:                # ours and new: delete what the checkpoint left
                path = await nm.get_by_uuid(uuid)
                if path:
                    await nm.delete(path)
            for uuid, name, _diff in plan.update:       # updated in place: the saved settings back
                path = await nm.get_by_uuid(uuid) or plan.paths[uuid]
                await nm.update(path, saved[uuid])
                restore.paths[uuid] = path
                restore.update.append((uuid, name, ["restored"]))
                wanted[uuid] = saved[uuid]
            for uuid, name in plan.delete:              # deleted: add the saved profile again
                if await nm.get_by_uuid(uuid) is None:
                    restore.paths[uuid] = await nm.add(saved[uuid])
                    restore.add.append((uuid, name))
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
        from grebond.backends.networkmanager import dbus

        changed = {u for u, _n in plan.add} | {u for u, _n, _d in plan.update}
        active = {a.uuid: a for a in await nm.active_connections()}
        # A changed profile takes effect only on activation; deactivate first so NM recreates the
        # devices (a tunnel's endpoints cannot change in place) rather than reapplying a subset.
        for uuid in sorted(changed & set(active), key=lambda u: is_bond(desired[u])):
            await nm.deactivate(active[uuid].path)
        if changed & set(active):
            await self._wait(nm, lambda now: not (changed & {u for u, a in now.items() if a.state != dbus.DEACTIVATED}),
                             ctx.timeout_s, "deactivating the changed connections")
        active = {a.uuid: a for a in await nm.active_connections()}
        for bond in [u for u, p in desired.items() if is_bond(p)]:
            ports = [u for u, p in desired.items() if controller_of(p) == bond]
            if bond in active and active[bond].state == dbus.ACTIVATED:
                # the bond itself is fine: (re-)activate only the ports that need it, traffic keeps flowing
                for port in ports:
                    if port in changed or port not in active:
                        await nm.activate(plan.paths[port])
                        changes.actions.append(f"activated {name_of(desired[port])}")
            else:
                await nm.activate(plan.paths[bond])     # its ports follow (autoconnect-slaves)
                changes.actions.append(f"activated {name_of(desired[bond])}")
            await self._wait_bond(nm, ctx, bond, ports, plan, desired)

    async def _wait_bond(self, nm: NMClient, ctx: Context, bond: str, ports: list[str], plan: Plan,
                         desired: dict[str, Plain]) -> None:
        import asyncio

        from grebond.backends.networkmanager import dbus

        deadline = time.monotonic() + ctx.timeout_s
        bond_up_at: float | None = None
        seen = False
        nudged: set[str] = set()
        while True:
            now = {a.uuid: a for a in await nm.active_connections()}
            state = {u: (now[u].state if u in now else dbus.DEACTIVATED) for u in [bond, *ports]}
            if all(s == dbus.ACTIVATED for s in state.values()):
                return
            if bond in now:
                seen = True
            elif seen:      # it was activating and NM dropped it: activation failed
                raise ApplyFailed(f"NetworkManager gave up activating {name_of(desired[bond])}; see its log "
                                  "(journalctl -u NetworkManager)")
            if state[bond] == dbus.ACTIVATED:
                bond_up_at = bond_up_at or time.monotonic()
                for port in ports:   # autoconnect-slaves should have started them; nudge a straggler once
                    if port not in now and port not in nudged and time.monotonic() - bond_up_at > PORT_NUDGE_S:
                        await nm.activate(plan.paths[port])
                        nudged.add(port)
            if time.monotonic() >= deadline:
                pending = ", ".join(f"{name_of(desired[u])} {_STATE.get(s, str(s))}" for u, s in state.items()
                                    if s != dbus.ACTIVATED)
                raise ApplyFailed(f"NetworkManager did not activate everything within {ctx.timeout_s:g} s: {pending}")
            await asyncio.sleep(0.2)

    async def _wait(self, nm: NMClient, done: Callable[[dict[str, Active]], bool], timeout_s: float,
                    what: str) -> None:
        import asyncio

        deadline = time.monotonic() + timeout_s
        while not done({a.uuid: a for a in await nm.active_connections()}):
            if time.monotonic() >= deadline:
                raise ApplyFailed(f"NetworkManager did not finish {what} within {timeout_s:g} s")
            await asyncio.sleep(0.2)

    async def _all_active(self, nm: NMClient, desired: dict[str, Plain]) -> bool:
        from grebond.backends.networkmanager import dbus

        states = {a.uuid: a.state for a in await nm.active_connections()}
        return all(states.get(u) == dbus.ACTIVATED for u in desired)

    async def _remove(self, ctx: Context) -> Changes:
        nm = await self._connect(ctx)
        try:
            existing = await self._profiles(nm)
            plan = plan_profiles({}, existing)
            ours = {u for u, _n in plan.delete}
            # also profiles with this model's UUIDs that lost their marker (edited by hand)
            try:
                wanted = renderer.settings(ctx.config.bonds_of(ctx.node), ctx.config.source, ctx.node,
                                           self._target(ctx))
            except GrebondError:
                wanted = {}
            for uuid, profile in wanted.items():
                if uuid not in ours and uuid in existing:
                    plan.delete.append((uuid, name_of(profile)))
                    plan.paths[uuid] = existing[uuid][0]
                    plan.ifnames[uuid] = profile["connection"]["interface-name"][1]
            changes = Changes()
            if ctx.dry_run:
                changes.actions += plan.lines()
                return changes
            await self._change_profiles(nm, {}, plan, changes)
        finally:
            nm.close()
        leftovers = keyfile_directory(ctx.root).sync({})     # keyfiles NM never loaded
        changes.removed += leftovers.removed
        return changes


def settings_diff(desired: dict[str, Plain], existing: dict[str, Plain], plan: Plan) -> list[str]:
    """A unified diff per profile that would change, over the properties grebond sets
    (``setting.key=value`` lines; NM fills in and keeps many more, which grebond never touches)."""
    out: list[str] = []
    for uuid, name in plan.add:
        out += ["--- /dev/null", f"+++ NetworkManager connection {name} ({uuid})"]
        out += [f"+{line}" for line in _property_lines(desired[uuid])]
    for uuid, name, diff in plan.update:
        out += [f"--- NetworkManager connection {name} ({uuid})", f"+++ NetworkManager connection {name} ({uuid})"]
        for prop in diff:
            setting, key = prop.split(".", 1)
            out.append(f"-{prop}={_format(actual_value(existing[uuid], setting, key))}")
            out.append(f"+{prop}={_format(desired[uuid][setting][key][1])}")
    for uuid, name in plan.delete:
        out += [f"--- NetworkManager connection {name} ({uuid})", "+++ /dev/null"]
        out += [f"-{line}" for line in _property_lines(existing[uuid], only=("connection",))]
    return out


def _property_lines(settings: Plain, only: tuple[str, ...] = ()) -> list[str]:
    return [f"{setting}.{key}={_format(value)}" for setting, keys in settings.items()
            if not only or setting in only for key, (_sig, value) in keys.items()]


def _format(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={_format(v[1] if isinstance(v, tuple) else v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return ";".join(_format(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return ":".join(f"{b:02x}" for b in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = ["NMSnapshot", "NetworkManagerBackend", "differences", "nm_pid", "settings_diff"]
