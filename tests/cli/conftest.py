"""A real ``orchestry daemon`` subprocess on free ports with a tmp state dir, and a CLI runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.conftest import stop_nginx_left_serving
from tests.integration.harness import free_port

ORCHESTRY = str(Path(sys.executable).parent / "orchestry")
READY_TIMEOUT = 60.0


@dataclass
class Daemon:
    url: str
    lb: str
    node_id: str
    process: subprocess.Popen[str]
    log_path: Path
    home: Path
    state_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
        env.update({"ORCHESTRY_URL": self.url, "HOME": str(self.home), "COLUMNS": "200"})
        env.update(extra)
        return env

    def cli(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ORCHESTRY, *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
        )

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.returncode == 0, f"orchestry {' '.join(args)} → {result.returncode}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--format", "json"))

    def log(self) -> str:
        return self.log_path.read_text()


def start_daemon(
    tmp: Path, *extra_args: str, env_extra: dict[str, str] | None = None, port: int | None = None
) -> Daemon:
    """``port``: the API port (a daemon restarted where its clients expect it); a free one by default."""
    port, lb_port = port or free_port(), free_port()
    node_id = f"cli-{os.getpid()}-{port}"
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env.update({"HOME": str(home), **(env_extra or {})})
    process = subprocess.Popen(
        [
            ORCHESTRY, "daemon",
            "--port", str(port),
            "--lb-listen", f"127.0.0.1:{lb_port}",
            "--state-dir", str(tmp / "state"),
            "--node-id", node_id,
            *extra_args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("orchestry daemon ready:") or process.poll() is not None:
            break
    if not line.startswith("orchestry daemon ready:"):
        process.kill()  # a daemon that did not come up must not outlive the test
        process.wait()
    assert line.startswith("orchestry daemon ready:"), f"no readiness line; log:\n{log_path.read_text()}"
    assert f"api=http://127.0.0.1:{port}" in line and f"node={node_id}" in line
    return Daemon(
        f"http://127.0.0.1:{port}", f"127.0.0.1:{lb_port}", node_id, process, log_path, home, tmp / "state"
    )


def stop_daemon(daemon: Daemon) -> int:
    # Leave no containers behind: the daemon itself leaves apps running on shutdown by design.
    listed = daemon.cli("list", "--format", "json")
    if listed.returncode == 0:
        for app in json.loads(listed.stdout)["apps"]:
            daemon.cli("delete", app["name"], "-f")
    daemon.process.send_signal(signal.SIGTERM)
    try:
        return daemon.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.process.kill()
        return daemon.process.wait()
    finally:
        stop_nginx_left_serving(daemon.state_dir)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start_daemon(tmp_path_factory.mktemp("daemon"))
    try:
        yield running
    finally:
        stop_daemon(running)
