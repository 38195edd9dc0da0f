"""One known scenario on a real daemon (PostgreSQL with a password, a token, a Fernet key, an app secret
that its replica prints in its own log), then everything that leaves the daemon is read:

* the diagnostic archive, member by member, against the scenario's figures (members without a check of
  their own, such as ones added later, still get the generic checks: they parse and hold no secret);
* every GET route of the API, every event, the daemon's log file and the attached console's screens.

No planted secret may appear anywhere; the app secret must still reach the container's environment.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet

from core.api.app import create_app
from tests.cli.conftest import Daemon, start_daemon, stop_daemon
from tests.conftest import PG_URL, run_as_admin, unique_name
from tests.integration.harness import demo_app, docker

SNAPSHOT_ROOT = "orchestry-snapshot/"


@dataclass
class Planted:
    app_secret: str
    token: str
    db_password: str
    fernet_key: str

    def all(self) -> dict[str, str]:
        return {
            "app env secret": self.app_secret,
            "API token": self.token,
            "database password": self.db_password,
            "Fernet key": self.fernet_key,
        }


@dataclass
class Scenario:
    daemon: Daemon
    planted: Planted
    app: str
    secret_name: str
    replicas: list[dict[str, Any]]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.planted.token}"}

    def cli(self, *args: str) -> str:
        result = self.daemon.cli(*args, env=self.daemon.env(ORCHESTRY_API_TOKEN=self.planted.token))
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout


def leaks(text: str, planted: Planted) -> list[str]:
    return [kind for kind, value in planted.all().items() if value in text]


@pytest.fixture(scope="module")
def pg_role_url() -> Iterator[tuple[str, str]]:
    """A PostgreSQL role with a password and a database it owns; the URL carries the password."""
    suffix = uuid.uuid4().hex[:10]
    role, database, password = f"orch_role_{suffix}", f"orch_db_{suffix}", f"pgpw-{uuid.uuid4().hex}"
    admin = sa.make_url(PG_URL).set(drivername="postgresql+psycopg2")
    run_as_admin(admin, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        run_as_admin(admin, f"CREATE DATABASE {database} OWNER {role}")
        url = admin.set(drivername="postgresql", username=role, password=password, database=database)
        yield url.render_as_string(hide_password=False), password
    finally:
        run_as_admin(admin, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        run_as_admin(admin, f"DROP ROLE IF EXISTS {role}")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, pg_role_url: tuple[str, str]) -> Iterator[Scenario]:
    database_url, db_password = pg_role_url
    planted = Planted(
        app_secret=f"appsecret-{uuid.uuid4().hex}",
        token=f"tok-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        db_password=db_password,
        fernet_key=Fernet.generate_key().decode(),
    )
    tmp = tmp_path_factory.mktemp("secrets")
    daemon = start_daemon(
        tmp,
        env_extra={
            "ORCHESTRY_DATABASE_URL": database_url,
            "ORCHESTRY_API_TOKEN": planted.token,
            "ORCHESTRY_SECRET_KEY": planted.fernet_key,
        },
    )
    name, secret_name = unique_name("snap"), unique_name("cred")
    running = Scenario(daemon, planted, name, secret_name, [])
    try:
        running.cli("secret", "set", secret_name, f"password={planted.app_secret}")
        doc = demo_app(name)
        doc["spec"]["command"] = ["/bin/sh", "-c", 'echo "replica secret: $DB_PASSWORD"; exec /bin/serve']
        doc["spec"]["environment"] = [
            {"name": "DB_PASSWORD", "source": "secret", "key": secret_name, "field": "password"},
            {"name": "GREETING", "value": "hello"},
        ]
        spec = tmp / f"{name}.yml"
        spec.write_text(yaml.safe_dump(doc))
        running.cli("register", str(spec))
        running.cli("up", name, "--wait", "--timeout", "60")
        running.cli("scale", name, "2", "--wait", "--timeout", "60")
        asyncio.run(_traffic(f"http://{daemon.lb}/{name}/", 10))
        described = json.loads(running.cli("describe", name, "--format", "json"))
        running.replicas = described["replicas"]
        assert len(running.replicas) == 2 and all(r["ready"] for r in running.replicas), described
        yield running
    finally:
        daemon.cli("delete", name, "-f", env=daemon.env(ORCHESTRY_API_TOKEN=planted.token))
        stop_daemon(daemon)


async def _traffic(url: str, count: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            async with session.get(url) as response:
                assert response.status == 200


async def _get(scenario: Scenario, path: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(scenario.daemon.url + path, headers={**scenario.headers, **headers}) as resp:
            return resp.status, await resp.text()


def test_the_plant_took_the_secret_reached_the_replica_and_its_log(scenario: Scenario) -> None:
    for replica in scenario.replicas:
        inspected = json.loads(asyncio.run(docker("inspect", replica["container_id"])))[0]
        assert f"DB_PASSWORD={scenario.planted.app_secret}" in inspected["Config"]["Env"]
        own_log = asyncio.run(_docker_logs(replica["container_id"]))
        assert f"replica secret: {scenario.planted.app_secret}" in own_log


async def _docker_logs(container_id: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "docker", "logs", container_id, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return out.decode(errors="replace")


# --- the diagnostic snapshot ---------------------------------------------------------------------------


def _members(archive_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:gz") as archive:
        members = {}
        for info in archive.getmembers():
            assert info.isfile(), info.name
            assert info.name.startswith(SNAPSHOT_ROOT), info.name
            handle = archive.extractfile(info)
            assert handle is not None
            members[info.name.removeprefix(SNAPSHOT_ROOT)] = handle.read()
    return members


def _check_snapshot(s: Scenario, health: dict[str, Any]) -> dict[str, Callable[[Any], None]]:
    """Member → check against the scenario's figures.  Keys ending in / match every member below."""
    name, ports = s.app, sorted(r["port"] for r in s.replicas)

    def snapshot(data: dict[str, Any]) -> None:
        assert data["node_id"] == s.daemon.node_id and data["version"] == health["version"], data

    def settings(data: dict[str, Any]) -> None:
        assert data["lb_listen"] == s.daemon.lb, data
        assert data["database_url"].startswith("postgresql") and "***" in data["database_url"], data

    def apps(data: list[dict[str, Any]]) -> None:
        [app] = [a for a in data if a["name"] == name]
        assert app["desired_replicas"] == 2 and app["status"] == "running", app
        assert [r["ready"] for r in app["replicas"]] == [True, True], app
        assert sorted(r["port"] for r in app["replicas"]) == ports, app

    def events(data: list[dict[str, Any]]) -> None:
        mine = [e for e in data if e["app"] == name]
        kinds = [e["kind"] for e in mine]
        assert "app_registered" in kinds and kinds.count("replica_started") >= 2, kinds
        assert any(e["message"].startswith("1 → 2 replicas") for e in mine), [e["message"] for e in mine]
        assert not any(e["message"].startswith(f"{name}:") for e in mine), [e["message"] for e in mine]

    def history(data: dict[str, list[dict[str, Any]]]) -> None:
        assert [(r["from_replicas"], r["to_replicas"]) for r in data[name]] == [(1, 2)], data

    def cluster(data: dict[str, Any]) -> None:
        assert data["node_id"] == s.daemon.node_id and data["is_leader"] is True, data

    def nginx_status(data: dict[str, Any]) -> None:
        assert data["running"] is True and name in data["apps"], data

    def app_conf(text: str) -> None:
        for port in ports:
            assert f"127.0.0.1:{port}" in text, text

    def main_conf(text: str) -> None:
        assert s.daemon.lb.split(":")[1] in text, text

    return {
        "snapshot.json": snapshot,
        "settings.json": settings,
        "apps.json": apps,
        "events.json": events,
        "scaling_history.json": history,
        "cluster.json": cluster,
        "nginx/status.json": nginx_status,
        f"nginx/conf.d/{name}.conf": app_conf,
        "nginx/nginx.conf": main_conf,
        "nginx/error.log": lambda text: None,  # any text; the generic checks apply
    }


