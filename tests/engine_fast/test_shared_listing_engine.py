"""Every app's reconcile pass shares one container listing (core/shared_listing.py): at fleet size
the idle engine makes one list call for many passes, and a pass still sees what changed just before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.runtime.base import ContainerInfo
from tests.support.world import MemoryWorld, app_document, unique_app


def count_list_calls(world: MemoryWorld, hold: asyncio.Event | None = None) -> list[str | None]:
    """Record the app each list call of the runtime was made for (None: every app); each call takes a
    little real time, as Docker's does, instead of answering within one step of the loop, and with
    ``hold`` does not answer before it is set."""
    calls: list[str | None] = []
    original = world.runtime.list_managed

    async def counted(app: str | None = None) -> list[ContainerInfo]:
        calls.append(app)
        await asyncio.sleep(0.02)
        if hold is not None:
            await hold.wait()
        return await original(app)

    world.runtime.list_managed = counted  # type: ignore[method-assign]
    world.runtime.shares_listing = True  # as Docker's runtime does
    return calls


def asks_for_listing(reconciler: Any) -> list[str]:
    """Record the app of each pass that asks the shared listing for its containers."""
    asked: list[str] = []
    original = reconciler.listing.of

    async def of(app: str) -> list[ContainerInfo]:
        asked.append(app)
        return await original(app)

    reconciler.listing.of = of
    return asked


async def until(predicate: Callable[[], object], what: str, deadline: float = 30.0) -> None:
    """Wait in real time, without moving the fake clock, until ``predicate()`` holds (the deadline is a
    hang guard for a loaded host, not a speed claim)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.001)


async def test_passes_of_many_apps_at_once_make_one_list_call_and_keep_each_app_s_replicas(
    world: MemoryWorld,
) -> None:
    names = [unique_app() for _ in range(12)]
    for name in names:
        await world.engine.register(app_document(name, replicas=1))
        await world.engine.up(name)
    for name in names:
        await world.ready(name, 1)
    reconciler: Any = world.engine.reconciler
    # The passes the replicas' ready wakes started are over before counting: on a loaded machine the
    # last apps' were still listing their own app when the counting began.
    for name in names:
        await reconciler.reconcile_now(name)
    calls = count_list_calls(world)
    results = await asyncio.gather(*(reconciler.reconcile_now(name) for name in names))
    # One listing of every app shared by the twelve; at most one more when a pass already under way
    # (a health wake) had one in flight, which those asking later may not take.
    assert calls[0] is None and len(calls) <= 2, calls
    assert all(result == {"adopted": 0, "started": 0, "stopped": 0} for result in results), results
    assert [world.running_slots(name) for name in names] == [[1]] * len(names)


async def test_a_pass_sees_a_container_that_vanished_just_before_it_asked(world: MemoryWorld) -> None:
    name, other = unique_app(), unique_app()
    for app in (name, other):
        await world.engine.register(app_document(app, replicas=1))
        await world.engine.up(app)
        await world.ready(app, 1)
    reconciler: Any = world.engine.reconciler
    for app in (name, other):  # the passes the replicas' ready wakes started are over
        await reconciler.reconcile_now(app)
    answer = asyncio.Event()
    calls = count_list_calls(world, hold=answer)
    asked = asks_for_listing(reconciler)
    gone = world.container(name, 1).id
    busy = asyncio.ensure_future(reconciler.reconcile_now(other))
    # A listing in flight for another app: its call sent, not only asked for.  One step of the loop
    # was not always enough for the other's worker to send it, and a pass asking before then joins
    # that call instead: which one this app's pass got depended on what else the loop had to run.
    await until(lambda: calls == [other], "the other app's list call sent")
    world.runtime.vanish(f"{name}-1")
    passed = asyncio.ensure_future(reconciler.reconcile_now(name))
    await until(lambda: name in asked, "this app's pass asked for a listing")
    answer.set()  # the other's call answers only once this app's pass asked while it was in flight
    await passed
    await busy
    assert len(calls) >= 2, "the pass asked after the other's call was sent: it waits for the next"
    kinds = [e.kind for e in await world.engine.events(app=name)]
    assert "replica_vanished" in kinds
    await world.ready(name, 1)
    assert world.container(name, 1).id != gone
