"""Things going wrong under the engine's feet: nginx killed, a replica frozen, a container removed."""

from __future__ import annotations

import asyncio
import os
import signal

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


async def test_nginx_killed_is_restarted_with_the_routes_it_served(engine: Engine) -> None:
    name = unique_name("ngx")
    await engine.register(demo_app(name))
    await engine.up(name)
    await engine.scale(name, 2)
    await wait_for(lambda: ready_is(engine, name, 2), what="2 ready")
    pid = engine.nginx.status()["pid"]
    assert pid
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: engine.nginx.status()["pid"] not in (None, pid), timeout=20, what="a new nginx")
    _status, body = await wait_for(lambda: _ok(lb(engine, name)), timeout=20, what="routing back")
    assert name in body
    kinds = [e.kind for e in await engine.events(category="error")]
    assert "nginx_restarted" in kinds


async def _ok(url: str) -> tuple[int, str] | None:
    status, body = await get_text(url)
    return (status, body) if status == 200 else None


async def test_frozen_replica_is_unrouted_and_replaced_while_traffic_flows(engine: Engine) -> None:
    name = unique_name("frz")
    await engine.register(demo_app(name))
    await engine.up(name)
    await engine.scale(name, 2)
    await wait_for(lambda: ready_is(engine, name, 2), what="2 ready")
    frozen = (await engine.runtime.list_managed(name))[0]
    async with TrafficClient(lb(engine, name), concurrency=2, label="frozen replica") as client:
        await wait_for(lambda: client.total > 20, what="traffic flowing")
        assert client.failures == 0, client.figures()
        await docker("pause", frozen.id)  # every failure from here on counts
        frozen_at = client.total
        await wait_for(
            lambda: _replaced(engine, name, frozen.id), timeout=45, what="the frozen replica replaced"
        )
        await asyncio.sleep(1.0)
    print(f"after the freeze: {client.total - frozen_at} sent, {client.failures} failed: {client.errors}")
    client.assert_none_failed(at_least=frozen_at + 10)


async def _replaced(engine: Engine, name: str, old_id: str) -> bool:
    ids = {c.id for c in await engine.runtime.list_managed(name)}
    return old_id not in ids and await ready_count(engine, name) == 2


async def test_container_removed_behind_the_engines_back_is_recreated(engine: Engine) -> None:
    name = unique_name("rmv")
    await engine.register(demo_app(name))
    await engine.up(name)
    await wait_for(lambda: ready_is(engine, name, 1), what="ready")
    [victim] = await engine.runtime.list_managed(name)
    await docker("rm", "-f", victim.id)
    await wait_for(lambda: _one_new(engine, name, victim.id), timeout=30, what="a new replica")
    status, body = await get_text(lb(engine, name))
    assert status == 200 and name in body


async def _one_new(engine: Engine, name: str, old_id: str) -> bool:
    ids = {c.id for c in await engine.runtime.list_managed(name)}
    return old_id not in ids and len(ids) == 1 and await ready_count(engine, name) == 1
