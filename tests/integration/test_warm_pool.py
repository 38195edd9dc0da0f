"""scaling.warmPool on real Docker and nginx: a scale-out starts the pool's containers (zero-drop,
routed), the pool is refilled, and a restarted controller adopts it (host and bridge networking)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.engine import Engine
from core.settings import Settings
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
from tests.support.offline_edit import set_warm_pool_offline


async def pool_ids(engine: Engine, name: str) -> set[str]:
    return {c.id for c in await engine.runtime.list_warm(name)}  # type: ignore[attr-defined]


async def pool_is(engine: Engine, name: str, size: int) -> bool:
    return len(await pool_ids(engine, name)) == size


@pytest.mark.parametrize("network_mode", ["host", "bridge"])
async def test_a_member_removed_behind_our_back_is_started_fresh_and_gives_its_port_back(
    tmp_path: Path, network_mode: str
) -> None:
    """``docker rm -f`` of the pool member a scale-out takes next: the scale succeeds with a fresh
    container in its slot, and the member's port is no longer held by the engine's allocator."""
    name = unique_name("warm")
    doc = demo_app(name, scaling={"mode": "manual", "minReplicas": 1, "maxReplicas": 10, "warmPool": 2})
    engine = Engine(engine_settings(tmp_path / "state", network_mode=network_mode))
    await engine.start()
    try:
        await engine.register(doc)
        await engine.up(name)
        await wait_for(lambda: ready_count(engine, name), what="first replica ready")
        await wait_for(lambda: pool_is(engine, name, 2), timeout=30, what="a warm pool of 2")
        gone, kept = sorted(await engine.runtime.list_warm(name), key=lambda w: w.slot)  # type: ignore[attr-defined]
        assert gone.port in engine.reconciler.ports.held()
        await docker("rm", "-f", gone.id)

        await engine.scale(name, 2)
        await wait_for(lambda: ready_is(engine, name, 2), timeout=30, what="2 ready replicas")
        replicas = await engine.runtime.list_managed(name)
        fresh = next(r for r in replicas if r.slot == gone.slot)
        assert fresh.id not in {gone.id, kept.id} and fresh.port != gone.port
        assert kept.id in await pool_ids(engine, name)  # not taken: the scale asked for one
        assert gone.port not in engine.reconciler.ports.held()
        for _ in range(10):
            status, _body = await get_text(lb(engine, name))
            assert status == 200
        await wait_for(lambda: pool_is(engine, name, 2), timeout=30, what="the pool refilled to 2")
    finally:
        await engine.delete(name)
        assert await pool_ids(engine, name) == set()
        await engine.stop(stop_apps=True)


async def leave_a_pool_of_three(settings: Settings, name: str) -> tuple[Engine, set[str]]:
    """A controller that runs ``name`` (1 replica, warmPool 3) and then stops, leaving replica and pool
    running: the stopped engine (for clean-up) and the pool's container ids."""
    doc = demo_app(name, scaling={"mode": "manual", "minReplicas": 1, "maxReplicas": 10, "warmPool": 3})
    first = Engine(settings)
    await first.start()
    try:
        await first.register(doc)
        await first.up(name)
        await wait_for(lambda: ready_count(first, name), what="first replica ready")
        await wait_for(lambda: pool_is(first, name, 3), timeout=30, what="a warm pool of 3")
        pool = await pool_ids(first, name)
    except BaseException:
        await first.delete(name)
        await first.stop(stop_apps=True)
        raise
    await first.stop(stop_apps=False, stop_nginx=True)
    return first, pool


