"""The intent of a request (a forced stop, clearing an app's containers) travels with that request:
another operation on the same app at the same moment cannot cancel it (in-memory engine, fake clock)."""

from __future__ import annotations

import asyncio

from core.reconciler import FORCE_STOP_SECONDS
from tests.support.world import MemoryWorld, app_document, unique_app

GRACE_SECONDS = 10  # app_document's terminationGracePeriodSeconds


async def started(world: MemoryWorld, replicas: int) -> str:
    name = unique_app("intent")
    await world.engine.register(app_document(name, replicas=replicas))
    await world.engine.up(name)
    await world.ready(name, replicas)
    return name


async def test_a_forced_down_stays_forced_whichever_plain_down_races_it(world: MemoryWorld) -> None:
    for forced_first in (True, False):
        name = await started(world, 2)
        replicas = world.runtime.running(name)
        downs = [world.engine.down(name, force=True), world.engine.down(name)]
        if not forced_first:
            downs.reverse()
        await asyncio.gather(*downs)
        assert world.runtime.running(name) == []
        grace = [c.stopped_with_timeout for c in replicas]
        assert grace == [FORCE_STOP_SECONDS] * 2, f"forced first: {forced_first}"


async def test_a_plain_down_drains_with_the_spec_grace_period(world: MemoryWorld) -> None:
    name = await started(world, 2)
    replicas = world.runtime.running(name)
    await world.engine.down(name)
    assert [c.stopped_with_timeout for c in replicas] == [GRACE_SECONDS] * 2


async def test_clearing_instances_while_a_scale_lands_replaces_every_old_container(
    world: MemoryWorld,
) -> None:
    name = await started(world, 2)
    old = {c.id for c in world.runtime.running(name)}
    await asyncio.gather(world.engine.clear_instances(name), world.engine.scale(name, 3))
    await world.ready(name, 3)
    running = world.runtime.running(name)
    assert len(running) == 3
    assert old.isdisjoint(c.id for c in running)
