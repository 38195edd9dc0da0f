"""ORCHESTRY_URL at something that is not the API (the apps' load balancer, another web server): one
line saying so and where to point it, exit 2. A 200 that is not JSON was a JSONDecodeError traceback,
and the load balancer's 404 was shown as if the daemon had said 'no app is served at this path'."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli.conftest import ORCHESTRY

FIX = (
    "point --url or ORCHESTRY_URL at the API (the daemon's or console's port, 8000 by default), not at "
    "the apps' load balancer\n"
)


class OtherServer(BaseHTTPRequestHandler):
    """/api/v1/apps answers a 200 web page; everything else nginx's JSON 404 (the apps' load balancer)."""

    def do_GET(self) -> None:
        if self.path == "/api/v1/apps":
            self._answer(200, "text/html", b"<html><body><h1>Welcome</h1>\n<p>to my site</p></body></html>")
        else:
            body = b'{"detail":"no app is served at this path; apps are served at /<app>/"}'
            self._answer(404, "application/json", body)

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OtherServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
           "ORCHESTRY_URL": url}  # fmt: skip
    return subprocess.run([ORCHESTRY, *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_web_page_instead_of_json(tmp_path: Path, other_url: str) -> None:
    result = run(tmp_path, other_url, "list")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {other_url} is not an Orchestry API: it answered 200 (not JSON: Welcome to my site); {FIX}"
    )


def test_the_load_balancers_404(tmp_path: Path, other_url: str) -> None:
    result = run(tmp_path, other_url, "status", "web")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {other_url} is not an Orchestry API: it answered 404 (no app is served at this path; apps "
        f"are served at /<app>/); {FIX}"
    )