def test_every_snapshot_member_matches_the_scenario_and_holds_no_secret(scenario: Scenario) -> None:
    async def fetch() -> tuple[bytes, dict[str, Any]]:
        async with aiohttp.ClientSession(headers=scenario.headers) as session:
            async with session.post(f"{scenario.daemon.url}/api/v1/diagnostics") as response:
                assert response.status == 200, await response.text()
                body = await response.read()
            async with session.get(f"{scenario.daemon.url}/health") as response:
                return body, await response.json()

    archive, health = asyncio.run(fetch())
    members = _members(archive)
    checks = _check_snapshot(scenario, health)
    missing = [member for member in checks if member not in members]
    assert not missing, f"members missing from the snapshot: {missing}; it has {sorted(members)}"
    for member, content in members.items():
        text = content.decode()  # every member is text: a decode error fails here, naming nothing else
        assert not leaks(text, scenario.planted), f"{member} leaks {leaks(text, scenario.planted)}"
        parsed: Any = json.loads(text) if member.endswith(".json") else text
        if member in checks:
            checks[member](parsed)
    print(f"\nsnapshot members checked: {len(members)} ({len(checks)} against the scenario's figures)")

    # The CLI writes the same archive.
    target = scenario.daemon.home / "snap.tar.gz"
    scenario.cli("diagnose", "-o", str(target))
    again = _members(target.read_bytes())
    assert set(again) == set(members)
    assert not [m for m, c in again.items() if leaks(c.decode(), scenario.planted)]


