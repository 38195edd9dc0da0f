"""A stopping dockerd removes its socket at once and keeps answering on the connections it already
has for as long as it takes to stop its containers (seconds; 1,684 calls answered in 6.2 s measured on
a private dockerd 20.10).  The runtime must not take those answers for Docker being back: once a call
finds the engine unreachable, later calls connect afresh and fail the same way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from core.errors import RuntimeUnavailable
from core.runtime.docker import DockerRuntime


class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Just enough of dockerd on a unix socket: keep-alive connections, /version, /_ping and
    /containers/json, whose answer can be held back to keep a connection busy."""

    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.hold_listing = threading.Event()
        self.hold_listing.set()
        self.listing_started = threading.Event()
        super().__init__(path, _Handler)

    def stop_listening(self) -> None:
        """What a stopping dockerd does first: no new connections, the socket file gone; the
        connections it has keep being served."""
        self.socket.close()
        os.unlink(self.server_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as dockerd
    server: _Engine

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.endswith("/containers/json"):
            self.server.listing_started.set()
            self.server.hold_listing.wait(10)
            body: object = []
        elif path.endswith("/version"):
            body = {"ApiVersion": "1.41", "Version": "20.10.24"}
        else:
            body = "OK"
        data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[_Engine]:
    server = _Engine(str(tmp_path / "docker.sock"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.hold_listing.set()
        server.shutdown()
        with contextlib.suppress(OSError):
            server.server_close()
        thread.join(5)


async def test_a_stopping_engine_is_not_reported_back_through_a_connection_kept_from_before(
    engine: _Engine,
) -> None:
    runtime = DockerRuntime(f"unix://{engine.server_address}")
    try:
        assert await runtime.list_managed() == []  # a connection is kept
        # A listing holds that connection while the engine stops listening: a ping needs a new one.
        engine.hold_listing.clear()
        engine.listing_started.clear()
        listing = asyncio.ensure_future(runtime.list_managed())
        assert await asyncio.to_thread(engine.listing_started.wait, 10)
        engine.stop_listening()
        with pytest.raises(RuntimeUnavailable, match="does not answer"):
            await runtime.ping()
        engine.hold_listing.set()
        assert await listing == []  # sent before the engine went away: its answer stands
        # Every call from now on: the engine does not answer, not "it answers" over the kept one.
        for _ in range(3):
            with pytest.raises(RuntimeUnavailable, match="does not answer"):
                await runtime.list_managed()
    finally:
        await runtime.close()
