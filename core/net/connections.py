"""Count live nginx → replica connections (netlink sock_diag, else /proc/net/tcp{,6}), to drain a
replica before stopping it.

A connection counts when its REMOTE end is ``host:<replica port>`` and it is ESTABLISHED, i.e. the
proxy side of the socket pair (the replica's own side has the port as its LOCAL end and is not counted,
so each connection counts once). Health probes to the replica count too while they run.

Upstream keepalive keeps idle nginx → replica connections open for as long as the replica stays in the
upstream block, so this count only drops to zero AFTER the reload that removed the replica: the old
workers then close their idle keepalive connections at once and exit when their in-flight requests end
(bounded by ``worker_shutdown_timeout``). Call :func:`wait_drained` after that reload, not before.

Bridge mode: the port is the one published on 127.0.0.1, where Docker's userland proxy accepts.  Each
nginx connection still counts exactly once: the proxy's accepted socket has the port as its LOCAL end,
and its onward connection goes to the container's bridge address, not to 127.0.0.1.  Without the
userland proxy (iptables DNAT) nginx's socket keeps the published address as its remote end, since NAT
rewrites packets, not sockets.  tests/integration/test_bridge_mode.py checks K requests in flight → K.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Iterable
from pathlib import Path

from core.net.sockdiag import established_by_port

TCP_ESTABLISHED = "01"
PROC_NET_TCP_FILES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))

Endpoint = tuple[str, int]

log = logging.getLogger(__name__)
# Netlink sock_diag is the fast path (see core.net.sockdiag); /proc is kept for kernels or sandboxes
# without it, and for IPv6 upstream addresses.
_sock_diag_works = True


def _decode_address(field: str) -> Endpoint:
    """``0100007F:1F90`` → ("127.0.0.1", 8080); IPv6 fields are four little-endian 32-bit words.

    IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) come back as plain IPv4 text, so a caller can
    match ``127.0.0.1`` whether nginx used an AF_INET or AF_INET6 socket.
    """
    hex_address, hex_port = field.split(":")
    port = int(hex_port, 16)
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host byte order (little-endian on x86 and arm64).
    network_order = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(network_order) == 4:
        return str(ipaddress.IPv4Address(network_order)), port
    address = ipaddress.IPv6Address(network_order)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped), port
    return str(address), port


def parse_proc_net_tcp(text: str) -> list[tuple[Endpoint, Endpoint, str]]:
    """Parse /proc/net/tcp or tcp6 text into ``(local, remote, state)`` rows; state is the hex code."""
    rows: list[tuple[Endpoint, Endpoint, str]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            rows.append((_decode_address(fields[1]), _decode_address(fields[2]), fields[3].upper()))
        except ValueError:
            continue  # a malformed row must not hide the others
    return rows


@functools.lru_cache(maxsize=65536)
def _encode_address(host: str, port: int, ipv6: bool) -> str:
    """The inverse of :func:`_decode_address` for one table: how the kernel prints ``host:port``."""
    address = ipaddress.ip_address(host)
    if ipv6 and address.version == 4:
        address = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)
    packed = address.packed
    words = b"".join(packed[i : i + 4][::-1] for i in range(0, len(packed), 4))
    return f"{words.hex().upper()}:{port:04X}"


def count_established(text: str, ports: Iterable[int], host: str = "127.0.0.1") -> dict[int, int]:
    """Per port, the ESTABLISHED rows of one /proc/net/tcp{,6} table whose remote end is ``host:port``.

    Runs every metrics sample over every socket on the host, so rows are matched on the kernel's own
    text (state first, then the remote field against precomputed strings) instead of decoding each one.
    """
    ports = list(ports)
    counts = dict.fromkeys(ports, 0)
    lines = text.splitlines()
    if len(lines) < 2:
        return counts
    ipv6 = len(lines[1].split()[1].split(":")[0]) == 32 if len(lines[1].split()) > 1 else False
    wanted = {_encode_address(host, port, ipv6): port for port in ports}
    for line in lines[1:]:
        fields = line.split(None, 4)
        if len(fields) < 4 or fields[3] != TCP_ESTABLISHED:
            continue
        port = wanted.get(fields[2].upper())
        if port is not None:
            counts[port] += 1
    return counts


def established_connections(ports: Iterable[int], host: str = "127.0.0.1") -> dict[int, int]:
    """Live ESTABLISHED connections to ``host:<port>`` for each port (reads /proc: call off the loop)."""
    ports = list(ports)
    global _sock_diag_works
    ipv4 = ipaddress.ip_address(host).version == 4
    if _sock_diag_works and ipv4:
        try:
            return established_by_port(ports, host)
        except OSError as exc:
            _sock_diag_works = False
            log.info("netlink sock_diag unavailable (%s); counting connections from /proc/net/tcp", exc)
    counts = dict.fromkeys(ports, 0)
    # A connection to an IPv4 upstream address is an AF_INET socket: it is only ever in /proc/net/tcp,
    # and reading a table costs milliseconds of kernel time however few rows it has.
    tables = PROC_NET_TCP_FILES[:1] if ipv4 else PROC_NET_TCP_FILES
    for path in tables:
        try:
            text = path.read_text()
        except OSError:
            continue  # no IPv6 in this kernel or network namespace
        for port, count in count_established(text, ports, host).items():
            counts[port] += count
    return counts


async def wait_drained(
    port: int,
    timeout: float,
    poll: float = 0.05,
    host: str = "127.0.0.1",
) -> bool:
    """True once no connection to ``host:port`` is ESTABLISHED; False if ``timeout`` passed first.

    Call it after the reload that removed the replica from its upstream (see the module docstring).
    """
    deadline = time.monotonic() + timeout
    while True:
        counts = await asyncio.to_thread(established_connections, [port], host)
        if counts[port] == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll)
