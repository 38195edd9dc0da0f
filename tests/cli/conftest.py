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


class SharedDaemon:
    """One daemon for the modules of tests/cli that drive apps of their own names on it: started at first
    use and stopped after the last test of this folder (``pytest_runtest_teardown`` below), not at the end
    of the session, so it never idles beside the other folders' tests. A start (a process importing the
    whole engine, then the engine's start) took 12.6-14.1 s and a stop 4.2-5.6 s on a 2-core host at load
    9-11: once per module before."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.running: Daemon | None = None

    def get(self) -> Daemon:
        if self.running is None or self.running.process.poll() is not None:
            self.running = start_daemon(self._tmp.mktemp("daemon"))
        return self.running

    def stop(self) -> None:
        running, self.running = self.running, None
        if running is not None:
            stop_daemon(running)


_shared: list[SharedDaemon] = []


@pytest.fixture(scope="session")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedDaemon]:
    shared = SharedDaemon(tmp_path_factory)
    _shared.append(shared)
    try:
        yield shared
    finally:
        shared.stop()  # when the session ends inside tests/cli (-x, a selection): the hook did not run
        _shared.remove(shared)


def _app_names(daemon: Daemon) -> set[str]:
    listed = daemon.cli("list", "--format", "json")
    return {app["name"] for app in json.loads(listed.stdout)["apps"]} if listed.returncode == 0 else set()


@pytest.fixture(scope="module")
def daemon(shared_daemon: SharedDaemon) -> Iterator[Daemon]:
    """The shared daemon; the apps a module registered on it are deleted after the module, as they were
    when each module stopped a daemon of its own. A module whose tests read daemon-wide figures (counters
    since start) keeps a daemon of its own by defining this fixture itself."""
    running = shared_daemon.get()
    before = _app_names(running)
    yield running
    if running.process.poll() is None:
        for name in _app_names(running) - before:
            running.cli("delete", name, "-f")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the module fixtures of the last test in this folder are gone (they may still use the
    daemon), stop the shared daemon."""
    try:
        yield
    finally:
        here = Path(__file__).parent
        if nextitem is None or here not in Path(nextitem.path).parents:
            for shared in _shared:
                shared.stop()
