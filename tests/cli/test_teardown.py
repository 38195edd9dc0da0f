"""``orchestry stop`` and ``orchestry down --all`` with no daemon: nothing is left behind (no container,
no nginx, no port), a live daemon on the state dir is named and left alone, and the next start resumes
the apps after ``stop`` but starts nothing after ``down --all``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from core.lb.nginx import _worker_pids, running_master
from tests.api.conftest import stop_nginx_left_serving
from tests.cli.conftest import ORCHESTRY, Daemon, start_daemon
from tests.cli.test_cli_commands import wait_ready
from tests.conftest import unique_name
from tests.integration.harness import demo_app, free_port
from tests.integration.test_nginx import _our_nginx_pids


def _local(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env["HOME"] = str(state_dir.parent)
    return subprocess.run(
        [ORCHESTRY, *args, "--state-dir", str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _containers(name: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=orchestry.app={name}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def _port_closed(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except OSError:
        return True


def _quit(daemon: Daemon) -> None:
    """SIGTERM: the daemon leaves its apps running and nginx serving, as `q` in the console does."""
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=60) == 0


@pytest.fixture
def state(tmp_path: Path) -> Path:
    yield tmp_path / "state"
    stop_nginx_left_serving(tmp_path / "state")


def test_stop_and_down_all_without_a_daemon(tmp_path: Path, state: Path) -> None:
    name = unique_name("down")
    app_file = tmp_path / "app.yml"
    app_file.write_text(yaml.safe_dump(demo_app(name)))
    daemon = start_daemon(tmp_path)
    try:
        daemon.ok("apply", str(app_file))
        daemon.ok("scale", name, "2")
        wait_ready(daemon, name, 2)

        refused = _local(state, "stop")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert f"pid {daemon.process.pid}" in refused.stderr and "daemon" in refused.stderr
        assert len(_containers(name)) == 2  # nothing was touched behind the daemon's back
        _quit(daemon)
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
    answer = urllib.request.urlopen(f"http://{daemon.lb}/{name}/", timeout=5)
    assert answer.status == 200  # the quit daemon's nginx and replicas keep serving

    stopped = _local(state, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"{name}-1" in stopped.stdout and "stopped nginx" in stopped.stdout
    assert _containers(name) == [] and running_master(state / "nginx") is None
    assert _port_closed(daemon.lb)

    again = start_daemon(tmp_path)  # `stop` kept the desired state: the app comes back
    try:
        wait_ready(again, name, 2)
        _quit(again)
    finally:
        if again.process.poll() is None:
            again.process.kill()

    downed = _local(state, "down", "--all", "--format", "json")
    assert downed.returncode == 0, downed.stderr
    report = json.loads(downed.stdout)
    assert sorted(report["containers_removed"]) == [f"{name}-1", f"{name}-2"]
    assert report["apps_stopped"] == [name] and report["nginx_pid"]
    assert _containers(name) == [] and running_master(state / "nginx") is None
    assert _port_closed(again.lb)

    last = start_daemon(tmp_path)  # `down --all` marked the app stopped: nothing starts
    try:
        assert last.json("status", name)["status"] == "stopped"
        assert _containers(name) == []
        last.ok("delete", name, "-f")
        _quit(last)
    finally:
        if last.process.poll() is None:
            last.process.kill()
    assert _local(state, "stop").returncode == 0 and running_master(state / "nginx") is None


def test_stop_on_an_empty_state_dir_says_so(tmp_path: Path) -> None:
    result = _local(tmp_path / "nothing", "stop")
    assert result.returncode == 0 and "no Orchestry store" in result.stdout
    assert not (tmp_path / "nothing" / "orchestry.db").exists()


def test_down_needs_a_name_or_all(tmp_path: Path) -> None:
    result = _local(tmp_path / "s", "down")
    assert result.returncode == 2 and "--all" in result.stderr


def _second_daemon(tmp_path: Path, lb: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env["HOME"] = str(tmp_path)
    return subprocess.run(
        [ORCHESTRY, "daemon", "--port", str(free_port()), "--lb-listen", lb,
         "--state-dir", str(tmp_path / "other")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_second_daemon_on_the_same_lb_address_names_the_holder_once(tmp_path: Path, state: Path) -> None:
    first = start_daemon(tmp_path)
    try:
        clash = _second_daemon(tmp_path, first.lb)
        assert clash.returncode == 2 and "Traceback" not in clash.stderr
        port = first.lb.rsplit(":", 1)[1]
        assert clash.stderr.count(f"port {port} is held by nginx (pid") == 1, clash.stderr
        assert "bind()" not in clash.stderr
        assert f"state dir {state}" in clash.stderr and f"daemon pid {first.process.pid}" in clash.stderr
        _quit(first)
    finally:
        if first.process.poll() is None:
            first.process.kill()

    left = _second_daemon(tmp_path, first.lb)  # the quit daemon's nginx still holds the port
    assert left.returncode == 2 and left.stderr.count("is held by nginx") == 1, left.stderr
    assert f"`orchestry stop --state-dir {state}`" in left.stderr and "left serving" in left.stderr
    assert _local(state, "stop").returncode == 0
    assert _port_closed(first.lb)


def test_adopted_nginx_moved_to_a_taken_lb_address_names_the_holder(tmp_path: Path, state: Path) -> None:
    """The adopted nginx cannot move to the new address: the holder is named, and nginx (and the config
    on disk) stay on the old one."""
    first = start_daemon(tmp_path)  # holds first.lb
    left = start_daemon(tmp_path / "left")  # quits below; its nginx keeps serving left.lb
    other = tmp_path / "left" / "state"
    try:
        _quit(left)
        conf_before = (other / "nginx" / "nginx.conf").read_text()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
        env["HOME"] = str(tmp_path)
        moved = subprocess.run(
            [ORCHESTRY, "daemon", "--port", str(free_port()), "--lb-listen", first.lb,
             "--state-dir", str(other)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert moved.returncode == 2 and "Traceback" not in moved.stderr
        port = first.lb.rsplit(":", 1)[1]
        assert moved.stderr.count(f"port {port} is held by nginx (pid") == 1, moved.stderr
        assert f"state dir {state}" in moved.stderr and f"daemon pid {first.process.pid}" in moved.stderr
        assert not _port_closed(left.lb)  # still served where it was
        assert (other / "nginx" / "nginx.conf").read_text() == conf_before
        _quit(first)
    finally:
        for daemon in (first, left):
            if daemon.process.poll() is None:
                daemon.process.kill()
        stop_nginx_left_serving(other)


def test_stop_waits_out_the_lease_of_a_killed_daemon(tmp_path: Path, state: Path) -> None:
    name = unique_name("killed")
    app_file = tmp_path / "app.yml"
    app_file.write_text(yaml.safe_dump(demo_app(name)))
    # Long enough that the lease is still held when `stop` starts, even on a loaded machine.
    daemon = start_daemon(tmp_path, env_extra={"LEADER_LEASE_TTL": "10"})
    try:
        daemon.ok("apply", str(app_file))
        wait_ready(daemon, name, 1)
    finally:
        daemon.process.kill()  # kill -9: no lease released, no presence file withdrawn
        daemon.process.wait(timeout=30)
    stopped = _local(state, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "waiting" in stopped.stderr and "its process is gone" in stopped.stderr
    assert f"{name}-1" in stopped.stdout
    assert _containers(name) == [] and running_master(state / "nginx") is None


def _wait(condition: Callable[[], object], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_stop_ends_the_workers_a_killed_nginx_master_left_serving(tmp_path: Path, state: Path) -> None:
    """A master SIGKILLed (by hand, the OOM killer) after its daemon quit left its worker holding the
    load-balancer port and serving the old routes, with no master for `stop` to signal: `stop` said
    "nginx was not running" and the port kept answering. It ends them as the engine's own stop does."""
    prefix = state / "nginx"
    daemon = start_daemon(tmp_path)
    try:
        _quit(daemon)  # nginx keeps serving
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
    try:
        master = running_master(prefix)
        assert master is not None
        _wait(lambda: _worker_pids(master), "a worker that has finished starting")
        os.kill(master, signal.SIGKILL)
        _wait(lambda: running_master(prefix) is None, "the master gone")
        assert _our_nginx_pids(prefix) and not _port_closed(daemon.lb)  # its worker serves on

        stopped = _local(state, "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert _port_closed(daemon.lb)
        assert "1 nginx worker(s) a killed master left serving" in stopped.stdout, stopped.stdout
        _wait(lambda: not _our_nginx_pids(prefix), "the worker's exit (SIGQUIT: it finishes its requests)")
    finally:
        for pid in _our_nginx_pids(prefix):  # only what this test's nginx left, matched by its prefix
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
