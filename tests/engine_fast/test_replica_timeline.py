"""The start-up timeline a bench reads (core/timeline.py): each new replica's stages, in order, only
while a timeline is set, and "routed" only once the load balancer serves it."""

from __future__ import annotations

from core.timeline import FIRST_PROBE, PASSED, PLANNED, ROUTED, ReplicaTimeline
from tests.support.world import MemoryWorld, app_document, unique_app


async def test_each_new_replica_is_planned_probed_passed_and_routed_in_that_order(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    timeline = ReplicaTimeline()
    world.engine.reconciler.record_timeline(timeline)

    await world.engine.scale(name, 3)
    await world.ready(name, 3)
    await world.settle(
        lambda: all(ROUTED in stages for stages in timeline.by_replica().values()), "both new replicas routed"
    )
    marks = timeline.by_replica()
    assert sorted(marks) == [f"{name}-2", f"{name}-3"]  # the replica that was already there is not new
    for stages in marks.values():
        assert list(stages) == [PLANNED, FIRST_PROBE, PASSED, ROUTED]
        assert stages[PLANNED] <= stages[FIRST_PROBE] <= stages[PASSED] <= stages[ROUTED]

    world.engine.reconciler.record_timeline(None)
    timeline.clear()
    await world.engine.scale(name, 4)
    await world.ready(name, 4)
    assert timeline.marks == []  # off again: nothing is recorded


async def test_a_replica_that_never_passes_is_never_marked_routed(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    timeline = ReplicaTimeline()
    world.engine.reconciler.record_timeline(timeline)
    world.runtime.on_create = lambda container: setattr(container, "healthy", False)

    await world.engine.scale(name, 2)
    await world.settle(
        lambda: FIRST_PROBE in timeline.by_replica().get(f"{name}-2", {}), "the new replica probed"
    )
    await world.clock.advance(2.0)
    stages = timeline.by_replica()[f"{name}-2"]
    assert PASSED not in stages and ROUTED not in stages
    assert world.routed_slots(name) == [1]
