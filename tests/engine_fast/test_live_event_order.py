"""Live events (the console's events pane, an API subscriber) arrive in the order they happened, even
when the store's write threads save them in another order (in-memory engine, fake clock)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from core.models import Event
from tests.support.world import MemoryWorld


def save_first_after_second(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch, first: str, second: str
) -> None:
    """The ``first`` event's save waits until a ``second`` event was saved: on a loaded host the store
    has two write threads, and the save of an event emitted earlier can end after a later one's."""
    events = world.engine.store.events
    add = events.add
    saved = threading.Event()

    def add_in_that_order(app: str | None, category: str, kind: str, *rest: Any) -> int:
        if kind == first:
            saved.wait(timeout=30)  # bounded: a broken engine fails the test instead of hanging it
        event_id = add(app, category, kind, *rest)
        if kind == second:
            saved.set()
        return event_id

    monkeypatch.setattr(events, "add", add_in_that_order)


async def test_the_scale_is_shown_before_the_replica_it_started(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await world.started("order")
    save_first_after_second(world, monkeypatch, "scaled", "replica_started")
    seen: list[Event] = []
    async with world.engine.subscribe(app=name) as live:

        async def watch() -> None:
            async for event in live:
                seen.append(event)

        watching = asyncio.create_task(watch())
        await world.engine.scale(name, 2)
        await world.settle(
            lambda: {"scaled", "replica_started"} <= {e.kind for e in seen},
            "the scale's and the new replica's events, live",
        )
    await watching
    kinds = [e.kind for e in seen]
    assert kinds.index("scaled") < kinds.index("replica_started"), kinds
    # The saved history agrees with what was shown live (newest first: this scale's replica first).
    newest_first = [e.kind for e in await world.engine.events(app=name, limit=50)]
    assert newest_first.index("replica_started") < newest_first.index("scaled"), newest_first
