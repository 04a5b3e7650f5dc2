"""Every line of D-Bus code grebond has: a small async client for NetworkManager.

Why one module: dbus-next 0.2.3 (Debian 12) is unmaintained; its maintained fork dbus-fast
has the same Message/MessageBus/Variant API under another package name. Only this module
imports either, and it speaks plain Python to the rest of grebond (settings as
``setting -> key -> (signature, value)``, the shape ``grebond.renderer.networkmanager``
produces), so switching libraries touches nothing else.

Calls are sent as raw messages rather than through introspected proxies: no introspection round
trip per object, and nothing that differs between the two libraries.

Errors: no system bus, NetworkManager not running, or access denied raise
``SystemAccessError`` (exit 3) with what to do; any other error NM answers with raises
``DaemonRefused`` (a SystemAccessError too) carrying NM's error name and text.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, MessageType
from dbus_next.errors import AuthError, DBusError
from dbus_next.message import Message
from dbus_next.signature import Variant

from grebond.errors import DaemonRefused, SystemAccessError

NM_BUS = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
SETTINGS_PATH = "/org/freedesktop/NetworkManager/Settings"
IFACE_NM = "org.freedesktop.NetworkManager"
IFACE_SETTINGS = "org.freedesktop.NetworkManager.Settings"
IFACE_CONNECTION = "org.freedesktop.NetworkManager.Settings.Connection"
IFACE_ACTIVE = "org.freedesktop.NetworkManager.Connection.Active"
IFACE_PROPS = "org.freedesktop.DBus.Properties"

# NMSettingsAddConnection2Flags / NMSettingsUpdate2Flags
TO_DISK = 0x1
# NMActiveConnectionState
ACTIVATING, ACTIVATED, DEACTIVATING, DEACTIVATED = 1, 2, 3, 4
# NMCheckpointCreateFlags
CHECKPOINT_DELETE_NEW_CONNECTIONS = 0x2
CHECKPOINT_DISCONNECT_NEW_DEVICES = 0x4
# CheckpointRollback result per device
ROLLBACK_RESULT = {0: "ok", 1: "no device", 2: "unmanaged", 3: "failed"}

Plain = dict[str, dict[str, tuple[str, Any]]]

_ABSENT = ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner")
_DENIED = ("org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.NetworkManager.PermissionDenied",
           "org.freedesktop.NetworkManager.Settings.PermissionDenied")


@dataclass(frozen=True)
class Active:
    """One active connection: its object path, profile UUID and NMActiveConnectionState."""

    path: str
    uuid: str
    state: int


# ----------------------------------------------------------------------------- values

def to_variant(sig: str, value: Any) -> Variant:
    """(signature, value) -> Variant; nested a{sv}/aa{sv} leaves are (signature, value) pairs too."""
    if sig == "a{sv}":
        return Variant(sig, {k: to_variant(*v) for k, v in value.items()})
    if sig == "aa{sv}":
        return Variant(sig, [{k: to_variant(*v) for k, v in d.items()} for d in value])
    return Variant(sig, value)


def to_dbus(plain: Plain) -> dict[str, dict[str, Variant]]:
    return {setting: {key: to_variant(*sv) for key, sv in keys.items()} for setting, keys in plain.items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, Variant):
        return (value.signature, _plain_value(value.value))
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    return value


def from_dbus(settings: dict[str, dict[str, Variant]]) -> Plain:
    """GetSettings' answer as plain Python: setting -> key -> (signature, value), recursively."""
    return {setting: {key: _plain_value(v) for key, v in keys.items()} for setting, keys in settings.items()}


# ----------------------------------------------------------------------------- client

