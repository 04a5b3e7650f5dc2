"""Round-trip time of an underlay path by ICMP echo from a tunnel's local address, no external tools.

Kept apart from ``grebond.paths`` (which decides) so that the CLI does not load socket, select
and struct on every start: only ``check-paths`` measuring RTTs needs them.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections.abc import Sequence
from ipaddress import ip_address

PROBES = 8            # echo rounds over all paths; the minimum RTT is used (queueing only adds)
PROBE_TIMEOUT_S = 1.0
ICMP_ECHO = {4: (8, 0), 6: (128, 129)}   # (request, reply) types


def echo_rtt(local: str, remote: str, probes: int = PROBES,
             timeout_s: float = PROBE_TIMEOUT_S) -> tuple[float | None, str | None]:
    """Minimum RTT in ms of ICMP echo from ``local`` to ``remote``, without external tools."""
    return echo_rtts([(local, remote)], probes, timeout_s)[(local, remote)]


def echo_rtts(pairs: Sequence[tuple[str, str]], probes: int = PROBES,
              timeout_s: float = PROBE_TIMEOUT_S) -> dict[tuple[str, str], tuple[float | None, str | None]]:
    """Minimum ICMP echo RTT (ms) per (local, remote) pair, probing the pairs in turn, round by round.

    Why interleaved: paths are compared with each other, so a stall of the host (a busy CPU, a
    scheduler hiccup) must hit every path alike; measuring one path after the other made two
    equal lab paths differ by 27 ms on a starved host. Why source-bound: the tunnel's packets
    leave from ``local``, so the probe must take the same route. Uses an unprivileged ping socket
    (SOCK_DGRAM) when net.ipv4.ping_group_range allows, a raw socket otherwise (root).
    Bounded: ``probes`` rounds, at most ``timeout_s`` per probe.
    """
    probers: dict[tuple[str, str], _Prober] = {}
    result: dict[tuple[str, str], tuple[float | None, str | None]] = {}
    try:
        for pair in pairs:
            prober = _Prober(*pair)
            if prober.error:
                result[pair] = (None, prober.error)
            probers[pair] = prober
        for seq in range(1, probes + 1):
            for pair, prober in probers.items():
                if pair not in result:
                    prober.probe(seq, timeout_s)
                    if prober.fatal:
                        result[pair] = (None, prober.error)
        for pair, prober in probers.items():
            if pair not in result:
                result[pair] = (prober.best, None) if prober.best is not None else \
                    (None, prober.error or f"no reply to {probes} echo requests")
    finally:
        for prober in probers.values():
            prober.close()
    return result


class _Prober:
    """One ICMP echo socket bound to a tunnel's local address, aimed at its remote."""

    def __init__(self, local: str, remote: str) -> None:
        self.remote = remote
        self.family = ip_address(remote).version
        self.best: float | None = None
        self.error: str | None = None
        self.fatal = False
        self.raw = False
        self.sock: socket.socket | None = None
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        proto = socket.IPPROTO_ICMP if self.family == 4 else socket.IPPROTO_ICMPV6
        for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
            try:
                self.sock = socket.socket(af, kind, proto)
                self.raw = kind == socket.SOCK_RAW
                break
            except OSError as exc:
                self.error = f"cannot open an ICMP socket: {exc.strerror or exc}"
        if self.sock is None:
            return
        try:
            self.sock.bind((local, 0))
            self.error = None
        except OSError as exc:
            self.error = f"cannot send from {local}: {exc.strerror or exc}"
            self.close()

    def probe(self, seq: int, timeout_s: float) -> None:
        """Send one echo request and wait for its reply; keep the smallest RTT."""
        if self.sock is None:
            return
        req_type, reply_type = ICMP_ECHO[self.family]
        ident = os.getpid() & 0xFFFF
        payload = struct.pack("!d", time.monotonic()) + b"grebond-path-probe"
        packet = struct.pack("!BBHHH", req_type, 0, 0, ident, seq) + payload
        if self.family == 4:  # the kernel fills the ICMPv6 checksum; IPv4's is ours to compute
            packet = struct.pack("!BBHHH", req_type, 0, _checksum(packet), ident, seq) + payload
        sent = time.monotonic()
        try:
            self.sock.sendto(packet, (self.remote, 0))
        except OSError as exc:
            self.error = exc.strerror or str(exc)
            self.fatal = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
            return
        rtt = _await_reply(self.sock, self.raw, self.family, reply_type, seq, payload, sent, timeout_s)
        if rtt is not None:
            self.best = rtt if self.best is None else min(self.best, rtt)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _await_reply(sock: socket.socket, raw: bool, family: int, reply_type: int, seq: int, payload: bytes,
                 sent: float, timeout_s: float) -> float | None:
    deadline = sent + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return None
        data = sock.recv(2048)
        now = time.monotonic()
        if raw and family == 4:  # raw IPv4 sockets deliver the IP header too
            data = data[(data[0] & 0x0F) * 4:]
        if len(data) < 8:
            continue
        typ, _code, _csum, _ident, rseq = struct.unpack("!BBHHH", data[:8])
        # ping sockets rewrite the identifier; the sequence and our payload identify the reply
        if typ == reply_type and rseq == seq and data[8:] == payload:
            return (now - sent) * 1000


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)
