"""Just enough of dockerd on a unix socket for the runtime's connection handling: keep-alive
connections, /version, /_ping, /info and /containers/json (whose answer can be held back to keep a
connection busy), and ``stop_listening``: what a stopping dockerd does first."""

from __future__ import annotations

import contextlib
import json
import os
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

ENGINE_ID = "FAKE:ENGINE:0001"
ENGINE_NAME = "fake-docker-host"


class FakeDockerd(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
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
    server: FakeDockerd

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.endswith("/containers/json"):
            self.server.listing_started.set()
            self.server.hold_listing.wait(10)
            body: object = []
        elif path.endswith("/version"):
            body = {"ApiVersion": "1.41", "Version": "20.10.24"}
        elif path.endswith("/info"):
            body = {"ID": ENGINE_ID, "Name": ENGINE_NAME, "ServerVersion": "20.10.24", "NCPU": 2}
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


@contextlib.contextmanager
def fake_dockerd(path: str) -> Iterator[FakeDockerd]:
    """A FakeDockerd serving ``path`` until the block ends."""
    server = FakeDockerd(path)
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
