"""`up` and `down` report the replicas they started or stopped, even when a pass already under way
(woken by the register before them) is the one that does it (in-memory engine, fake clock)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.world import MemoryWorld, app_document, unique_app


def hold_the_next_record_read_until(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch, app: str
) -> asyncio.Event:
    """The next pass of ``app`` reads its record only once the returned event is set: on a loaded host
    a pass begun before a command can read the record after that command's store write."""
    reconciler = world.engine.reconciler
    read = reconciler._record_of
    release = asyncio.Event()
    held = False

    async def record_of(name: str) -> Any:
        nonlocal held
        if name == app and not held:
            held = True
            await release.wait()
        return await read(name)

    monkeypatch.setattr(reconciler, "_record_of", record_of)
    return release


def when_the_store_says(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch, status: str, event: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    update = world.engine.store.apps.update

    def update_then_release(name: str, **changes: Any) -> Any:
        result = update(name, **changes)
        if changes.get("status") == status:
            loop.call_soon_threadsafe(event.set)
        return result

    monkeypatch.setattr(world.engine.store.apps, "update", update_then_release)


async def test_up_counts_the_replica_a_pass_begun_before_it_started(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_app("upcount")
    release = hold_the_next_record_read_until(world, monkeypatch, name)
    when_the_store_says(world, monkeypatch, "running", release)
    await world.engine.register(app_document(name, replicas=2))
    result = await world.engine.up(name)
    assert len(world.runtime.running(name)) == 2
    assert (result.started, result.adopted) == (2, 0)


async def test_down_counts_the_replicas_a_pass_begun_before_it_stopped(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await world.started("downcount", replicas=2)
    release = hold_the_next_record_read_until(world, monkeypatch, name)
    when_the_store_says(world, monkeypatch, "stopped", release)
    world.engine.reconciler.apps[name].wake.set()  # a relist, an event: any pass under way
    await asyncio.sleep(0)
    assert await world.engine.down(name) == 2
    assert world.runtime.running(name) == []
