"""Hostile request bodies over a real TCP connection: each gets one clear 4xx that the client can read.

"One": the client that sent it reads a single HTTP answer with a JSON detail (not a reset connection,
not a hang), and the server keeps serving the next client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.api import params
from core.api.app import create_app
from core.documents import MAX_DOCUMENT_BYTES
from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import demo_app


@pytest.fixture
async def server(api_engine: Engine) -> AsyncIterator[TestServer]:
    running = TestServer(create_app(api_engine, api_engine.node_id))
    await running.start_server()
    try:
        yield running
    finally:
        await running.close()


async def raw_request(server: TestServer, head: bytes, body_parts: list[bytes], pause: float = 0.0) -> bytes:
    """Send ``head`` and the body parts (``pause`` seconds apart, write errors ignored: the server may
    answer before the body is all sent); return everything the server answered until it closed."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    received = bytearray()

    async def read_all() -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)

    reading = asyncio.create_task(read_all())
    try:
        writer.write(head)
        for part in body_parts:
            if reading.done():
                break
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
    except (ConnectionError, OSError):
        pass  # the answer may already be on its way: read it
    await asyncio.wait_for(reading, 60)
    writer.close()
    return bytes(received)


def answer_of(raw: bytes) -> tuple[int, dict[str, object]]:
    """The one HTTP answer in ``raw``: its status and JSON body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert raw.count(b"HTTP/1.1 ") == 1, raw[:500]
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def post_head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


async def test_a_body_at_the_limit_is_read_and_one_byte_more_is_413(api: TestClient) -> None:
    name = unique_name("big")
    document = json.dumps(demo_app(name)).encode()
    at_limit = document[:-1] + b" " * (MAX_DOCUMENT_BYTES - len(document)) + b"}"
    assert len(at_limit) == MAX_DOCUMENT_BYTES
    accepted = await api.post("/apps/register", data=at_limit, headers={"Content-Type": "application/json"})
    assert accepted.status == 200, await accepted.text()
    over = at_limit + b" "
    refused = await api.post("/apps/register", data=over, headers={"Content-Type": "application/json"})
    assert refused.status == 413
    assert f"keep it under {MAX_DOCUMENT_BYTES} bytes" in (await refused.json())["detail"]


async def test_ten_mib_gets_one_413_the_sender_can_read(server: TestServer, api: TestClient) -> None:
    ten_mib = 10 * 1024 * 1024
    chunk = b"x" * 65536
    raw = await raw_request(server, post_head("/apps/register", ten_mib), [chunk] * (ten_mib // len(chunk)))
    status, body = answer_of(raw)
    assert status == 413 and "too large" in str(body["detail"]), body
    assert (await api.get("/health")).status == 200


async def test_a_body_that_never_finishes_gets_408_and_frees_the_connection(
    server: TestServer, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(params, "BODY_TIMEOUT_SECONDS", 1.0)
    # Ten bytes of a promised hundred, one a quarter second, then silence.
    raw = await raw_request(server, post_head("/apps/register", 100), [b"{"] * 10, pause=0.25)
    status, body = answer_of(raw)
    assert status == 408, body
    assert "request body" in str(body["detail"]) and "1 s" in str(body["detail"]), body
    assert (await api.get("/health")).status == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"metadata": {"name": "x"', "not valid JSON"),
        (b"metadata:\n  name: web\nspec: {image: [unclosed\n", "not valid JSON"),
        (b"a: &a [1]\nb: *a\n", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
    ],
    ids=["truncated JSON", "malformed YAML", "YAML alias", "not UTF-8", "not an object"],
)
async def test_unreadable_documents_get_one_400_naming_the_problem(
    server: TestServer, body: bytes, words: str
) -> None:
    for path in ("/apps/register", "/api/v1/apps", "/api/v1/validate"):
        status, answer = answer_of(await raw_request(server, post_head(path, len(body)), [body]))
        assert status == 400 and words in str(answer["detail"]), (path, answer)
