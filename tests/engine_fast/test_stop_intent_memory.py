"""The intent of a request (a forced stop, clearing an app's containers) travels with that request:
another operation on the same app at the same moment cannot cancel it (in-memory engine, fake clock)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from core.errors import NotFound
from core.reconciler import FORCE_STOP_SECONDS
from tests.support.world import MemoryWorld, unique_app

GRACE_SECONDS = 10  # app_document's terminationGracePeriodSeconds


async def test_a_forced_down_stays_forced_whichever_plain_down_races_it(world: MemoryWorld) -> None:
    for forced_first in (True, False):
        name = await world.started("intent", 2)
        replicas = world.runtime.running(name)
        downs = [world.engine.down(name, force=True), world.engine.down(name)]
        if not forced_first:
            downs.reverse()
        await asyncio.gather(*downs)
        assert world.runtime.running(name) == []
        grace = [c.stopped_with_timeout for c in replicas]
        assert grace == [FORCE_STOP_SECONDS] * 2, f"forced first: {forced_first}"


async def test_a_forced_down_whose_store_read_is_slow_outranks_a_plain_down_that_ends_first(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a loaded host the forced down's store calls (threads) can end after the plain down's, whose
    pass then stops the replicas: the forced intent must already hold when that pass reads it."""
    name = await world.started("intent", 2)
    replicas = world.runtime.running(name)
    in_forced_down: contextvars.ContextVar[bool] = contextvars.ContextVar("in_forced_down", default=False)
    plain_done = threading.Event()
    store_get = world.engine.store.apps.get

    def get(app: str) -> Any:
        if in_forced_down.get():  # to_thread carries the calling task's context
            plain_done.wait(timeout=10)
        return store_get(app)

    monkeypatch.setattr(world.engine.store.apps, "get", get)

    async def forced() -> None:
        in_forced_down.set(True)
        await world.engine.down(name, force=True)

    async def plain() -> None:
        try:
            await world.engine.down(name)
        finally:
            plain_done.set()

    await asyncio.gather(plain(), forced())
    assert world.runtime.running(name) == []
    assert [c.stopped_with_timeout for c in replicas] == [FORCE_STOP_SECONDS] * 2


async def test_a_forced_down_of_an_unknown_app_says_so_and_keeps_no_state_for_it(world: MemoryWorld) -> None:
    name = unique_app("nobody")
    with pytest.raises(NotFound, match="register it first"):
        await world.engine.down(name, force=True)
    assert name not in world.engine.reconciler.apps


async def test_a_plain_down_drains_with_the_spec_grace_period(world: MemoryWorld) -> None:
    name = await world.started("intent", 2)
    replicas = world.runtime.running(name)
    await world.engine.down(name)
    assert [c.stopped_with_timeout for c in replicas] == [GRACE_SECONDS] * 2


async def test_clearing_instances_while_a_scale_lands_replaces_every_old_container(
    world: MemoryWorld,
) -> None:
    name = await world.started("intent", 2)
    old = {c.id for c in world.runtime.running(name)}
    await asyncio.gather(world.engine.clear_instances(name), world.engine.scale(name, 3))
    await world.ready(name, 3)
    running = world.runtime.running(name)
    assert len(running) == 3
    assert old.isdisjoint(c.id for c in running)


async def test_a_forced_down_cuts_short_the_drain_of_a_plain_down_under_way(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``down --force`` typed while a plain down waits for a replica's requests to finish: the wait
    ends there, and the replicas stop with the short grace, not the spec's."""
    name = await world.started("intent", 2)
    replicas = world.runtime.running(name)
    draining: list[int] = []
    timed_out: list[int] = []

    async def hung_request(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
        draining.append(port)
        await world.clock.sleep(timeout)  # a request that does not end: the drain times out
        timed_out.append(port)
        return False

    monkeypatch.setattr(world, "drained", hung_request)
    plain = asyncio.create_task(world.engine.down(name))
    await world.settle(lambda: len(draining) == 2, what="the plain down draining")
    forced = asyncio.create_task(world.engine.down(name, force=True))
    await world.settle(forced.done, what="the forced down's return")

    # Fake time runs on while the store's threads work, so the drain's end is checked, not the time.
    assert timed_out == [], "the forced down waited out the drain"
    assert await forced == 2
    await plain  # ends too, without an error
    assert world.runtime.running(name) == []
    assert [c.stopped_with_timeout for c in replicas] == [FORCE_STOP_SECONDS] * 2
    events = await world.engine.events(app=name, category="lifecycle")
    assert [e.details for e in events if e.kind == "stop_forced"] == [{"replicas": 2}]
