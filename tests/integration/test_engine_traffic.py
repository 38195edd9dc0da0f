"""The engine against real Docker and nginx: routing, zero-drop scaling, crash and health replacement."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import docker as docker_sdk

from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import (
    TrafficClient,
    demo_app,
    docker,
    get_text,
    lb,
    ready_count,
    ready_is,
    wait_for,
)


async def test_up_routes_through_nginx_and_down_stops_everything(engine: Engine) -> None:
    name = unique_name("web")
    view, created = await engine.register(demo_app(name))
    assert created and view.status == "stopped"
    result = await engine.up(name)
    assert result.started == 1 and result.adopted == 0
    await wait_for(lambda: ready_count(engine, name), what="one ready replica")
    status, body = await get_text(lb(engine, name))
    assert status == 200 and f"{name}-1" in body
    assert (await engine.get_app(name)).status == "running"
    stopped = await engine.down(name)
    assert stopped == 1
    assert await engine.runtime.list_managed(name) == []
    status, body = await get_text(lb(engine, name))
    assert status == 503 and "no ready replicas" in body


async def test_scale_1_to_5_to_1_under_traffic_drops_no_request(engine: Engine) -> None:
    name = unique_name("zero")
    await engine.register(demo_app(name))
    await engine.up(name)
    await wait_for(lambda: ready_count(engine, name), what="first replica ready")
    async with TrafficClient(lb(engine, name), label="scale 1→5→1") as client:
        await asyncio.sleep(0.5)
        await engine.scale(name, 5)
        await wait_for(lambda: ready_is(engine, name, 5), timeout=30, what="5 ready replicas")
        await asyncio.sleep(1.0)
        await engine.scale(name, 1)
        await wait_for(lambda: _live_is(engine, name, 1), timeout=60, what="back to 1 replica")
        await asyncio.sleep(0.5)
    client.assert_none_failed(at_least=100)  # GET and POST, no retry, a connection each
    served_by = {body.split("replica=")[1].split()[0] for body in client.bodies}
    assert len(served_by) >= 3, f"traffic should have reached several replicas, got {client.bodies}"


async def _live_is(engine: Engine, name: str, n: int) -> bool:
    containers = await engine.runtime.list_managed(name)
    view = await engine.get_app(name)
    return len(containers) == n and view.ready_replicas == n


async def test_killed_replica_is_unrouted_then_replaced(engine: Engine) -> None:
    name = unique_name("kill")
    await engine.register(demo_app(name))
    await engine.up(name)
    await engine.scale(name, 2)
    await wait_for(lambda: ready_is(engine, name, 2), what="2 ready")
    before = {c.id for c in await engine.runtime.list_managed(name)}
    victim = sorted(before)[0]
    # GET only: a request in flight on a replica killed with SIGKILL is lost whatever the engine does;
    # nginx resends an idempotent GET to the next replica, so none fails.
    async with TrafficClient(lb(engine, name), concurrency=2, methods=("GET",), label="kill") as client:
        await docker("kill", victim)
        await wait_for(
            lambda: _replaced(engine, name, before, victim), timeout=30, what="a replacement replica, ready"
        )
        await asyncio.sleep(0.5)
    # nginx retries idempotent requests on the next replica, so killing one loses nothing.
    assert client.failures == 0, (client.statuses, client.errors[:5])
    events = await engine.events(app=name)
    assert any(e.kind == "replica_crashed" for e in events)


async def _replaced(engine: Engine, name: str, before: set[str], victim: str) -> bool:
    now = {c.id for c in await engine.runtime.list_managed(name) if c.running}
    return victim not in now and len(now - before) == 1 and await ready_count(engine, name) == 2


async def test_a_signal_the_replica_survives_unroutes_it_only_until_its_checks_pass_again(
    engine: Engine,
) -> None:
    """``docker kill -s HUP`` (a config reload; the demo's busybox httpd survives it) makes Docker send a
    "kill" event, which unroutes the replica at once; once it is still running after the event's grace,
    the same container is routed again and answers through nginx: no replacement, no restart."""
    name = unique_name("hup")
    await engine.register(demo_app(name))
    await engine.up(name)
    await wait_for(lambda: ready_is(engine, name, 1), what="one ready replica")
    [before] = await engine.runtime.list_managed(name)
    client = docker_sdk.from_env()
    try:
        await asyncio.to_thread(lambda: client.containers.get(before.id).kill(signal="SIGHUP"))
        await wait_for(
            lambda: ready_is(engine, name, 0), timeout=10, interval=0.02, what="unrouted by the kill"
        )
        await wait_for(lambda: ready_is(engine, name, 1), timeout=15, what="the same replica routed again")
    finally:
        client.close()
    status, body = await get_text(lb(engine, name))
    assert status == 200 and f"{name}-1" in body
    [after] = await engine.runtime.list_managed(name)
    assert after.id == before.id and after.running
    [replica] = (await engine.get_app(name)).replicas
    assert (replica.container_id, replica.restarts) == (before.id, 0)
    kinds = [e.kind for e in await engine.events(app=name)]
    assert "replica_survived_signal" in kinds and "replica_crashed" not in kinds


async def test_replica_failing_health_leaves_upstream_and_is_replaced(engine: Engine) -> None:
    """Not only its state: the rendered upstream drops it and, once nginx reloaded, no request reaches
    it (counted from the replica's own request log, which goes on until it is removed)."""
    name = unique_name("sick")
    await engine.register(demo_app(name))
    await engine.up(name)
    await engine.scale(name, 2)
    await wait_for(lambda: ready_is(engine, name, 2), what="2 ready")
    sick, _healthy = (await engine.get_app(name)).replicas
    upstream = engine.nginx.conf_dir / f"{name}.conf"
    sick_server = f"server 127.0.0.1:{sick.port} "
    assert sick_server in upstream.read_text()
    hits = ReplicaRequestLog(sick.container_id)
    async with hits, TrafficClient(lb(engine, name), concurrency=2, label="sick") as client:
        await wait_for(lambda: hits.served_since(0) > 0, what="traffic reaching the replica")
        reloads = engine.nginx.status()["reload_count"]
        await docker("exec", sick.container_id, "rm", "/www/health")
        await wait_for(
            lambda: _health_event(engine, name, "replica_unhealthy"), timeout=15, what="unhealthy event"
        )
        await wait_for(lambda: sick_server not in upstream.read_text(), timeout=5, what="upstream without it")
        await wait_for(lambda: engine.nginx.status()["reload_count"] > reloads, timeout=5, what="a reload")
        await asyncio.sleep(0.5)  # new workers serve ~0.1 s after a reload (NOTES.md)
        unrouted_at = time.time()
        served_before = client.total
        await wait_for(lambda: _new_ready(engine, name, sick.container_id), timeout=30, what="replacement")
        await asyncio.sleep(1.0)
    assert client.total > served_before + 10, client.figures()
    assert hits.served_since(unrouted_at) == 0, hits.lines[-5:]
    client.assert_none_failed()
    status, _ = await get_text(lb(engine, name) + "health")
    assert status == 200


class ReplicaRequestLog:
    """Follows one demo replica's own log (busybox httpd -v: one ``response:NNN`` line a request)."""

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        self.lines: list[tuple[float, str]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReplicaRequestLog:
        self._proc = await asyncio.create_subprocess_exec(
            "docker", "logs", "--follow", "--timestamps", self.container_id,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            stamp, _, message = raw.decode(errors="replace").strip().partition(" ")
            when = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
            self.lines.append((when, message))

    def served_since(self, when: float) -> int:
        """Requests the replica answered 200 after ``when`` (probes of the removed /health get 404)."""
        return sum(1 for at, message in self.lines if at >= when and "response:200" in message)

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        if self._reader is not None:
            await self._reader


async def _health_event(engine: Engine, name: str, kind: str) -> bool:
    return any(e.kind == kind for e in await engine.events(app=name, category="health"))


async def _new_ready(engine: Engine, name: str, old_id: str) -> bool:
    view = await engine.get_app(name)
    return any(r.ready and r.container_id != old_id for r in view.replicas) and all(
        r.container_id != old_id for r in view.replicas
    )


async def test_replica_that_never_becomes_healthy_shows_why(engine: Engine) -> None:
    name = unique_name("never")
    doc = demo_app(name)
    doc["healthCheck"] = {
        "path": "/cgi-bin/fail",
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 1,
    }
    await engine.register(doc)
    await engine.up(name)
    view = await wait_for(lambda: _never_ready(engine, name), timeout=30, what="never-ready reason")
    assert view.status == "degraded"
    assert "never became healthy" in view.status_reason and "500" in view.status_reason
    status, _ = await get_text(lb(engine, name))
    assert status == 503


async def _never_ready(engine: Engine, name: str) -> object:
    view = await engine.get_app(name)
    return view if "never became healthy" in view.status_reason else None