# --- API answers, events, the daemon's log ----------------------------------------------------------------


def _get_routes() -> list[str]:
    app = create_app(None, "routes")  # type: ignore[arg-type]  # the router only, nothing is served
    paths = {r.resource.canonical for r in app.router.routes() if r.method == "GET" and r.resource}
    return sorted(paths)


def test_no_get_route_event_or_daemon_log_line_holds_a_secret(scenario: Scenario) -> None:
    filled = {"name": scenario.app, "id": scenario.daemon.node_id, "node": scenario.daemon.node_id}
    answers: dict[str, tuple[int, str]] = {}

    async def walk() -> None:
        for path in _get_routes():
            concrete = re.sub(r"\{(\w+)\}", lambda m: filled.get(m.group(1), scenario.app), path)
            if path.startswith("/api/v1/secrets/"):
                concrete = f"/api/v1/secrets/{scenario.secret_name}"
            answers[path] = await _get(scenario, concrete)
        answers["/metrics (text)"] = await _get(scenario, "/metrics", Accept="text/plain")
        answers["/api/v1/apps/{name}/logs (tail)"] = await _get(
            scenario, f"/api/v1/apps/{scenario.app}/logs?tail=500"
        )
        answers["/apps/{name}/logs (lines)"] = await _get(scenario, f"/apps/{scenario.app}/logs?lines=500")
        answers["/api/v1/events (all)"] = await _get(scenario, "/api/v1/events?limit=1000")

    asyncio.run(walk())
    assert len(_get_routes()) >= 20, _get_routes()  # the router really was walked
    failed = {path: status for path, (status, _) in answers.items() if status >= 500}
    assert not failed, failed
    leaked = {path: leaks(text, scenario.planted) for path, (_, text) in answers.items()}
    assert not {p: kinds for p, kinds in leaked.items() if kinds}, leaked
    # The replica's own line reached the logs route, redacted: the check above read real log lines.
    logs = json.loads(answers["/api/v1/apps/{name}/logs (tail)"][1])["lines"]
    assert any(line["message"] == "replica secret: ***" for line in logs), logs[:5]
    # The secret route names fields, never values.
    status, body = answers["/api/v1/secrets/{name}"]
    assert status == 200 and "password" in body, body
    events = json.loads(answers["/api/v1/events (all)"][1])["events"]
    assert any(e["app"] == scenario.app for e in events)
    print(f"\nGET answers checked: {len(answers)}; events: {len(events)}")

    log = scenario.daemon.log()
    assert log.strip(), "the daemon wrote no log"
    assert not leaks(log, scenario.planted), leaks(log, scenario.planted)


def test_the_attached_console_shows_no_secret(scenario: Scenario, tmp_path: Path) -> None:
    from orchestry_tui.console.app import OrchestryConsole
    from orchestry_tui.console.http_backend import HttpBackend
    from tests.tui.conftest import until

    async def drive() -> list[str]:
        app = OrchestryConsole(
            HttpBackend(scenario.daemon.url, scenario.planted.token, tmp_path), poll_seconds=0.3
        )
        screens: list[str] = []
        async with app.run_test(size=(160, 45)) as pilot:
            await until(lambda: app.frames_applied and app.selected == scenario.app, what="the app selected")
            screens.append(app.export_screenshot())
            for key in ("l", "d"):
                await pilot.press(key)
                await pilot.pause(1.5)  # the logs screen follows the stream; describe loads once
                screens.append(app.export_screenshot())
                await pilot.press("escape")
                await pilot.pause(0.3)
        return screens

    screens = asyncio.run(drive())
    shown = [re.sub(r"<[^>]+>", "", svg).replace("&#160;", " ") for svg in screens]
    assert any("replica secret: ***" in text for text in shown), "the logs screen should show the line"
    for text in shown:
        joined = "".join(text.split())  # a secret wrapped over two lines is still a leak
        assert not leaks(joined, scenario.planted), leaks(joined, scenario.planted)
