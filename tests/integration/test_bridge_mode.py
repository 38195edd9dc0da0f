"""The whole engine in bridge networking mode, against the real Docker engine, nginx and the stores.

In bridge mode every replica runs on Orchestry's own Docker network, listens on its container port on
0.0.0.0 inside its network namespace, and is reached from the host only through that port published on
127.0.0.1 (Docker's userland proxy answers there).  nginx, the health checks, the drain and the metrics
all use the published port; nothing is ever published on 0.0.0.0.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.engine import Engine
from core.runtime.docker import BRIDGE_NETWORK
from tests.conftest import unique_name
from tests.integration.harness import (
    TrafficClient,
    demo_app,
    docker,
    engine_settings,
    get_text,
    lb,
    ready_count,
    ready_is,
    wait_for,
)


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Engine]:
    """A whole Engine in bridge mode on SQLite; apps and nginx are stopped afterwards."""
    eng = Engine(engine_settings(tmp_path / "state", network_mode="bridge"))
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop(stop_apps=True)


async def inspect(container_id: str) -> dict[str, Any]:
    return json.loads(await docker("inspect", container_id))[0]


def published(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(container port, host ip, host port) of every port binding Docker set up."""
    ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
    return sorted(
        (container_port, binding["HostIp"], binding["HostPort"])
        for container_port, bindings in ports.items()
        for binding in bindings or []
    )


def environment(data: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in data["Config"]["Env"])


async def live_is(eng: Engine, name: str, n: int) -> bool:
    containers = [c for c in await eng.runtime.list_managed(name) if c.running]
    return len(containers) == n and await ready_count(eng, name) == n


def replica_of(body: str) -> str:
    return body.split("replica=")[1].split()[0]


