"""The engine against real Docker and nginx: routing, zero-drop scaling, crash and health replacement."""

from __future__ import annotations

import asyncio

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
    async with TrafficClient(lb(engine, name)) as client:
        await asyncio.sleep(0.5)
        await engine.scale(name, 5)
        await wait_for(lambda: ready_is(engine, name, 5), timeout=30, what="5 ready replicas")
        await asyncio.sleep(1.0)
        await engine.scale(name, 1)
        await wait_for(lambda: _live_is(engine, name, 1), timeout=60, what="back to 1 replica")
        await asyncio.sleep(0.5)
    assert client.total > 100, client.statuses
    assert client.failures == 0, (client.statuses, client.errors[:5])
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
    async with TrafficClient(lb(engine, name), concurrency=2) as client:
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


async def test_replica_failing_health_leaves_upstream_and_is_replaced(engine: Engine) -> None:
    name = unique_name("sick")
    await engine.register(demo_app(name))
    await engine.up(name)
    await wait_for(lambda: ready_count(engine, name), what="ready")
    [sick] = await engine.runtime.list_managed(name)
    await docker("exec", sick.id, "rm", "/www/health")
    await wait_for(
        lambda: _health_event(engine, name, "replica_unhealthy"), timeout=15, what="unhealthy event"
    )
    await wait_for(lambda: _new_ready(engine, name, sick.id), timeout=30, what="replacement ready")
    status, _ = await get_text(lb(engine, name) + "health")
    assert status == 200


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
