"""Replicas a runtime is still placing by itself (Swarm replacing a task lost with its node): their slot
is taken, they are never cleared as dead nor doubled, their reason shows, and a surplus one goes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import SpecError
from core.runtime.base import STATE_PENDING
from tests.support.world import MemoryWorld, app_document, unique_app

PLACING = (
    "Swarm cannot place it: no suitable node (insufficient resources on 2 nodes). Fix: lower spec.resources"
)


def creates(world: MemoryWorld, app: str) -> list[str]:
    return [entry[1] for entry in world.journal if entry[0] == "create" and entry[1].startswith(f"{app}-")]


async def test_a_replacement_still_being_placed_holds_its_slot_and_is_routed_once_it_runs(
    world: MemoryWorld,
) -> None:
    name = await world.started("m", 3)
    before = creates(world, name)
    lost = world.container(name, 2)
    world.runtime.vanish(lost.name)  # its node is gone ...
    replacement = world.runtime.seed(lost.request)  # ... and the runtime is placing a new one
    replacement.state = STATE_PENDING
    replacement.error = PLACING
    world.engine.reconciler.wake(name)

    await world.settle(lambda: world.routed_slots(name) == [1, 3], "the lost replica unrouted")
    view = await world.settle(lambda: _reason_names_it(world, name), "the pending replica in the status")
    assert f"{name}-2 pending on the Swarm: {PLACING}" in view.status_reason
    for _ in range(20):  # several passes: the pending slot is neither cleared nor filled twice
        await world.clock.advance(0.5)
    assert world.runtime.find(lost.name) is replacement
    assert creates(world, name) == before

    replacement.state, replacement.error = "running", ""
    world.engine.reconciler.wake(name)
    await world.ready(name, 3)
    assert creates(world, name) == before  # adopted, not created
    assert replacement.id in {r.container_id for r in (await world.engine.get_app(name)).replicas}


async def test_a_surplus_replica_still_being_placed_is_removed(world: MemoryWorld) -> None:
    name = await world.started("m", 1)
    first = world.container(name, 1)
    extra = world.runtime.seed(
        replace(first.request, slot=2, name=f"{name}-2", host_port=first.request.host_port + 1)
    )
    extra.state = STATE_PENDING
    world.engine.reconciler.wake(name)
    await world.settle(lambda: world.runtime.find(f"{name}-2") is None, "the surplus pending replica removed")
    assert world.running_slots(name) == [1]


async def _reason_names_it(world: MemoryWorld, name: str) -> object:
    view = await world.engine.get_app(name)
    return view if "pending on the Swarm" in view.status_reason else None


async def test_placement_is_refused_on_a_single_docker_engine_and_nothing_is_stored(
    world: MemoryWorld,
) -> None:
    name = unique_app()
    document = app_document(name, placement={"constraints": ["node.role==worker"]})
    for attempt in (world.engine.register, world.engine.preview_register):
        with pytest.raises(SpecError) as caught:
            await attempt(document)
        assert caught.value.field == "spec.placement"
        assert "only applies when Orchestry runs on a Docker Swarm (ORCHESTRY_RUNTIME=swarm" in str(
            caught.value
        )
    assert name not in {app.name for app in await world.engine.list_apps()}
