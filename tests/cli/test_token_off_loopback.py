"""A daemon bound to a non-loopback address needs the bearer token: proven on a real address.

The test creates a network namespace with a veth pair (both ends inside it, so the host's network is
untouched), runs ``orchestry daemon --host 10.213.77.1`` in it, and talks to it from inside the same
namespace; the namespace is removed afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import stop_nginx_left_serving
from tests.cli.conftest import ORCHESTRY, READY_TIMEOUT
from tests.conftest import unique_name
from tests.integration.harness import demo_app, free_port

ADDRESS = "10.213.77.1"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"orch-tests-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip("-n", name, "addr", "add", f"{ADDRESS}/24", "dev", "v0")
        ip("-n", name, "link", "set", "v0", "up")
        ip("-n", name, "link", "set", "v1", "up")
        yield name
    finally:
        ip("netns", "del", name)


def inside(namespace: str, *command: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", namespace, *command], capture_output=True, text=True,
                          timeout=60, **kwargs)  # type: ignore[call-overload]  # fmt: skip


def request(
    namespace: str, method: str, url: str, token: str | None = None, body: str = ""
) -> tuple[int, str]:
    """curl from inside the namespace: (status, body)."""
    args = ["curl", "-s", "-X", method, "-o", "-", "-w", "\n%{http_code}", url]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}"]
    if body:
        args += ["-H", "Content-Type: application/json", "--data-binary", body]
    answer = inside(namespace, *args).stdout
    text, _, status = answer.rpartition("\n")
    return int(status), text


def daemon_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env.update({"HOME": str(tmp), **extra})
    return env


def daemon_command(tmp: Path, port: int) -> list[str]:
    return [
        ORCHESTRY, "daemon", "--host", ADDRESS, "--port", str(port),
        "--lb-listen", f"127.0.0.1:{free_port()}", "--state-dir", str(tmp / "state"),
        "--node-id", f"netns-{port}",
    ]  # fmt: skip


def test_off_loopback_the_daemon_refuses_to_start_without_a_token(namespace: str, tmp_path: Path) -> None:
    result = inside(namespace, *daemon_command(tmp_path, free_port()), env=daemon_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert f"ORCHESTRY_HOST={ADDRESS} is not a loopback address" in result.stderr
    assert "set ORCHESTRY_API_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_off_loopback_unauthenticated_is_refused_and_the_token_works(namespace: str, tmp_path: Path) -> None:
    token = f"netns-{uuid.uuid4().hex}"
    port = free_port()
    log = (tmp_path / "daemon.log").open("w")
    process = subprocess.Popen(
        ["ip", "netns", "exec", namespace, *daemon_command(tmp_path, port)],
        env=daemon_env(tmp_path, ORCHESTRY_API_TOKEN=token), stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        deadline, line = time.monotonic() + READY_TIMEOUT, ""
        while time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            if line.startswith("orchestry daemon ready:"):
                break
        assert f"api=http://{ADDRESS}:{port}" in line, (tmp_path / "daemon.log").read_text()
        base = f"http://{ADDRESS}:{port}"

        assert request(namespace, "GET", f"{base}/health")[0] == 200  # stays open for probes
        name = unique_name("tok")
        document = json.dumps(demo_app(name))
        for method, path, body in [
            ("GET", "/apps", ""),
            ("GET", "/api/v1/apps", ""),
            ("GET", "/api/v1/events", ""),
            ("POST", "/api/v1/apps", document),
            ("DELETE", "/api/v1/cluster/leadership", ""),
        ]:
            for wrong in (None, f"{token}x", token[:-1]):
                status, answer = request(namespace, method, base + path, wrong, body)
                assert status == 401, (method, path, wrong, answer)
                assert token not in answer
        assert request(namespace, "GET", f"{base}/api/v1/apps/{name}")[0] == 401

        status, answer = request(namespace, "POST", f"{base}/api/v1/apps", token, document)
        assert status == 201, answer
        status, answer = request(namespace, "GET", f"{base}/api/v1/apps/{name}", token)
        assert status == 200 and json.loads(answer)["name"] == name, answer
        assert request(namespace, "DELETE", f"{base}/api/v1/apps/{name}", token)[0] == 200
        # Nothing unauthenticated changed anything: only the authenticated register ever happened.
        events = json.loads(request(namespace, "GET", f"{base}/api/v1/events?limit=1000", token)[1])["events"]
        assert [e["kind"] for e in events if e["app"] == name][-1] == "app_registered", events
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        stop_nginx_left_serving(tmp_path / "state")
    assert token not in (tmp_path / "daemon.log").read_text()