class NMClient:
    """NetworkManager over the system bus; open with ``await NMClient.connect()``, end with ``close()``."""

    def __init__(self, bus: MessageBus, call_timeout_s: float) -> None:
        self._bus = bus
        self._timeout = call_timeout_s

    @classmethod
    async def connect(cls, call_timeout_s: float = 30.0) -> NMClient:
        """Connect to the system bus and check NetworkManager answers there."""
        try:
            bus = await asyncio.wait_for(MessageBus(bus_type=BusType.SYSTEM).connect(), call_timeout_s)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise SystemAccessError(f"no system D-Bus ({exc.strerror or exc}); start dbus, or write keyfiles "
                                    "only with --write-only or --root") from exc
        except (AuthError, PermissionError) as exc:
            raise SystemAccessError(f"access to the system D-Bus denied: {exc}; run as root") from exc
        except (TimeoutError, OSError) as exc:
            raise SystemAccessError(f"cannot connect to the system D-Bus: {exc or 'timed out'}") from exc
        client = cls(bus, call_timeout_s)
        try:
            await client.version()
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        self._bus.disconnect()  # type: ignore[no-untyped-call]

    async def _call(self, path: str, interface: str, member: str, signature: str = "",
                    body: list[Any] | None = None) -> list[Any]:
        msg = Message(destination=NM_BUS, path=path, interface=interface, member=member,
                      signature=signature, body=body or [])
        try:
            reply = await asyncio.wait_for(self._bus.call(msg), self._timeout)
        except TimeoutError:
            raise SystemAccessError(f"NetworkManager did not answer {member} within {self._timeout:.0f} s") from None
        except DBusError as exc:   # raised by some library versions instead of an error reply
            raise _error(member, exc.type, exc.text) from exc
        except (OSError, EOFError) as exc:
            raise SystemAccessError(f"lost the system D-Bus during {member}: {exc}") from exc
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise _error(member, reply.error_name or "", text)
        return list(reply.body)

    async def _get(self, path: str, interface: str, prop: str) -> Any:
        (value,) = await self._call(path, IFACE_PROPS, "Get", "ss", [interface, prop])
        return value.value

    # ------------------------------------------------------------- manager
    async def version(self) -> str:
        return str(await self._get(NM_PATH, IFACE_NM, "Version"))

    async def device_by_iface(self, iface: str) -> str | None:
        try:
            (path,) = await self._call(NM_PATH, IFACE_NM, "GetDeviceByIpIface", "s", [iface])
        except DaemonRefused as exc:
            if exc.name.endswith("UnknownDevice"):
                return None
            raise
        return str(path)

    async def activate(self, connection: str, device: str = "/") -> str:
        """Activate a profile; "/" as device lets NM pick (or create, for a virtual device) it."""
        (active,) = await self._call(NM_PATH, IFACE_NM, "ActivateConnection", "ooo", [connection, device, "/"])
        return str(active)

    async def deactivate(self, active: str) -> None:
        try:
            await self._call(NM_PATH, IFACE_NM, "DeactivateConnection", "o", [active])
        except DaemonRefused as exc:
            if not exc.name.endswith("ConnectionNotActive"):
                raise

    async def active_connections(self) -> list[Active]:
        """Every active connection with its profile UUID and state (gone ones skipped)."""
        out: list[Active] = []
        for path in await self._get(NM_PATH, IFACE_NM, "ActiveConnections"):
            try:
                uuid = await self._get(path, IFACE_ACTIVE, "Uuid")
                state = await self._get(path, IFACE_ACTIVE, "State")
            except DaemonRefused:
                continue        # deactivated and removed between the two calls
            out.append(Active(str(path), str(uuid), int(state)))
        return out

    async def checkpoint_create(self, devices: list[str], rollback_timeout_s: int, flags: int) -> str:
        """A checkpoint of ``devices`` (empty: all); NM rolls back by itself after the timeout."""
        (path,) = await self._call(NM_PATH, IFACE_NM, "CheckpointCreate", "aouu",
                                   [devices, rollback_timeout_s, flags])
        return str(path)

    async def checkpoint_rollback(self, checkpoint: str) -> dict[str, str]:
        """Roll back; device path -> result ("ok", "failed", ...)."""
        (result,) = await self._call(NM_PATH, IFACE_NM, "CheckpointRollback", "o", [checkpoint])
        return {str(k): ROLLBACK_RESULT.get(int(v), str(v)) for k, v in result.items()}

    async def checkpoint_destroy(self, checkpoint: str) -> None:
        await self._call(NM_PATH, IFACE_NM, "CheckpointDestroy", "o", [checkpoint])

    # ------------------------------------------------------------- settings
    async def connections(self) -> list[str]:
        (paths,) = await self._call(SETTINGS_PATH, IFACE_SETTINGS, "ListConnections")
        return [str(p) for p in paths]

    async def get_by_uuid(self, uuid: str) -> str | None:
        try:
            (path,) = await self._call(SETTINGS_PATH, IFACE_SETTINGS, "GetConnectionByUuid", "s", [uuid])
        except DaemonRefused as exc:
            if exc.name.endswith("InvalidConnection"):
                return None
            raise
        return str(path)

    async def get_settings(self, connection: str) -> Plain:
        """The profile as NM holds it. NM omits properties at their default values."""
        (settings,) = await self._call(connection, IFACE_CONNECTION, "GetSettings")
        return from_dbus(settings)

    async def add(self, settings: Plain, to_disk: bool = True) -> str:
        """AddConnection2: a new profile, written as a keyfile when ``to_disk``."""
        path, _result = await self._call(SETTINGS_PATH, IFACE_SETTINGS, "AddConnection2", "a{sa{sv}}ua{sv}",
                                         [to_dbus(settings), TO_DISK if to_disk else 0, {}])
        return str(path)

    async def update(self, connection: str, settings: Plain, to_disk: bool = True) -> None:
        """Update2: replace the whole profile (an active device keeps the old one until re-activated)."""
        await self._call(connection, IFACE_CONNECTION, "Update2", "a{sa{sv}}ua{sv}",
                         [to_dbus(settings), TO_DISK if to_disk else 0, {}])

    async def delete(self, connection: str) -> None:
        """Delete the profile and its keyfile; NM deactivates it first."""
        try:
            await self._call(connection, IFACE_CONNECTION, "Delete")
        except DaemonRefused as exc:
            if not exc.name.endswith("UnknownMethod") and "not exist" not in exc.text:
                raise

    async def reload_connections(self) -> None:
        """Re-read every keyfile (NM does not watch its directories)."""
        await self._call(SETTINGS_PATH, IFACE_SETTINGS, "ReloadConnections")


def _error(method: str, name: str, text: str) -> SystemAccessError:
    if name in _ABSENT:
        return SystemAccessError("NetworkManager is not running (no org.freedesktop.NetworkManager on the system "
                                 "bus); start it, or write keyfiles only with --write-only or --root")
    if name in _DENIED:
        return SystemAccessError(f"NetworkManager denied {method}: {text}; run as root")
    return DaemonRefused(method, name, text)
