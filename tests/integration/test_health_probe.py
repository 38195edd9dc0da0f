"""The health probe against real sockets: what a replica's answer (or silence) turns into."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from core.health import HealthChecker
from core.spec import HealthCheck
from testkit.harness import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def no_transition(*_: object) -> None:
    return None


@pytest.fixture
def checker() -> HealthChecker:
    return HealthChecker(no_transition)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def answering(status_line: bytes, seen: list[bytes] | None = None) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            seen.append(request)
        writer.write(status_line + b"\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    return handle


async def test_a_2xx_answer_passes_and_the_request_carries_path_and_headers(
    checker: HealthChecker, serve: Callable[[Handler], Awaitable[int]]
) -> None:
    seen: list[bytes] = []
    port = await serve(answering(b"HTTP/1.1 204 No Content", seen))
    check = HealthCheck.model_validate({"path": "/ready", "headers": [{"name": "X-Probe", "value": "yes"}]})
    result = await checker.probe("127.0.0.1", port, check)
    assert result.ok, result.detail
    assert result.detail.startswith("GET /ready → 204 in ")
    assert seen[0].startswith(b"GET /ready HTTP/1.0\r\n")
    assert b"\r\nX-Probe: yes\r\n" in seen[0]


async def test_a_5xx_answer_fails_naming_the_status(
    checker: HealthChecker, serve: Callable[[Handler], Awaitable[int]]
) -> None:
    port = await serve(answering(b"HTTP/1.0 503 Service Unavailable"))
    result = await checker.probe("127.0.0.1", port, HealthCheck())
    assert not result.ok
    assert result.detail == "GET /health → 503"


async def test_nothing_listening_fails_as_connection_refused(checker: HealthChecker) -> None:
    result = await checker.probe("127.0.0.1", free_port(), HealthCheck())
    assert not result.ok
    assert "connection refused" in result.detail


async def test_a_replica_that_accepts_but_never_answers_times_out_on_the_spec_timeout(
    checker: HealthChecker, serve: Callable[[Handler], Awaitable[int]]
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    port = await serve(silent)
    result = await checker.probe("127.0.0.1", port, HealthCheck.model_validate({"timeoutSeconds": 0.3}))
    assert not result.ok
    assert result.detail == "GET /health timed out after 0.3 s"  # not the silent server closing at 5 s


async def test_an_answer_that_is_not_http_fails_and_quotes_it(
    checker: HealthChecker, serve: Callable[[Handler], Awaitable[int]]
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    port = await serve(garbage)
    result = await checker.probe("127.0.0.1", port, HealthCheck())
    assert not result.ok
    assert "not an HTTP answer" in result.detail and "SSH-2.0" in result.detail


async def test_a_connection_closed_without_a_word_fails(
    checker: HealthChecker, serve: Callable[[Handler], Awaitable[int]]
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    port = await serve(hang_up)
    result = await checker.probe("127.0.0.1", port, HealthCheck())
    assert not result.ok
    assert result.detail == "GET /health: the replica closed the connection without answering"


async def test_without_a_health_check_a_listening_port_is_enough(
    checker: HealthChecker, serve: Callable[[Handler], Awaitable[int]]
) -> None:
    port = await serve(answering(b"HTTP/1.0 500 Oops"))
    assert (await checker.probe("127.0.0.1", port, None)).ok
    refused = await checker.probe("127.0.0.1", free_port(), None)
    assert not refused.ok and refused.detail.startswith("TCP 127.0.0.1:")
