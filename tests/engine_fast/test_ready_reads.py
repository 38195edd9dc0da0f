"""Replicas turning ready during a scale-out take their app's record from the leader's kept records, as
passes do: no store read each (in a thread, where it queued behind the store writes of the others)."""

from __future__ import annotations

from core.store.records import AppRecord
from tests.support.world import MemoryWorld, app_document, unique_app


async def one_ready_replica_records_kept(world: MemoryWorld) -> str:
    """An app up with one ready replica, its record kept as the scaling loop keeps them each interval."""
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    await world.engine.reconciler.records.current()
    return name


def count_app_reads(world: MemoryWorld) -> list[str]:
    """From now on, the names of the app records read from the store."""
    reads: list[str] = []
    get = world.engine.store.apps.get

    def counted(app: str) -> AppRecord | None:
        reads.append(app)
        return get(app)

    world.engine.store.apps.get = counted  # type: ignore[method-assign]
    return reads


async def test_a_scale_out_reads_no_app_record_from_the_store(world: MemoryWorld) -> None:
    name = await one_ready_replica_records_kept(world)
    await world.engine.scale(name, 4)  # the scale itself reads the record it changes
    reads = count_app_reads(world)
    await world.ready(name, 4)
    await world.settle(
        lambda: (world.engine.reconciler.apps[name].reported or ("",))[0] == "running", "running"
    )
    assert reads == []


async def test_a_scale_call_reads_no_app_record_from_the_store(world: MemoryWorld) -> None:
    """The scale call checks its app (mode, current count) against the leader's kept record: its
    replicas' first Docker call waits for everything before it, and a store read in a thread queued
    behind the store work of the moment.  The new count is still written before any pass acts."""
    name = await one_ready_replica_records_kept(world)
    reads = count_app_reads(world)
    result = await world.engine.scale(name, 4)
    assert (result.status, result.replicas) == ("scaled", 4)
    assert (await world.engine.scale(name, 4)).status == "no_change"  # the kept record has the new count
    await world.ready(name, 4)
    assert reads == []
    stored = world.engine.store.apps.get(name)
    assert stored is not None and stored.desired_replicas == 4
