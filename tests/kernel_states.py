"""Hand-made kernel snapshots for the pure tests of the verifier, status and rollback.

``matching_state`` is what the kernel holds after a correct apply, built from the model by hand
(not by grebond's own code, so it cannot share its bugs).
"""

from __future__ import annotations

from pathlib import Path

from grebond.kernel.state import (
    IFF_UP,
    BondInfo,
    KernelState,
    LinkState,
    QdiscInfo,
    Route,
    SlaveInfo,
    TunnelInfo,
)
from grebond.model import OFFLOADS

SEED = Path(__file__).resolve().parents[1] / "examples" / "seed.yaml"
UP = IFF_UP | 0x10000
OFF = dict.fromkeys(OFFLOADS.values(), False)     # what `offloads: off` sets


def matching_state(config, node: str = "r2") -> KernelState:  # type: ignore[no-untyped-def]
    """What the kernel holds after a correct apply of ``node`` (built from the model by hand)."""
    end = config.bonds_of(node)[0]
    links: dict[str, LinkState] = {}
    routes: dict[str, Route | None] = {}
    paths = {name: j for j, name in enumerate(dict.fromkeys(t.path for t in end.tunnels), start=1)}
    for i, t in enumerate(end.tunnels, start=1):
        j = paths[t.path]            # a weight copy shares its tunnel's WireGuard device
        links[t.name] = LinkState(
            index=10 + i, name=t.name, kind="gretap", mtu=end.mtu, mac=f"aa:bb:cc:00:00:0{i}", flags=UP,
            operstate="UNKNOWN", carrier=True, master=end.name,
            tunnel=TunnelInfo(local=str(t.local), remote=str(t.remote), ttl=255, ikey=t.key, okey=t.key),
            slave=SlaveInfo("active", "up", 0), tx_bytes=1000 * i, rx_bytes=500, features=OFF,
            # a delay is a netem root qdisc (netem's default limit is 1000; grebond sets 10000)
            qdisc=QdiscInfo("netem", t.delay_us, 10000) if t.delay_us else QdiscInfo("fq_codel"))
        links[f"wg{j}"] = LinkState(index=20 + j, name=f"wg{j}", kind="wireguard", mtu=1440, mac=None,
                                    flags=UP, operstate="UNKNOWN", carrier=True, addresses=(f"{t.local}/32",))
        routes[str(t.remote)] = Route(dst=str(t.remote), oif=f"wg{j}", oif_kind="wireguard")
    links[end.name] = LinkState(
        index=30, name=end.name, kind="bond", mtu=end.mtu, mac=end.mac.upper(), flags=UP, operstate="UP",
        carrier=True, addresses=(*tuple(str(a) for a in end.addresses), "fe80::1/64"),
        bond=BondInfo(mode="balance-rr", arp_interval=100, arp_ip_targets=tuple(str(a) for a in end.arp_targets),
                      arp_validate="none", arp_missed_max=2), features=OFF)
    return KernelState(links=links, routes=routes)
