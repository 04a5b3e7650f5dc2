"""Which end of the links this host is: given, detected from local addresses, or the hostname."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import ip_address

from grebond.errors import UsageError
from grebond.model import Config


def resolve_node(config: Config, given: str | None,
                 local_addresses: Callable[[], Iterable[str]] | None = None) -> str:
    """The node to act for.

    ``given`` wins. Otherwise the node whose tunnel (underlay) addresses are present on this
    host, when ``local_addresses`` can list them; otherwise the node named like this host.
    """
    nodes = config.nodes
    if given is not None:
        if given not in nodes:
            import difflib

            close = difflib.get_close_matches(given, nodes, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; the config's nodes are {', '.join(nodes)}"
            raise UsageError(f"--node {given}: no link in {config.source} has this end{hint}")
        return given
    if local_addresses is not None:
        present = {ip_address(a.split("%")[0]) for a in local_addresses()}
        matches = [n for n in nodes if any(t.local in present for e in config.bonds_of(n) for t in e.tunnels)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"this host has the underlay addresses of several nodes ({', '.join(matches)}); "
                             "choose one with --node")
    import socket

    host = socket.gethostname().split(".")[0]
    if host in nodes:
        return host
    raise UsageError(f"cannot tell which end this host is: none of the nodes ({', '.join(nodes)}) has its underlay "
                     f"addresses here{' ' if local_addresses else ' (not checked offline) '}and the hostname "
                     f"'{host}' is not a node; pass --node NAME")
