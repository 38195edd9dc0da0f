"""Parsing /proc/net/tcp{,6} to count nginx → replica connections."""

from __future__ import annotations

import asyncio
import socket

from core.net.connections import count_established, established_connections, parse_proc_net_tcp, wait_drained

# Captured shape of /proc/net/tcp: a listener on 127.0.0.1:8080 (0A = LISTEN), an ESTABLISHED
# connection from 127.0.0.1:41234 to it (both sides), and a TIME_WAIT one (06).
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:A0D2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:A0D2 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:A0D4 0100007F:1F90 06 00000000:00000000 03:00001000 00000000     0        0 0 3 0
   4: 0100007F:A0D6 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
"""

# /proc/net/tcp6: ::1 listener and an IPv4-mapped ESTABLISHED connection to 127.0.0.1:8080.
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 0000000000000000FFFF00000100007F:A0E0 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000
"""


def test_parse_ipv4_rows() -> None:
    rows = parse_proc_net_tcp(TCP)
    assert rows[0] == (("127.0.0.1", 8080), ("0.0.0.0", 0), "0A")
    assert rows[1] == (("127.0.0.1", 41170), ("127.0.0.1", 8080), "01")
    assert len(rows) == 5


def test_parse_ipv6_rows_and_ipv4_mapped_addresses() -> None:
    rows = parse_proc_net_tcp(TCP6)
    assert rows[0][0] == ("::1", 8080)
    assert rows[1][1] == ("127.0.0.1", 8080)


def test_malformed_rows_are_skipped() -> None:
    text = TCP + "   9: nonsense ZZ 01\n   10: 0100007F\n"
    assert len(parse_proc_net_tcp(text)) == 5


def test_counts_only_established_connections_whose_remote_end_is_the_port() -> None:
    # Row 2 is the replica's own side (local 8080) and row 3 is TIME_WAIT: neither counts.
    assert count_established(TCP, [8080, 8081, 9999]) == {8080: 1, 8081: 1, 9999: 0}
    assert count_established(TCP6, [8080]) == {8080: 1}
    assert count_established(TCP, [8080], host="10.0.0.1") == {8080: 0}


async def test_live_count_and_drain_follow_a_real_connection() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        await asyncio.sleep(0.05)
        assert established_connections([port]) == {port: 1}
        assert await wait_drained(port, timeout=0.2) is False
        drained = asyncio.create_task(wait_drained(port, timeout=5))
        await asyncio.sleep(0.1)
        client.close()
        assert await drained is True
    finally:
        client.close()
        server.close()
        await server.wait_closed()
