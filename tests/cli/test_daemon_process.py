"""The daemon process: readiness line, refusal to run unprotected, clean SIGTERM shutdown, no secret leaks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from tests.api.conftest import stop_nginx_left_serving
from tests.cli.conftest import ORCHESTRY, Daemon, start_daemon, stop_daemon
from tests.cli.test_cli_commands import wait_ready
from tests.conftest import unique_name
from tests.integration.harness import demo_app, free_port


def test_public_bind_without_token_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [ORCHESTRY, "daemon", "--host", "0.0.0.0", "--port", str(free_port()),
         "--state-dir", str(tmp_path / "s")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "ORCHESTRY_API_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert "ready" not in result.stdout


def test_sigterm_stops_cleanly_and_json_logs(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path, "--log-format", "json")
    health = json.loads(urllib.request.urlopen(f"{daemon.url}/health", timeout=5).read())
    assert health["node_id"] == daemon.node_id
    started = time.monotonic()
    code = stop_daemon(daemon)
    assert code == 0 and time.monotonic() - started < 30
    records = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("stopped" in r["message"] for r in records)


def test_daemon_applies_a_file_at_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    port = free_port()
    name = unique_name("apply")
    app_file = tmp_path / "app.yml"
    app_file.write_text(yaml.safe_dump(demo_app(name)))
    process = subprocess.Popen(
        [ORCHESTRY, "daemon", "--port", str(port), "--lb-listen", f"127.0.0.1:{free_port()}",
         "--state-dir", str(tmp_path / "s"), "--node-id", f"bare-{port}", "--apply", str(app_file)],
        env={**env, "HOME": str(tmp_path)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("orchestry daemon ready:")
        url = f"http://127.0.0.1:{port}"
        status = json.loads(urllib.request.urlopen(f"{url}/apps/{name}/status", timeout=10).read())
        assert status["app"] == name and status["replicas"] >= 1 and status["status"] != "stopped"
        subprocess.run([ORCHESTRY, "--url", url, "delete", name, "-f"], check=True, capture_output=True)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        stop_nginx_left_serving(tmp_path / "s")
    assert code == 0


def test_planted_secret_appears_in_no_answer_log_or_event(daemon: Daemon, tmp_path: Path) -> None:
    secret = unique_name("db")
    value = "Pl4nted-" + secret + "-pw"
    daemon.ok("secret", "set", secret, f"password={value}")
    name = unique_name("leak")
    doc = demo_app(name)
    doc["spec"]["environment"] = [
        {"name": "DATABASE_PASSWORD", "source": "secret", "key": secret, "field": "password"},
        {"name": "ECHO_ME", "value": "plain"},
    ]
    path = tmp_path / "leak.yml"
    path.write_text(yaml.safe_dump(doc))
    daemon.ok("register", str(path))
    daemon.ok("up", name)
    wait_ready(daemon, name, 1)

    outputs = [
        daemon.ok(*args)
        for args in (
            ["describe", name, "--show-spec"], ["describe", name, "--show-spec", "--format", "json"],
            ["spec", name], ["spec", name, "--raw"], ["status", name, "--format", "json"],
            ["events", "--limit", "200", "--format", "json"], ["logs", name, "--format", "json"],
            ["list", "--format", "json"], ["metrics", name, "--format", "json"], ["secret", "list"],
        )
    ]  # fmt: skip
    routes = ["/apps", f"/apps/{name}/raw", f"/apps/{name}/status", "/events?limit=500", "/metrics",
              f"/api/v1/apps/{name}", f"/api/v1/apps/{name}/logs", "/api/v1/events?limit=500"]  # fmt: skip
    for path_ in routes:
        outputs.append(urllib.request.urlopen(daemon.url + path_, timeout=10).read().decode())
    for text in outputs:
        assert value not in text
    assert value not in daemon.log()
    daemon.ok("delete", name, "-f")
    daemon.ok("secret", "rm", secret)


def test_taken_api_port_names_the_holder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [ORCHESTRY, "daemon", "--port", str(port), "--lb-listen", f"127.0.0.1:{free_port()}",
             "--state-dir", str(tmp_path / "s")],
            env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot listen on 127.0.0.1:{port} (held by pid {os.getpid()} ("), last
    assert "is free): stop the other process or set ORCHESTRY_PORT / --port" in last


def test_taken_api_port_starts_nothing(tmp_path: Path) -> None:
    """The daemon gives up before its engine starts: no nginx left serving the LB address, no lease."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    lb_port, state = free_port(), tmp_path / "s"
    try:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            result = subprocess.run(
                [ORCHESTRY, "daemon", "--port", str(holder.getsockname()[1]),
                 "--lb-listen", f"127.0.0.1:{lb_port}", "--state-dir", str(state)],
                env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        assert result.returncode == 2 and "cannot listen on" in result.stderr
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", lb_port)) != 0, "nginx was left serving the LB address"
        assert "won term" not in result.stderr
    finally:
        stop_nginx_left_serving(state)


def test_bad_flags_and_state_dir_are_one_line_naming_the_flag(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env["HOME"] = str(tmp_path)

    def daemon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ORCHESTRY, "daemon", "--lb-listen", f"127.0.0.1:{free_port()}", *args],
                              env=env, capture_output=True, text=True, timeout=60)  # fmt: skip

    port = daemon("--port", "70000", "--state-dir", str(tmp_path / "s"))
    assert port.returncode == 2
    assert port.stderr == "error: --port '70000' is not valid: expected an integer port 1-65535\n"
    unwritable = daemon("--port", str(free_port()), "--state-dir", "/proc/orchestry-state")
    assert unwritable.returncode == 2 and "Traceback" not in unwritable.stderr
    assert unwritable.stderr.strip().splitlines()[-1] == (
        "error: cannot create the state dir /proc/orchestry-state (No such file or directory): choose a "
        "writable directory with ORCHESTRY_STATE_DIR or --state-dir"
    )
