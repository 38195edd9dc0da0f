"""scripts/ha_cluster.sh as a user runs it: up, the CLI through the controller LB, kill -9, status, down."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import yaml

from testkit.daemon_cluster import ORCHESTRY
from tests.conftest import unique_name
from tests.integration.harness import demo_app, free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ha_cluster.sh"


def _free_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no run of free ports found")


def _run(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} → {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def _leave_nothing_behind(home: Path, app: str) -> None:
    """Whatever ``down`` could not stop (it failed, or the test failed first): by pid and by label."""
    pid_files = [
        *home.glob("node*.pid"),
        home / "controller-lb" / "nginx.pid",
        home / "state" / "nginx" / "nginx.pid",
    ]
    for pid_file in pid_files:
        with contextlib.suppress(OSError, ValueError):
            os.kill(
                int(pid_file.read_text().strip()),
                signal.SIGKILL if "node" in pid_file.name else signal.SIGQUIT,
            )
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=orchestry.app={app}"],
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def _leader_line(status: str) -> str:
    return next(line for line in status.splitlines() if line.startswith("leader:"))


def test_script_runs_a_cluster_that_survives_its_leader(tmp_path: Path, pg_database_url: str) -> None:
    home = tmp_path / "cluster"
    controller = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRY_", "HA_"))}
    env.update(
        {
            "HOME": str(tmp_path),
            "ORCHESTRY_DATABASE_URL": pg_database_url,
            "HA_API_PORT": str(_free_run(3)),
            "HA_CONTROLLER_LISTEN": controller,
            "ORCHESTRY_LB_LISTEN": f"127.0.0.1:{free_port()}",
            "LEADER_LEASE_TTL": "3",
            "ORCHESTRY_URL": f"http://{controller}",
        }
    )
    name = unique_name("sh")
    spec = tmp_path / "app.yml"
    spec.write_text(yaml.safe_dump(demo_app(name)))
    try:
        out = _run("bash", str(SCRIPT), "up", str(home), env=env)
        assert "leader:        node1" in out and out.count(" follower ") == 2

        _run(ORCHESTRY, "register", str(spec), env=env)  # writes land on the leader through the LB
        _run(ORCHESTRY, "up", name, env=env)
        node1 = int((home / "node1.pid").read_text())
        os.kill(node1, signal.SIGKILL)
        deadline = time.monotonic() + 20
        status = ""
        while time.monotonic() < deadline:
            status = _run("bash", str(SCRIPT), "status", str(home), env=env)
            if "node1" not in _leader_line(status) and "none" not in _leader_line(status):
                break
            time.sleep(0.5)
        assert "node1  -" in status and "stopped" in status, status
        assert _leader_line(status) in ("leader:        node2", "leader:        node3"), status

        _run(ORCHESTRY, "scale", name, "2", env=env)  # the new leader takes writes through the LB
        listed = json.loads(_run(ORCHESTRY, "list", "--format", "json", env=env))
        assert [(a["name"], a["desired_replicas"]) for a in listed["apps"]] == [(name, 2)]
    finally:
        down = subprocess.run(["bash", str(SCRIPT), "down", str(home), "--stop-apps"], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        _leave_nothing_behind(home, name)
    assert down.returncode == 0 and "apps stopped" in down.stdout, down
    status = _run("bash", str(SCRIPT), "status", str(home), env=env)
    assert "controller LB: not running" in status and "apps LB:       not running" in status
    assert status.count("stopped") == 3
