"""The system clock's sleep, which every health check of a fleet waits on between probes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from core.clock import SystemClock


async def tracked_objects_per_task(make: Callable[[], Coroutine[Any, Any, None]], tasks: int = 100) -> float:
    """Objects the garbage collector tracks for each of ``tasks`` tasks parked in ``make()``."""
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        parked = [asyncio.create_task(make()) for _ in range(tasks)]
        for _ in range(3):
            await asyncio.sleep(0)
        after = len(gc.get_objects())
    finally:
        gc.enable()
    for task in parked:
        task.cancel()
    await asyncio.gather(*parked, return_exceptions=True)
    return (after - before) / tasks


async def test_a_sleeping_task_holds_no_more_for_the_garbage_collector_than_one_waiting_on_an_event() -> None:
    """A thousand replicas' health checks sleep their period at any time: every object a sleep holds
    is alive at the next young collection, moves into the oldest generation and brings the next full
    collection (the event loop stopped for the whole heap) closer."""
    clock = SystemClock()

    async def asleep() -> None:
        await clock.sleep(3600)

    async def waiting() -> None:
        await asyncio.Event().wait()

    await tracked_objects_per_task(asleep)  # the first of anything allocates once
    assert await tracked_objects_per_task(asleep) <= await tracked_objects_per_task(waiting)


async def test_a_sleep_ends_after_its_time_and_a_cancelled_one_ends_cancelled() -> None:
    clock = SystemClock()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await clock.sleep(0.05)
    assert loop.time() - started >= 0.05
    await clock.sleep(0)
    await clock.sleep(-1)

    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        async def asleep() -> None:
            await clock.sleep(0.02)

        sleeper = asyncio.create_task(asleep())
        await asyncio.sleep(0)
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        await asyncio.sleep(0.05)  # its timer fires on a cancelled sleep: nothing to do, nothing logged
    finally:
        loop.set_exception_handler(None)
    assert errors == []