async def test_scale_out_starts_the_pool_zero_drop_and_the_pool_is_refilled(tmp_path: Path) -> None:
    name = unique_name("warm")
    doc = demo_app(name, scaling={"mode": "manual", "minReplicas": 1, "maxReplicas": 10, "warmPool": 5})
    engine = Engine(engine_settings(tmp_path / "state"))
    await engine.start()
    try:
        await engine.register(doc)
        await engine.up(name)
        await wait_for(lambda: ready_count(engine, name), what="first replica ready")
        await wait_for(lambda: pool_is(engine, name, 5), timeout=30, what="a warm pool of 5")
        warm = await pool_ids(engine, name)
        # Pool members are no replicas: not listed, not counted, not routed.
        assert len(await engine.runtime.list_managed(name)) == 1
        assert len((await engine.get_app(name)).replicas) == 1

        async with TrafficClient(lb(engine, name), label="scale 1→5 from the pool") as client:
            await asyncio.sleep(0.5)
            await engine.scale(name, 5)
            await wait_for(lambda: ready_is(engine, name, 5), timeout=30, what="5 ready replicas")
            await asyncio.sleep(0.5)
        client.assert_none_failed(at_least=20)
        replicas = {c.id for c in await engine.runtime.list_managed(name)}
        assert len(replicas) == 5 and len(warm & replicas) == 4  # the new four came from the pool
        served = set()
        for _ in range(40):
            status, body = await get_text(lb(engine, name))
            assert status == 200
            served.add(body.split("replica=")[1].split()[0])
        assert len(served) >= 3, served  # nginx routes to the started pool members

        await wait_for(lambda: pool_is(engine, name, 5), timeout=30, what="the pool refilled to 5")
        assert not await pool_ids(engine, name) & replicas
    finally:
        await engine.delete(name)
        assert await pool_ids(engine, name) == set()
        await engine.stop(stop_apps=True)


@pytest.mark.parametrize("network_mode", ["host", "bridge"])
async def test_a_restarted_controller_keeps_the_pool_and_scales_out_from_it(
    tmp_path: Path, network_mode: str
) -> None:
    name = unique_name("warm")
    settings = engine_settings(tmp_path / "state", network_mode=network_mode)
    first, pool = await leave_a_pool_of_three(settings, name)
    second: Engine | None = None
    try:
        second = Engine(settings)
        await second.start()
        await wait_for(lambda: ready_is(second, name, 1), timeout=30, what="the replica adopted")
        await second.reconciler.reconcile_now(name)
        assert await pool_ids(second, name) == pool  # adopted: the same containers, nothing re-created
        await second.scale(name, 3)
        await wait_for(lambda: ready_is(second, name, 3), timeout=30, what="3 ready replicas")
        replicas = {c.id for c in await second.runtime.list_managed(name)}
        assert len(replicas & pool) == 2  # both new replicas are started pool members
        for _ in range(20):
            status, _body = await get_text(lb(second, name))
            assert status == 200
        kinds = [e.kind for e in await second.events(app=name)]
        assert "warm_pool_replaced" not in kinds
    finally:
        last = second or first
        await last.delete(name)
        assert await pool_ids(last, name) == set()
        await last.stop(stop_apps=True)


@pytest.mark.parametrize("lowered", [1, 0])
async def test_a_pool_lowered_while_the_controller_was_down_is_cut_down_when_it_starts(
    tmp_path: Path, lowered: int
) -> None:
    name = unique_name("warm")
    settings = engine_settings(tmp_path / "state")
    first, pool = await leave_a_pool_of_three(settings, name)
    second: Engine | None = None
    try:
        await asyncio.to_thread(set_warm_pool_offline, settings.database_url, name, lowered)

        second = Engine(settings)
        await second.start()
        await wait_for(lambda: ready_is(second, name, 1), timeout=30, what="the replica adopted")
        await wait_for(lambda: pool_is(second, name, lowered), timeout=30, what=f"the pool cut to {lowered}")
        await second.reconciler.reconcile_now(name)
        left = await pool_ids(second, name)
        assert len(left) == lowered and left <= pool  # the surplus removed, the rest kept as it was
        shrunk = [e for e in await second.events(app=name) if e.kind == "warm_pool_shrunk"]
        assert len(shrunk) == 1 and f"removed {3 - lowered}" in shrunk[0].message
    finally:
        last = second or first
        await last.delete(name)
        assert await pool_ids(last, name) == set()
        await last.stop(stop_apps=True)
