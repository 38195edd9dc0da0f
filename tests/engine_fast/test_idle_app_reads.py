"""An idle leader's periodic work reads no app from the store: the safety net that keeps a worker per
app (every relist_interval / 3) takes the leader's kept records, which are current while it leads."""

from __future__ import annotations

import asyncio

from core.runtime.base import ContainerInfo
from core.store.records import AppRecord
from tests.support.world import MemoryWorld, app_document, unique_app


async def test_the_workers_safety_net_reads_no_app_from_the_store(world: MemoryWorld) -> None:
    names = [unique_app() for _ in range(3)]
    for name in names:
        await world.engine.register(app_document(name))
    lists: list[int] = []
    read_all = world.engine.store.apps.list

    def counted() -> list[AppRecord]:
        lists.append(1)
        return read_all()

    world.engine.store.apps.list = counted  # type: ignore[method-assign]
    watch = world.engine._c.watch
    await watch.ensure_workers()  # new apps since the records were kept: read once
    lists.clear()
    for _ in range(3):
        await watch.ensure_workers()
    assert lists == []
    # A new app is still found: the next round reads the records once and gives it a worker.
    added = unique_app()
    await world.engine.register(app_document(added))
    world.engine.reconciler._workers.pop(added).cancel()
    await watch.ensure_workers()
    await watch.ensure_workers()
    assert added in world.engine.reconciler._workers
    assert len(lists) <= 1
    assert set(names) <= set(world.engine.reconciler._workers)


async def test_health_probes_that_arrive_together_share_one_database_ping(world: MemoryWorld) -> None:
    pings: list[int] = []
    ping = world.engine.store.database.ping

    def counted() -> None:
        pings.append(1)
        ping()

    world.engine.store.database.ping = counted  # type: ignore[method-assign]
    reports = await asyncio.gather(*(world.engine.health() for _ in range(8)))
    assert [r["database"] for r in reports] == [{"status": "ok"}] * 8
    assert pings == [1]


async def test_stopped_apps_are_relisted_together_and_a_stray_container_is_still_found(
    world: MemoryWorld,
) -> None:
    """A stopped app with nothing left makes no pass and no list call of its own each relist_interval:
    one listing of every container serves all of them, and still finds a container of one (left by a
    peer, started by hand), which that app's pass then stops as its own relist did."""
    running = unique_app()
    await world.engine.register(app_document(running))
    await world.engine.up(running)
    await world.ready(running, 1)
    stray = world.container(running, 1).request
    await world.engine.down(running, force=True)
    await world.settle(lambda: not world.runtime.running(running), f"{running} stopped")
    stopped = [unique_app() for _ in range(3)]
    for name in stopped:
        await world.engine.register(app_document(name))
    reconciler = world.engine.reconciler
    quiet = [running, *stopped]
    await world.settle(lambda: all(getattr(reconciler.apps[n], "quiet", True) for n in quiet), "all quiet")
    asked: list[str | None] = []
    list_managed = world.runtime.list_managed

    async def counted(app: str | None = None) -> list[ContainerInfo]:
        asked.append(app)
        return await list_managed(app)

    world.runtime.list_managed = counted  # type: ignore[method-assign]
    relist = reconciler.config.relist_interval
    for _ in range(3):
        await world.clock.advance(relist)
        await asyncio.sleep(0.01)
    assert asked.count(None) <= 3 and not [app for app in asked if app is not None]
    world.runtime.seed(stray)
    assert world.runtime.running(running)
    await world.settle(lambda: not world.runtime.running(running), "the stray container stopped", step=1.0)
    assert len(world.runtime.running(running)) == 0
