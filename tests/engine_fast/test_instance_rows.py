"""The replicas the leader mirrors into the store (what followers and the next leader show): rows follow
scale-outs, scale-ins and replacements, and a pass rewrites only the rows of replicas that changed."""

from __future__ import annotations

from core.store.records import InstanceRecord
from tests.support.world import MemoryWorld, app_document, unique_app


def rows(world: MemoryWorld, app: str) -> dict[int, InstanceRecord]:
    return {rec.slot: rec for rec in world.engine.store.instances.list(app)}


def matches_replicas(world: MemoryWorld, app: str) -> bool:
    saved = rows(world, app)
    running = {c.slot: c.id for c in world.runtime.running(app)}
    return {slot: (rec.container_id, rec.ready) for slot, rec in saved.items()} == {
        slot: (cid, True) for slot, cid in running.items()
    }


async def test_rows_follow_scaling_and_untouched_replicas_are_not_rewritten(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=3))
    await world.engine.up(name)
    await world.ready(name, 3)
    await world.settle(lambda: matches_replicas(world, name), "three rows, all ready")
    before = rows(world, name)
    written: list[int] = []
    upsert = world.engine.store.instances.upsert

    def counted(rec: InstanceRecord) -> InstanceRecord:
        written.append(rec.slot)
        return upsert(rec)

    world.engine.store.instances.upsert = counted  # type: ignore[method-assign]

    await world.engine.scale(name, 5)
    await world.ready(name, 5)
    await world.settle(lambda: matches_replicas(world, name), "five rows, all ready")
    assert set(written) == {4, 5}, written  # the three replicas that did not change keep their rows
    assert all(rows(world, name)[slot] == before[slot] for slot in (1, 2, 3))

    await world.engine.scale(name, 2)
    await world.ready(name, 2)
    await world.settle(lambda: matches_replicas(world, name), "two rows left")

    replaced = world.container(name, 2).id
    world.runtime.crash(f"{name}-2", exit_code=1)

    def replaced_and_saved() -> bool:
        # The pass removes the dead container, then creates its replacement under the same name, with
        # store writes between the two: for a moment no container is named <app>-2. That is a
        # replacement in progress, so wait on; asking world.container() then failed the test.
        new = world.runtime.find(f"{name}-2")
        return new is not None and new.id != replaced and matches_replicas(world, name)

    await world.settle(replaced_and_saved, "the replaced replica's row names its new container")
