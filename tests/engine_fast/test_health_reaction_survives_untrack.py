"""A replica's failed health check is told in full even when the pass that replaces it stops its probe
loop meanwhile: the pass untracks the replica as soon as it is marked for replacement, which cancelled
the reaction still announcing it, and the event saying why the replica was replaced was lost
(in-memory engine, fake clock)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.world import MemoryWorld


async def test_the_unhealthy_event_is_saved_though_the_replacing_pass_untracks_the_replica(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await world.started("react")
    reconciler = world.engine.reconciler
    emit = reconciler.emit
    announcing = asyncio.Event()
    go_on = asyncio.Event()

    async def held_emit(category: str, kind: str, message: str, **fields: Any) -> Any:
        if kind == "replica_unhealthy":
            announcing.set()
            await go_on.wait()  # a loaded store: the event's save is slow
        return await emit(category, kind, message, **fields)

    monkeypatch.setattr(reconciler, "emit", held_emit)
    old = world.container(name, 1).id
    world.runtime.set_health(f"{name}-1", healthy=False)
    await world.settle(announcing.is_set, "the failed check being announced")
    await reconciler.reconcile_now(name)  # replaces the replica: untracks it while it is announced
    go_on.set()
    await world.settle(lambda: any(c.id != old for c in world.runtime.running(name)), "the replica replaced")
    await world.settle(
        lambda: any(
            e.kind == "replica_unhealthy" for e in world.engine.store.events.query(app=name, limit=50)
        ),
        "the replica_unhealthy event saved",
    )
