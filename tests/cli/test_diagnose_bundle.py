"""The support bundle from a real daemon on PostgreSQL: each member holds what the troubleshooting guide
asks for, for a known scenario (a serving app that logs a secret, an app that exits with code 3), and
no planted secret appears in any member: a secret-store value (and a replica echoing it), a sensitive
literal env value, the API token, the database password in the URL, the Fernet key."""

from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet

from tests.api.conftest import stop_nginx_left_serving
from tests.cli.conftest import Daemon, start_daemon
from tests.cli.test_cli_commands import wait_ready
from tests.conftest import unique_name
from tests.integration.harness import demo_app


class Planted:
    def __init__(self) -> None:
        tag = unique_name("x").removeprefix("x-")
        self.app_secret = f"AppSecret-{tag}-v4lue"
        self.literal = f"LiteralKey-{tag}-v4lue"
        self.token = f"ApiToken-{tag}-v4lue"
        self.db_password = f"DbPass-{tag}-v4lue"
        self.fernet_key = Fernet.generate_key().decode()

    def values(self) -> dict[str, str]:
        return {
            "secret-store value": self.app_secret,
            "literal env value": self.literal,
            "API token": self.token,
            "database password": self.db_password,
            "Fernet key": self.fernet_key,
        }


@pytest.fixture
def scenario(tmp_path: Path, pg_database_url: str) -> Iterator[tuple[Daemon, Planted, str, str]]:
    planted = Planted()
    url = sa.make_url(pg_database_url).set(password=planted.db_password)  # trust auth ignores it
    daemon = start_daemon(
        tmp_path,
        env_extra={
            "ORCHESTRY_DATABASE_URL": url.render_as_string(hide_password=False),
            "ORCHESTRY_API_TOKEN": planted.token,
            "ORCHESTRY_SECRET_KEY": planted.fernet_key,
        },
    )
    base_env = daemon.env
    daemon.env = lambda **extra: base_env(ORCHESTRY_API_TOKEN=planted.token, **extra)  # type: ignore[method-assign]
    serving, crashing = unique_name("echo"), unique_name("crash")
    try:
        secret = unique_name("creds")
        daemon.ok("secret", "set", secret, f"password={planted.app_secret}")
        doc = demo_app(serving)
        doc["spec"]["command"] = [
            "/bin/sh",
            "-c",
            'echo "db password is $DATABASE_PASSWORD"; exec /bin/serve',
        ]
        doc["spec"]["environment"] = [
            {"name": "DATABASE_PASSWORD", "source": "secret", "key": secret, "field": "password"},
            {"name": "API_KEY", "value": planted.literal},
        ]
        crash = demo_app(crashing)
        crash["spec"]["command"] = ["/bin/sh", "-c", "sleep 2; echo crashing now; exit 3"]
        for document in (doc, crash):
            path = tmp_path / f"{document['metadata']['name']}.yml"
            path.write_text(yaml.safe_dump(document))
            daemon.ok("apply", str(path))
        wait_ready(daemon, serving, 1)
        yield daemon, planted, serving, crashing
    finally:
        for name in (serving, crashing):
            daemon.cli("delete", name, "-f")
        daemon.process.terminate()
        daemon.process.wait(timeout=60)
        stop_nginx_left_serving(daemon.state_dir)


def _crashed(daemon: Daemon, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = json.loads(daemon.ok("status", name, "--format", "json"))
        if "exited with code 3" in json.dumps(status):
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} never reported its exit code: {status}")


def test_the_bundle_answers_the_guide_and_leaks_no_secret(
    scenario: tuple[Daemon, Planted, str, str], tmp_path: Path
) -> None:
    daemon, planted, serving, crashing = scenario
    _crashed(daemon, crashing)
    target = tmp_path / "bundle.tar.gz"
    printed = daemon.ok("diagnose", "-o", str(target))
    assert "controller.log" in printed and f"apps/{serving}/logs/{serving}-1.log" in printed
    assert f"wrote {target}:" in printed and "bytes compressed" in printed

    with tarfile.open(target) as archive:
        members = {
            m.name.split("/", 1)[1]: archive.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }

    for name, content in members.items():
        for what, value in planted.values().items():
            assert value not in content, f"the {what} appears in {name}"
    for what, value in planted.values().items():
        assert value not in printed and value not in daemon.log(), f"the {what} leaked outside the bundle"

    assert "which file answers which question" in members["README.txt"].lower()
    versions = json.loads(members["versions.json"])
    assert versions["docker"]["Version"] and versions["docker"]["ApiVersion"]
    assert "nginx/" in versions["nginx"]["version"]
    assert (
        "test is successful" in members["nginx/nginx-t.txt"]
        and "exit status: 0" in members["nginx/nginx-t.txt"]
    )
    database = json.loads(members["database.json"])
    assert database["reachable"] is True and database["dialect"] == "postgresql"
    assert database["migration_revision"] and ":***@" in database["url"]
    settings = json.loads(members["settings.json"])
    assert settings["api_token"] == "***" and ":***@" in settings["database_url"]
    assert "serving the API" in members["controller.log"]

    log = members[f"apps/{serving}/logs/{serving}-1.log"]
    assert "db password is ***" in log
    replicas = json.loads(members[f"apps/{serving}/replicas.json"])
    container = replicas["containers"][0]
    assert container["state"] == "running" and container["oom_killed"] is False
    assert replicas["replicas"][0]["restarts"] == 0 and replicas["replicas"][0]["ready"] is True
    health = json.loads(members[f"apps/{serving}/health.json"])
    assert health[0]["ready"] is True and "200" in health[0]["last_result"]
    assert health[0]["check"]["path"] == "/health"
    metrics = json.loads(members[f"apps/{serving}/metrics.json"])
    assert {"window", "policy", "current"} <= set(metrics)
    apps = {a["name"]: a for a in json.loads(members["apps.json"])}
    assert apps[serving]["spec"]["spec"]["environment"][1]["value"] == "***"

    crashed = json.loads(members[f"apps/{crashing}/replicas.json"])
    reasons = json.dumps(crashed["crash_backoff"]) + json.dumps(crashed["containers"])
    assert "exited with code 3" in reasons or any(c["exit_code"] == 3 for c in crashed["containers"])
    assert any(entry["crashes"] >= 1 for entry in crashed["crash_backoff"].values())
    assert any(r["restarts"] >= 1 for r in crashed["replicas"]) or crashed["crash_backoff"]
    assert "crashing now" in "".join(v for k, v in members.items() if k.startswith(f"apps/{crashing}/"))


def test_log_level_decides_stderr_while_the_bundle_keeps_info_lines(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path, "--log-level", "warning")
    try:
        target = tmp_path / "bundle.tar.gz"
        daemon.ok("diagnose", "-o", str(target))
        with tarfile.open(target) as archive:
            member = archive.extractfile("orchestry-snapshot/controller.log")
            assert member is not None
            controller_log = member.read().decode()
    finally:
        daemon.process.terminate()
        daemon.process.wait(timeout=60)
        stop_nginx_left_serving(daemon.state_dir)
    assert "INFO" in controller_log and "serving the API" in controller_log
    assert " INFO " not in daemon.log(), daemon.log()
