"""An app's log follow learns its replicas from the engine's events, not from polling the runtime.

The slow fallback relist is pushed out of reach (but in the test of that relist), so every replica the
follow picks up (or lets go of) here was found through an event: a scale-up's new replica, a
scale-down's removed one, a deletion.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import gc
import weakref
from collections.abc import AsyncIterator

import pytest

from core.runtime.base import LogLine
from core.services import app_logs
from tests.support.world import MemoryWorld

WAIT_SECONDS = 10.0


@pytest.fixture(autouse=True)
def no_fallback_relist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_logs, "FOLLOW_FALLBACK_RELIST_SECONDS", 3600.0)


class Reader:
    """Drains a follow in the background; ``seen(...)`` waits (real time) for a message to arrive."""

    def __init__(self, follow: AsyncIterator[LogLine]) -> None:
        self.lines: list[LogLine] = []
        self.ended = asyncio.Event()
        self._task = asyncio.create_task(self._read(follow))

    async def _read(self, follow: AsyncIterator[LogLine]) -> None:
        async for line in follow:
            self.lines.append(line)
        self.ended.set()

    def messages(self, replica: str) -> list[str]:
        return [line.message for line in self.lines if line.replica == replica]

    async def logged_and_seen(self, world: MemoryWorld, replica: str, message: str) -> None:
        """Logs ``message`` on ``replica`` until the follow has it (its stream may still be opening)."""
        async with asyncio.timeout(WAIT_SECONDS):
            while message not in self.messages(replica):
                world.runtime.log(replica, message)
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_a_scaled_up_replica_is_followed_and_a_removed_one_let_go(world: MemoryWorld) -> None:
    name = await world.started("logs", 1)
    reader = Reader(world.engine.follow_logs(name, tail=0))
    try:
        await reader.logged_and_seen(world, f"{name}-1", "first replica")

        await world.engine.scale(name, 2)
        await world.ready(name, 2)
        await reader.logged_and_seen(world, f"{name}-2", "second replica")
        first_two = world.container(name, 2).id

        await world.engine.scale(name, 1)
        await world.ready(name, 1)
        assert first_two not in world.runtime.containers, "the scale-down removed the second replica"
        await world.engine.scale(name, 2)
        await world.ready(name, 2)
        # A new container in slot 2, found through its replica_started event like the first one.
        second = world.container(name, 2).id
        assert second != first_two
        await reader.logged_and_seen(world, f"{name}-2", "second replica again")
        again = {line.container_id for line in reader.lines if line.message == "second replica again"}
        assert again == {second}
        assert not reader.ended.is_set()
    finally:
        await reader.close()


async def test_deleting_the_app_ends_its_follow(world: MemoryWorld) -> None:
    name = await world.started("logs", 1)
    reader = Reader(world.engine.follow_logs(name, tail=0))
    try:
        await reader.logged_and_seen(world, f"{name}-1", "before the delete")
        await world.engine.delete(name)
        async with asyncio.timeout(WAIT_SECONDS):
            await reader.ended.wait()
    finally:
        await reader.close()


reader_state: contextvars.ContextVar[object] = contextvars.ContextVar("reader_state")


async def test_a_closed_follow_keeps_nothing_of_its_reader_alive(world: MemoryWorld) -> None:
    """The console follows the selected app's logs from a worker and closes that follow when the app is
    left: nothing the reader's context holds (the worker, and once cancelled its traceback and frames)
    may stay alive behind it, as it did for the relist period through a cancelled timeout per line."""

    class Held:
        pass

    name = await world.started("logs", 1)
    held = Held()
    gone = weakref.ref(held)

    async def read(state: object, reader: list[Reader]) -> None:
        reader_state.set(state)  # in this task's own context, as a worker's state is
        reader.append(Reader(world.engine.follow_logs(name, tail=0)))

    readers: list[Reader] = []
    await asyncio.create_task(read(held, readers))
    del held
    reader = readers[0]
    for n in range(3):
        await reader.logged_and_seen(world, f"{name}-1", f"line {n}")
    await reader.close()
    del reader, readers
    async with asyncio.timeout(WAIT_SECONDS):
        while gone() is not None:
            gc.collect()
            await asyncio.sleep(0.1)


async def test_a_replica_no_event_announced_is_followed_after_the_slow_relist(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container this engine made no event for (started by hand, or by a leader elsewhere) is found
    by the fallback relist, and lines keep flowing across it."""
    name = await world.started("logs", 1)
    monkeypatch.setattr(app_logs, "FOLLOW_FALLBACK_RELIST_SECONDS", 0.2)
    reader = Reader(world.engine.follow_logs(name, tail=0))
    try:
        await reader.logged_and_seen(world, f"{name}-1", "before")
        request = world.container(name, 1).request
        world.runtime.seed(dataclasses.replace(request, slot=9, name=f"{name}-9"))
        await reader.logged_and_seen(world, f"{name}-9", "by hand")
        await reader.logged_and_seen(world, f"{name}-1", "after")
    finally:
        await reader.close()
