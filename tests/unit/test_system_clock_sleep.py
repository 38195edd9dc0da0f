"""The system clock's sleep, which every health check of a fleet waits on between probes."""

from __future__ import annotations

import asyncio
import gc
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from core.clock import SystemClock, on_grid


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


class LoopWakeups:
    """Counts the running loop's wakeups (its selector waits with a timeout other than 0) while
    installed."""

    def __init__(self) -> None:
        self.count = 0
        self._selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        self._select = self._selector.select

    def _select_counting(self, timeout: float | None = None) -> Any:
        if timeout != 0:
            self.count += 1
        return self._select(timeout)

    def __enter__(self) -> LoopWakeups:
        self._selector.select = self._select_counting
        return self

    def __exit__(self, *exc: object) -> None:
        del self._selector.select


async def wakeups_for_two_timers(slack: float) -> int:
    """Loop wakeups for a sleep and a wait that fall due 30 ms apart within one 100 ms slot of the
    grid, each given ``slack``; each ends no earlier than its deadline."""
    clock = SystemClock()
    loop = asyncio.get_running_loop()
    now = loop.time()
    slot_end = math.ceil((now + 0.2) / 0.1) * 0.1  # a slot of the 100 ms grid that starts ≥ 0.1 s away
    first, second = slot_end - 0.06 - now, slot_end - 0.03 - now
    ended: list[float] = []

    async def asleep() -> None:
        await clock.sleep(first, slack=slack)
        ended.append(loop.time() - now - first)

    async def waiting() -> None:
        assert await clock.wait(asyncio.Event(), second, slack=slack) is False
        ended.append(loop.time() - now - second)

    with LoopWakeups() as wakeups:
        await asyncio.gather(asleep(), waiting())
    assert len(ended) == 2 and min(ended) >= 0  # never before its deadline
    return wakeups.count


async def test_timers_due_within_one_slot_of_their_slack_wake_the_loop_once() -> None:
    """A fleet's health probes sleep with a slack: those due within one slot share one wakeup of the
    event loop instead of one each (the idle engine's loop woke ~70 times a second at 1,000 replicas)."""
    # Without a slack each timer is a wakeup of its own (not asserted: on a loaded host the loop may come
    # back late enough to find both due).
    assert await wakeups_for_two_timers(slack=0.1) == 1


def test_the_grid_never_moves_a_deadline_earlier_nor_later_than_the_slack() -> None:
    for when in (0.3, 1000.123456, 12345.6789, 1e6 + 0.1, 7.0):
        for slack in (0.05, 0.1, 0.25, 3.0):
            fires = on_grid(when, slack)
            assert when <= fires <= when + slack
    assert on_grid(12.3456, 0.0) == 12.3456