async def replicas_answering(eng: Engine, name: str, expected: set[str], timeout: float = 15.0) -> bool:
    """True once every replica in ``expected`` has answered through nginx."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and seen != expected:
        status, body = await get_text(lb(eng, name))
        if status == 200:
            seen.add(replica_of(body))
    return seen == expected


# --- serving and scaling ---------------------------------------------------------------------------


async def test_bridge_app_listens_inside_and_is_published_on_loopback_only(bridge: Engine) -> None:
    name = unique_name("br")
    await bridge.register(demo_app(name))
    await bridge.up(name)
    await wait_for(lambda: ready_is(bridge, name, 1), what="one ready replica")
    [replica] = (await bridge.get_app(name)).replicas
    data = await inspect(replica.container_id)

    # Inside: the app's own port on every interface of its private network namespace.
    env = environment(data)
    assert (env["PORT"], env["BIND_HOST"]) == ("8080", "0.0.0.0")
    assert list(data["NetworkSettings"]["Networks"]) == [BRIDGE_NETWORK]
    # Outside: that port and nothing else, on 127.0.0.1 only, at the port the engine reports.
    assert published(data) == [("8080/tcp", "127.0.0.1", str(replica.port))]
    assert replica.host == "127.0.0.1"

    status, body = await get_text(f"http://127.0.0.1:{replica.port}/")
    assert status == 200 and f"replica={name}-1 port=8080" in body
    status, body = await get_text(lb(bridge, name))
    assert status == 200 and f"replica={name}-1 port=8080" in body


async def test_bridge_scale_1_3_1_under_traffic_drops_nothing(bridge: Engine) -> None:
    name = unique_name("brs")
    await bridge.register(demo_app(name))
    await bridge.up(name)
    await wait_for(lambda: ready_is(bridge, name, 1), what="first replica ready")
    async with TrafficClient(lb(bridge, name)) as client:
        await asyncio.sleep(0.5)
        await bridge.scale(name, 3)
        await wait_for(lambda: live_is(bridge, name, 3), timeout=30, what="3 ready replicas")
        # Each replica answers with its own name, through its own published port and through nginx.
        views = (await bridge.get_app(name)).replicas
        assert len({v.port for v in views}) == 3
        for view in views:
            status, body = await get_text(f"http://127.0.0.1:{view.port}/")
            assert status == 200 and replica_of(body) == view.name == f"{name}-{view.slot}", body
        assert await replicas_answering(bridge, name, {f"{name}-{slot}" for slot in (1, 2, 3)})
        await asyncio.sleep(1.0)
        await bridge.scale(name, 1)
        await wait_for(lambda: live_is(bridge, name, 1), timeout=60, what="back to 1 replica")
        await asyncio.sleep(0.5)
    assert client.total > 100, client.statuses
    assert client.failures == 0, (client.statuses, client.errors[:5])
    served_by = {replica_of(body) for body in client.bodies}
    assert served_by == {f"{name}-{slot}" for slot in (1, 2, 3)}, client.bodies
    # The ports of the stopped replicas are free again: their userland proxies went with them.
    [remaining] = (await bridge.get_app(name)).replicas
    gone = {v.port for v in views} - {remaining.port}
    for port in gone:
        assert (await get_text(f"http://127.0.0.1:{port}/"))[0] == 0


# --- failures and restarts -------------------------------------------------------------------------


async def test_bridge_killed_replica_is_unrouted_and_replaced(bridge: Engine) -> None:
    name = unique_name("brk")
    await bridge.register(demo_app(name))
    await bridge.up(name)
    await bridge.scale(name, 2)
    await wait_for(lambda: live_is(bridge, name, 2), what="2 ready")
    before = {v.container_id: v for v in (await bridge.get_app(name)).replicas}
    victim = before[sorted(before)[0]]
    async with TrafficClient(lb(bridge, name), concurrency=2) as client:
        await docker("kill", victim.container_id)
        await wait_for(lambda: _replaced(bridge, name, set(before), victim.container_id), timeout=30)
        await asyncio.sleep(0.5)
    assert client.failures == 0, (client.statuses, client.errors[:5])
    after = {v.slot: v for v in (await bridge.get_app(name)).replicas}
    replacement = after[victim.slot]
    data = await inspect(replacement.container_id)
    assert published(data) == [("8080/tcp", "127.0.0.1", str(replacement.port))]
    assert await replicas_answering(bridge, name, {f"{name}-1", f"{name}-2"})
    assert any(e.kind == "replica_crashed" for e in await bridge.events(app=name))


async def _replaced(eng: Engine, name: str, before: set[str], victim: str) -> bool:
    now = {c.id for c in await eng.runtime.list_managed(name) if c.running}
    return victim not in now and len(now - before) == 1 and await ready_count(eng, name) == 2


async def test_bridge_controller_restart_adopts_same_containers_and_ports(
    tmp_path: Path, database_url: str
) -> None:
    settings = engine_settings(tmp_path / "state", database_url, network_mode="bridge")
    first = Engine(settings)
    await first.start()
    second: Engine | None = None
    name = unique_name("bra")
    try:
        await first.register(demo_app(name))
        await first.up(name)
        await first.scale(name, 3)
        await wait_for(lambda: live_is(first, name, 3), what="3 ready")
        before = {c.id: published(await inspect(c.id)) for c in await first.runtime.list_managed(name)}
        async with TrafficClient(lb(first, name), concurrency=2) as client:
            await asyncio.sleep(0.3)
            await first.stop()  # containers keep running, nginx keeps serving
            await asyncio.sleep(0.5)
            second = Engine(settings)
            await second.start()
            await wait_for(lambda: ready_is(second, name, 3), what="3 adopted replicas ready")
            await asyncio.sleep(1.0)
        after = {c.id: published(await inspect(c.id)) for c in await second.runtime.list_managed(name)}
        assert after == before, "a restarted controller must adopt the same containers and ports"
        views = (await second.get_app(name)).replicas
        assert sorted(("8080/tcp", "127.0.0.1", str(v.port)) for v in views) == sorted(
            binding for bindings in before.values() for binding in bindings
        )
        assert client.failures == 0, (client.statuses, client.errors[:5])
        assert client.total > 20
        kinds = [e.kind for e in await second.events(app=name, since=second.started_at)]
        assert "replicas_adopted" in kinds and "replica_started" not in kinds, kinds
        assert await replicas_answering(second, name, {f"{name}-{slot}" for slot in (1, 2, 3)})
    finally:
        await (second or first).stop(stop_apps=True)


# --- health checks -----------------------------------------------------------------------------------


async def test_bridge_health_check_probes_the_published_port(bridge: Engine) -> None:
    """An app that listens on another port than its declared containerPort never becomes ready: the
    published port forwards to the declared one, where nothing answers."""
    name = unique_name("brw")
    doc = demo_app(name)
    doc["spec"]["environment"] = [{"name": "PORT", "value": "9090"}]
    doc["spec"]["command"] = ["sh", "-c", "PORT=9090 exec /bin/serve"]
    doc["healthCheck"] = {"path": "/health", "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 1}
    await bridge.register(doc)
    await bridge.up(name)
    view = await wait_for(lambda: _never_ready(bridge, name), timeout=30, what="never-ready reason")
    reason = view.status_reason
    published_port = next(r.port for r in view.replicas if r.container_id)
    # The reason names the published port probed, the container port behind it and the fix.
    assert f"GET /health on 127.0.0.1:{published_port} (container port 8080)" in reason, reason
    assert "must listen on 0.0.0.0:8080 inside its container" in reason, reason
    assert (await get_text(lb(bridge, name)))[0] == 503


async def _never_ready(eng: Engine, name: str) -> Any:
    view = await eng.get_app(name)
    return view if "never became healthy" in view.status_reason else None


async def test_bridge_tcp_probe_waits_for_the_app_behind_the_published_port(bridge: Engine) -> None:
    """Without an HTTP check a replica is probed by TCP connect.  Docker's userland proxy accepts on the
    published port as soon as the container starts, before the app listens: the probe must not count
    that as ready, or nginx routes requests to a replica that cannot answer them."""
    name = unique_name("brt")
    doc = demo_app(name)
    del doc["healthCheck"]
    # The app listens 3 s after its container starts.
    doc["spec"]["command"] = ["sh", "-c", "sleep 3; exec /bin/serve"]
    await bridge.register(doc)
    await bridge.up(name)
    await wait_for(lambda: bridge.runtime.list_managed(name), what="the container")
    started = time.monotonic()
    async with TrafficClient(lb(bridge, name), concurrency=2) as client:
        await wait_for(lambda: ready_is(bridge, name, 1), timeout=30, what="ready replica")
        ready_after = time.monotonic() - started
        await asyncio.sleep(0.5)
    assert ready_after > 2.0, f"routed {ready_after:.1f} s after start, before the app listened"
    # Before the replica was routed nginx answered 503 itself; once routed, nothing failed.
    assert client.statuses[200] > 10 and client.errors == [], (client.statuses, client.errors[:5])
    assert set(client.statuses) <= {200, 503}, client.statuses
    ready_events = [e for e in await bridge.events(app=name) if e.kind == "replica_ready"]
    assert ready_events and "(container port 8080) accepts connections" in ready_events[0].message
