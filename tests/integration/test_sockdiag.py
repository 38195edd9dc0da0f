"""Connection counting through netlink sock_diag agrees with /proc/net/tcp on real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.net.connections import count_established
from core.net.sockdiag import established_by_port


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server
    server.close()


def port_of(sock: socket.socket) -> int:
    return sock.getsockname()[1]


def proc_count(port: int) -> int:
    return count_established(Path("/proc/net/tcp").read_text(), [port])[port]


def test_counts_live_connections_to_the_port_and_nothing_else(listener: socket.socket) -> None:
    port = port_of(listener)
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(4)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    stranger = socket.create_connection(("127.0.0.1", port_of(other)))
    accepted = [listener.accept()[0] for _ in clients]
    try:
        counts = established_by_port([port, port_of(other)])
        assert counts == {port: 3, port_of(other): 1}
        assert counts[port] == proc_count(port)
    finally:
        for sock in [*clients, *accepted, stranger, other]:
            sock.close()


def test_closed_connections_stop_counting_though_they_linger_in_time_wait(listener: socket.socket) -> None:
    port = port_of(listener)
    client = socket.create_connection(("127.0.0.1", port))
    server_side, _ = listener.accept()
    assert established_by_port([port]) == {port: 1}
    # The server closes first, as an HTTP/1.0 server does: its end waits in TIME_WAIT for a minute.
    server_side.close()
    client.recv(1)
    client.close()
    assert established_by_port([port]) == {port: 0}
    assert proc_count(port) == 0


def test_a_port_nobody_connects_to_counts_zero() -> None:
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    port = port_of(unused)
    unused.close()
    assert established_by_port([port]) == {port: 0}
