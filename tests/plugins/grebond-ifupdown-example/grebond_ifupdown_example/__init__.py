"""Example plugin: classic ifupdown stanzas for /etc/network/interfaces.d (render and write only)."""

from __future__ import annotations

from grebond.backends.base import Availability, Backend, Context
from grebond.changes import Changes
from grebond.files import under_root, write_atomic
from grebond.renderer import RenderedFile, Rendering, header_lines
from grebond.renderer.iproute2 import bond_option_args


class IfupdownBackend(Backend):
    name = "ifupdown"
    summary = "classic ifupdown stanzas (example plugin)"

    def render(self, ctx: Context) -> Rendering:
        files = []
        for end in ctx.config.bonds_of(ctx.node):
            lines = [f"# {h}" for h in header_lines(ctx.config.source, ctx.node)]
            for t in end.tunnels:
                lines += [f"auto {t.name}", f"iface {t.name} inet manual",
                          f"    pre-up ip link add {t.name} mtu {t.mtu} type {t.kind} local {t.local} "
                          f"remote {t.remote} ttl {t.ttl}",
                          f"    post-down ip link del {t.name}", ""]
            first = end.addresses[0]
            lines += [f"auto {end.name}", f"iface {end.name} inet static",
                      f"    address {first}",
                      f"    pre-up ip link add {end.name} address {end.mac} mtu {end.mtu} type bond "
                      + " ".join(bond_option_args(end)),
                      *(f"    pre-up ip link set dev {t.name} down master {end.name}" for t in end.tunnels),
                      f"    post-down ip link del {end.name}", ""]
            files.append(RenderedFile(f"grebond-{end.name}", "\n".join(lines).encode()))
        return Rendering(backend=self.name, node=ctx.node, files=tuple(files))

    def available(self) -> Availability:
        return Availability(False, "example plugin: renders and writes only")

    def write(self, rendering: Rendering, ctx: Context) -> Changes:
        changes = Changes()
        for f in rendering.files:
            path = under_root(ctx.root, "/etc/network/interfaces.d") / f.name
            if write_atomic(path, f.content, f.mode):
                changes.written.append(str(path))
        return changes


class NotABackend:
    """Registered by mistake: has none of the interface."""
