"""Encapsulation overhead and the bond MTU it leaves.

A bond pushes its own MTU (default 1500) onto its slaves and never takes theirs, so grebond
must compute the right value and set it on the bond and every tunnel explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

WIREGUARD_OVERHEAD = {4: 20 + 8 + 32, 6: 40 + 8 + 32}   # outer IP + UDP + WireGuard header/tag
OUTER_IP = {4: 20, 6: 40}
GRE_HEADER = 4
GRE_KEY = 4
INNER_ETHERNET = 14                                     # gretap carries Ethernet frames
IP6_ENCAP_LIMIT_OPTION = 8                              # ip6gre's destination option, unless "encaplimit none"
MIN_MTU_IPV4 = 576
MIN_MTU_IPV6 = 1280


@dataclass(frozen=True)
class Breakdown:
    """Each layer's cost, from the underlay device MTU down to what the bond can carry."""

    underlay_mtu: int
    layers: tuple[tuple[str, int], ...]

    @property
    def mtu(self) -> int:
        return self.underlay_mtu - sum(size for _, size in self.layers)

    def lines(self) -> list[str]:
        out = [f"  underlay device MTU          {self.underlay_mtu:5d}"]
        out += [f"  - {label:<26} {size:5d}" for label, size in self.layers]
        out.append(f"  = bond and tunnel MTU        {self.mtu:5d}")
        return out


def tunnel_breakdown(underlay_mtu: int, family: int, keyed: bool = False,
                     encaplimit: int | None = None) -> Breakdown:
    """Overhead of one GRETAP (family 4) or ip6gretap (family 6) over a device of ``underlay_mtu``."""
    layers: list[tuple[str, int]] = [(f"outer IPv{family} header", OUTER_IP[family]), ("GRE header", GRE_HEADER)]
    if keyed:
        layers.append(("GRE key", GRE_KEY))
    if family == 6 and encaplimit is not None:
        layers.append(("IPv6 encapsulation limit", IP6_ENCAP_LIMIT_OPTION))
    layers.append(("inner Ethernet header", INNER_ETHERNET))
    return Breakdown(underlay_mtu, tuple(layers))


def wireguard_mtu(base_mtu: int, family: int) -> int:
    """The largest WireGuard device MTU over a physical link of ``base_mtu`` (outer family)."""
    return base_mtu - WIREGUARD_OVERHEAD[family]
