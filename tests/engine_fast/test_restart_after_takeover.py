"""A restart asked of a controller that has only just started (or taken over) restarts the replicas it
is about to adopt, instead of answering that it restarted none (in-memory engine, fake clock)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.reconciler import Reconciler
from tests.support.world import app_document, memory_world, unique_app


def hold_record_reads_of(monkeypatch: pytest.MonkeyPatch, app: str) -> asyncio.Event:
    """Every controller's passes of ``app`` read its record only once the returned event is set: on a
    loaded host the first pass of a new leader (which adopts the running replicas) can end after its
    API answers."""
    read = Reconciler._record_of
    release = asyncio.Event()

    async def record_of(self: Reconciler, name: str) -> Any:
        if name == app:
            await release.wait()
        return await read(self, name)

    monkeypatch.setattr(Reconciler, "_record_of", record_of)
    return release


async def test_a_restart_before_the_first_pass_restarts_the_replicas_it_adopts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    async with memory_world(state, stop_apps=False) as first:
        name = unique_app("again")
        await first.engine.register(app_document(name, replicas=2))
        await first.engine.up(name)
        await first.ready(name, 2)
    before = {c.id for c in first.runtime.running(name)}
    release = hold_record_reads_of(monkeypatch, name)
    async with memory_world(state, runtime=first.runtime, clock=first.clock) as second:
        restarting = asyncio.create_task(second.engine.restart(name))  # before its first pass ended
        for _ in range(20):  # the pass goes on a moment later, whether the restart answered or not
            if restarting.done():
                break
            await asyncio.sleep(0.01)
        release.set()
        assert await restarting == [1, 2]

        def replaced() -> bool:
            running = {c.id for c in second.runtime.running(name)}
            return len(running) == 2 and not running & before

        await second.settle(replaced, "both replicas restarted")
        await second.ready(name, 2)
