"""``--wait`` against a real daemon: commands return only once the app is where it was asked to be,
time out with the reason and the app's last events, and leave the change running on Ctrl-C."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from tests.cli.conftest import ORCHESTRY, Daemon
from tests.cli.test_apply import api
from tests.conftest import unique_name
from tests.integration.harness import demo_app
from tests.support.interrupt import FAULTHANDLER_ENV, interrupt

# Never passes its health check: /cgi-bin/fail answers 500.
FAILING_HEALTH = {"path": "/cgi-bin/fail", "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2}


def started_app(daemon: Daemon, **overrides: object) -> str:
    name = unique_name("wt")
    result = daemon.cli("apply", "-", "--wait", stdin=yaml.safe_dump(demo_app(name, **overrides)))
    assert result.returncode == 0, result.stderr
    return name


def test_scale_wait_returns_when_ready_and_down_wait_when_gone(daemon: Daemon) -> None:
    name = started_app(daemon)
    try:
        result = daemon.cli("scale", name, "3", "--wait")
        status = api(daemon, f"/api/v1/apps/{name}")  # right after: no polling in the test
        assert result.returncode == 0, result.stderr
        assert status["desired_replicas"] == 3 and status["ready_replicas"] == 3
        assert f"{name}: 3/3 ready" in result.stdout.splitlines()
        assert f"{name}: complete after" in result.stdout

        answer = json.loads(daemon.ok("scale", name, "1", "--wait", "--format", "json"))
        assert answer["wait"]["complete"] is True
        assert len(api(daemon, f"/api/v1/apps/{name}/rollout")["replicas"]) == 1

        down = daemon.cli("down", name, "--wait")
        rollout = api(daemon, f"/api/v1/apps/{name}/rollout")
        assert down.returncode == 0, down.stderr
        assert f"{name}: stopped" in down.stdout.splitlines()
        assert rollout["replicas"] == [] and rollout["terminating_replicas"] == 0
        assert api(daemon, f"/api/v1/apps/{name}")["replicas"] == []
    finally:
        daemon.cli("delete", name, "-f")


def test_restart_wait_replaces_every_replica(daemon: Daemon) -> None:
    name = started_app(daemon)
    try:
        daemon.ok("scale", name, "2", "--wait")
        before = {r["container_id"] for r in api(daemon, f"/api/v1/apps/{name}")["replicas"]}
        result = daemon.cli("restart", name, "--wait")
        after = api(daemon, f"/api/v1/apps/{name}")
        assert result.returncode == 0, result.stderr
        assert "updated" in result.stdout  # progress showed replicas moving to the new containers
        assert after["ready_replicas"] == 2
        assert {r["container_id"] for r in after["replicas"]}.isdisjoint(before)
    finally:
        daemon.cli("delete", name, "-f")


def test_up_wait_with_missing_image_exits_1_with_the_reason(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("wi")
    doc = demo_app(name)
    doc["spec"]["image"] = "orchestry/no-such-image:404"
    path = tmp_path / "app.yml"
    path.write_text(yaml.safe_dump(doc))
    daemon.ok("register", str(path))
    try:
        started = time.monotonic()
        result = daemon.cli("up", name, "--wait", "--timeout", "15")
        assert result.returncode == 1
        # Half the 120 s default: the wait gave up, and the margin is the CLI's start-up on a loaded host.
        assert time.monotonic() - started < 60
        assert "Traceback" not in result.stderr
        assert "orchestry/no-such-image:404" in result.stderr and "fix spec.image" in result.stderr
    finally:
        daemon.cli("delete", name, "-f")


def test_wait_on_a_blocked_app_ends_at_once_with_the_reason_and_the_fix(
    daemon: Daemon, tmp_path: Path
) -> None:
    # A missing image blocks the app until the next up/restart/spec change: waiting out the timeout
    # could never succeed, so the wait ends as soon as the engine reports the app blocked.
    name = unique_name("wb")
    doc = demo_app(name)
    doc["spec"]["image"] = "orchestry/nope:latest"
    path = tmp_path / "app.yml"
    path.write_text(yaml.safe_dump(doc))
    daemon.ok("register", str(path))
    try:
        # up and apply check the image themselves and refuse at once: only restart's wait could hang.
        refused = daemon.cli("up", name, "--wait", "--timeout", "30")
        assert refused.returncode == 1 and "fix spec.image" in refused.stderr
        result = daemon.cli("restart", name, "--wait", "--timeout", "30")
        assert result.returncode == 1, result.stdout
        assert "did not finish within" not in result.stderr
        assert f"error: {name} is blocked, stopped waiting: it cannot start replicas:" in result.stderr
        assert "orchestry/nope:latest" in result.stderr and "fix spec.image" in result.stderr
        assert f"`orchestry restart {name}`" in result.stderr
        answer = daemon.cli("restart", name, "--wait", "--timeout", "30", "--format", "json")
        waited = json.loads(answer.stdout)["wait"]
        assert answer.returncode == 1 and waited["complete"] is False
        assert waited["apps"][0]["blocked"] is True
    finally:
        daemon.cli("delete", name, "-f")


def test_timeout_exits_1_with_status_reason_and_last_events(daemon: Daemon) -> None:
    name = unique_name("wh")
    doc = demo_app(name, healthCheck=FAILING_HEALTH)
    try:
        started = time.monotonic()
        result = daemon.cli("apply", "-", "--wait", "--timeout", "4", stdin=yaml.safe_dump(doc))
        elapsed = time.monotonic() - started
        assert result.returncode == 1
        # At its own 4 s, not the 120 s default; the margin is the CLI's start-up on a loaded host.
        assert 4 <= elapsed < 60
        assert f"{name}: 0/1 ready" in result.stdout
        assert f"error: {name} did not finish within 4s: 0/1 ready; status degraded" in result.stderr
        assert f"last events of {name}:" in result.stderr
        assert f"started replica {name}-1" in result.stderr

        as_json = daemon.cli("up", name, "--timeout", "2", "--format", "json")
        assert as_json.returncode == 1
        waited = json.loads(as_json.stdout)["wait"]
        assert waited["complete"] is False and waited["apps"][0]["events"]
    finally:
        daemon.cli("delete", name, "-f")


def test_ctrl_c_while_waiting_exits_130_and_the_change_goes_on(daemon: Daemon) -> None:
    name = unique_name("wc")
    applied = daemon.cli("apply", "-", stdin=yaml.safe_dump(demo_app(name, healthCheck=FAILING_HEALTH)))
    assert applied.returncode == 0, applied.stderr
    waiter = subprocess.Popen(
        [ORCHESTRY, "scale", name, "2", "--wait"],
        env=daemon.env(**FAULTHANDLER_ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert waiter.stdout is not None
        assert waiter.stdout.readline().startswith(f"{name}: scaling to 2")
        assert waiter.stdout.readline().startswith(f"{name}: ")  # the first progress line: waiting
        code = interrupt(waiter)
        stderr = waiter.stderr.read() if waiter.stderr else ""
        assert code == 130
        assert "the change continues on the daemon" in stderr and "Traceback" not in stderr
        assert api(daemon, f"/api/v1/apps/{name}")["desired_replicas"] == 2
    finally:
        if waiter.poll() is None:
            waiter.kill()
        daemon.cli("delete", name, "-f")


def test_timeout_must_be_positive_seconds(daemon: Daemon) -> None:
    for value in ("0", "-3", "soon"):
        result = daemon.cli("up", "web", "--timeout", value)
        assert result.returncode == 2 and "number of seconds above 0" in result.stderr
