"""Every ``orchestry`` subcommand as a subprocess against a real daemon, in table and JSON form."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import ORCHESTRY, Daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app, free_port
from tests.support.interrupt import FAULTHANDLER_ENV, interrupt


def write_app(tmp_path: Path, name: str, **overrides: object) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(demo_app(name, **overrides)))
    return path


def wait_ready(daemon: Daemon, name: str, count: int, timeout: float = 40) -> dict:
    deadline = time.monotonic() + timeout
    app: dict = {}
    while time.monotonic() < deadline:
        app = daemon.json("status", name)
        if app["ready_replicas"] >= count:
            return app
        time.sleep(0.3)
    raise AssertionError(f"{name} never reached {count} ready replicas: {app}")


def test_version_and_help() -> None:
    result = subprocess.run([ORCHESTRY, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("orchestry ")
    help_text = subprocess.run([ORCHESTRY, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("daemon", "register", "describe", "secret", "diagnose", "cluster"):
        assert command in help_text


def test_unreachable_daemon_is_one_line_and_exit_2(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for args in (["list"], ["status", "web"], ["logs", "web", "--follow"], ["list", "--format", "json"]):
        result = subprocess.run(
            [ORCHESTRY, *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ORCHESTRY_URL": url},
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"error: cannot reach the Orchestry daemon at {url} (connection refused): "
            "start one with `orchestry daemon` or set ORCHESTRY_URL\n"
        )


def test_url_precedence_flag_env_config_file(tmp_path: Path) -> None:
    config = tmp_path / ".config" / "orchestry" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("host: 127.0.0.9\nport: 9999\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}

    def shown(*args: str, **extra: str) -> dict:
        out = subprocess.run([ORCHESTRY, "config", "--format", "json", *args], env={**env, **extra},
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return json.loads(out)

    assert shown()["url"] == "http://127.0.0.9:9999"
    assert shown(ORCHESTRY_URL="http://127.0.0.5:1")["url"] == "http://127.0.0.5:1"
    assert shown("--url", "http://127.0.0.6:2", ORCHESTRY_URL="http://127.0.0.5:1")["source"] == "--url"
    config.unlink()
    assert shown() == {
        "url": "http://127.0.0.1:8000",
        "source": "default",
        "config_file": str(config),
        "runtime": "docker",
        "docker_url": "unix:///var/run/docker.sock",
    }
    on_swarm = shown(ORCHESTRY_RUNTIME="swarm", ORCHESTRY_DOCKER_URL="tcp://10.0.0.1:2376")
    assert (on_swarm["runtime"], on_swarm["docker_url"]) == ("swarm", "tcp://10.0.0.1:2376")
    table = subprocess.run([ORCHESTRY, "config"], env=env, capture_output=True, text=True, check=True).stdout
    assert "http://127.0.0.1:8000" in table


def test_app_lifecycle_every_command_table_and_json(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("cli")
    path = write_app(tmp_path, name)

    assert f"registered {name}" in daemon.ok("register", str(path))
    assert daemon.json("register", str(path))["created"] is False

    listed = daemon.json("list")
    assert name in [a["name"] for a in listed["apps"]]
    assert name in daemon.ok("list")

    described = daemon.json("describe", name)
    assert described["name"] == name and "spec" not in described
    assert "spec" in daemon.json("describe", name, "--show-spec")
    assert "orchestry/demo:latest" in daemon.ok("describe", name, "--show-spec")
    assert f"App {name}" in daemon.ok("describe", name)
    assert daemon.json("spec", name)["spec"]["image"] == "orchestry/demo:latest"
    assert daemon.json("spec", name, "--raw")["metadata"]["name"] == name
    assert "image: orchestry/demo:latest" in daemon.ok("spec", name)

    up = daemon.json("up", name)
    assert up["app"] == name and up["replicas"] >= 1
    assert name in daemon.ok("up", name)
    status = wait_ready(daemon, name, 1)
    assert len(status["replicas"][0]["container_id"]) == 12
    assert "ready" in daemon.ok("status", name)

    scaled = daemon.json("scale", name, "2")
    assert scaled["replicas"] == 2 and scaled["status"] == "scaled"
    assert "already at 2 replicas" in daemon.ok("scale", name, "2")
    wait_ready(daemon, name, 2)

    assert daemon.json("mode", name, "auto")["policy"]["mode"] == "auto"
    assert "scaling mode manual" in daemon.ok("mode", name, "manual")

    logs = daemon.json("logs", name, "--tail", "5", "--since", "1h")
    assert logs["app"] == name
    assert logs["lines"] and {line["replica"] for line in logs["lines"]} <= {f"{name}-1", f"{name}-2"}, logs
    assert any("listening on 127.0.0.1:" in line["message"] for line in daemon.json("logs", name)["lines"])
    # An absolute --until: "0s" means the moment the CLI starts, which a loaded host delays past any
    # time taken here, and the demo replicas log on meanwhile.
    until_now = time.time()
    short = daemon.json("logs", name, "-n", "3", "--until", f"{until_now:.3f}")["lines"]
    assert 1 <= len(short) <= 2 * 3 and all(line["timestamp"] <= until_now + 1 for line in short), short
    text = daemon.ok("logs", name, "-n", "3", "--until", "0s")
    assert 1 <= len(text.splitlines()) <= 2 * 3, text

    assert daemon.json("restart", name, "--replica", "1") == {"app": name, "restarted": [1]}
    assert f"{name}: restarted replica 2\n" == daemon.ok("restart", name, "--replica", "2")

    events = daemon.json("events", name, "--limit", "5")["events"]
    assert 1 <= len(events) <= 5 and all(e["app"] == name for e in events)
    assert name in daemon.ok("events", name)
    newest = daemon.json("events", "--type", "scaling", "--limit", "1")["events"]
    assert len(newest) == 1 and newest[0]["category"] == "scaling", newest
    scaling = daemon.json("events", name, "--type", "scaling", "--limit", "10")["events"]
    assert {e["category"] for e in scaling} == {"scaling"}, scaling
    assert any("1 → 2" in e["message"] for e in scaling), scaling
    assert len(daemon.json("events", "--type", "lifecycle", "--limit", "1", "--since", "1h")["events"]) == 1

    metrics = daemon.json("metrics", name)
    assert set(metrics["current"]) >= {"rps", "p95_latency_ms", "cpu_percent"}
    assert daemon.json("metrics", "--name", name)["app"] == name
    assert "requests/s" in daemon.ok("metrics", name)
    assert set(daemon.json("metrics")) == {"timestamp", "cluster", "apps", "instances", "nginx"}
    assert "Node metrics" in daemon.ok("metrics")

    down = daemon.json("down", name)
    assert down["app"] == name and down["containers_stopped"] >= 1
    assert "stopped" in daemon.ok("down", name, "--force")

    refused = daemon.cli("delete", name, stdin="")
    assert refused.returncode == 1 and "pass -f" in refused.stderr
    assert daemon.json("delete", name, "-f") == {"status": "deleted", "app": name}

    missing = daemon.cli("status", name)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and name in missing.stderr
    assert "Traceback" not in missing.stderr


def test_follow_prints_lines_until_interrupted(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("flw")
    daemon.ok("register", str(write_app(tmp_path, name)))
    daemon.ok("up", name)
    wait_ready(daemon, name, 1)
    follower = subprocess.Popen(
        [ORCHESTRY, "logs", name, "--follow", "--format", "json"],
        env=daemon.env(**FAULTHANDLER_ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        import urllib.request

        for _ in range(3):
            urllib.request.urlopen(f"http://{daemon.lb}/{name}/", timeout=10).read()
        assert follower.stdout is not None
        line = json.loads(follower.stdout.readline())
        assert set(line) >= {"timestamp", "replica", "message"}
    finally:
        code = interrupt(follower)
    assert code == 0 and "Traceback" not in (follower.stderr.read() if follower.stderr else "")
    daemon.ok("delete", name, "-f")


def test_cluster_info_and_diagnose(daemon: Daemon, tmp_path: Path) -> None:
    status = daemon.json("cluster", "status")
    assert status["node_id"] == daemon.node_id and status["is_leader"] is True
    assert daemon.node_id in daemon.ok("cluster", "status")
    assert daemon.json("cluster", "leader")["leader_id"] == daemon.node_id
    assert "lease expires" in daemon.ok("cluster", "leader")
    assert daemon.json("cluster", "health")["cluster_ready"] is True
    assert "cluster_ready" in daemon.ok("cluster", "health")

    info = daemon.json("info")
    assert info["node_id"] == daemon.node_id and info["database"]["status"] == "ok"
    assert "leader" in daemon.ok("info")

    target = tmp_path / "snap.tar.gz"
    assert daemon.json("diagnose", "-o", str(target))["file"] == str(target)
    with tarfile.open(target) as archive:
        assert archive.getnames()
    again = tmp_path / "again.tar.gz"
    assert f"wrote {again}" in daemon.ok("diagnose", "-o", str(again))
    with tarfile.open(again) as archive:
        assert archive.getnames()


def test_secret_commands_never_print_values(daemon: Daemon) -> None:
    name = unique_name("s")
    value = "pl4nted-" + name
    set_out = daemon.ok("secret", "set", name, f"password={value}", "user=app")
    assert "password" in set_out and value not in set_out
    assert daemon.json("secret", "list", name)["secrets"] == [{"name": name, "fields": ["password", "user"]}]
    assert name in daemon.ok("secret", "list")
    assert value not in daemon.ok("secret", "list")
    bad = daemon.cli("secret", "set", name, "novalue")
    assert bad.returncode == 1 and "KEY=VALUE" in bad.stderr
    assert daemon.json("secret", "rm", name) == {"status": "deleted", "name": name}
    assert daemon.cli("secret", "rm", name).returncode == 1


def test_db_upgrade_is_local(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ORCHESTRY_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run([ORCHESTRY, "db", "upgrade", "--database-url", url, "--format", "json"],
                            env=env, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "upgraded"
    again = subprocess.run(
        [ORCHESTRY, "db", "upgrade", "--database-url", url], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "revision" in again.stdout


@pytest.mark.parametrize("args", [["scale", "x", "two"], ["mode", "x", "fast"], ["events", "--type", "nope"]])
def test_usage_errors_exit_nonzero(daemon: Daemon, args: list[str]) -> None:
    result = daemon.cli(*args)
    assert result.returncode == 2 and "usage:" in result.stderr
