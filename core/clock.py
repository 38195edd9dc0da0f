"""Time as a collaborator: what the reconciler and the health checker read and wait on.

Production code uses :data:`SYSTEM_CLOCK` (wall time, ``time.monotonic`` and asyncio's own sleeps), so
nothing changes for it.  Tests hand the same components a fake clock (tests/support/clock.py) and move
time forward themselves: a crash back-off of 1, 2, 4 … seconds or a health check's start-up deadline is
then a step of the test, not a wait.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Awaitable
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Epoch seconds (what events, back-off deadlines and status reasons are measured in)."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go backwards (for intervals and deadlines)."""
        ...

    def sleep(self, seconds: float, slack: float = 0.0) -> Awaitable[None]:
        """Done after ``seconds``, or up to ``slack`` seconds later (see :func:`on_grid`)."""
        ...

    async def wait(self, event: asyncio.Event, timeout: float, slack: float = 0.0) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` seconds passed, give or take up to ``slack``
        seconds more (False)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, slack: float = 0.0) -> Awaitable[None]:
        """Done after ``seconds`` (or up to ``slack`` later, see :func:`on_grid`), as ``asyncio.sleep``:
        the same timer, without its two coroutines (ours and asyncio's) and a copy of the context.  A
        thousand replicas' health checks each sleep their period here, so a thousand sleeps are pending
        at any time: whatever a sleep holds is alive when a young collection comes, is moved into the
        oldest generation, and brings the next full collection (which stops the event loop for the
        whole heap) closer.  Half as many objects per sleep: half as many moved."""
        if seconds <= 0:
            return asyncio.sleep(0)  # one turn of the loop, as asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        # A cancelled sleeper cancels the future: the timer then finds it done and leaves it.
        loop.call_at(on_grid(loop.time() + seconds, slack), _wake, future, context=_TIMER_CONTEXT)
        return future

    async def wait(self, event: asyncio.Event, timeout: float, slack: float = 0.0) -> bool:
        loop = asyncio.get_running_loop()
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that comes in the same turn as
            # the event, and a loop waiting here would never stop.
            async with asyncio.timeout_at(on_grid(loop.time() + timeout, slack)):
                await event.wait()
        except TimeoutError:
            return False
        return True


def on_grid(when: float, slack: float) -> float:
    """The loop time a timer due at ``when`` fires at: with a ``slack``, the next multiple of it.

    Every timer given the same slack and due within the same slack-long slot then fires at one instant,
    so the loop wakes once for all of them instead of once each.  A thousand replicas' health probes,
    due every 10 s at instants spread by their start-up, woke the idle engine's loop about 35 times a
    second, each wakeup its own epoll wait and turn of the loop for one to three probes."""
    if slack <= 0:
        return when
    # max: a float quotient a hair under a whole number must not put the timer before its deadline.
    return max(when, math.ceil(when / slack) * slack)


# The sleep timers' callback reads no context variable: one empty context for all of them, not a copy
# of the sleeper's each.
_TIMER_CONTEXT = contextvars.Context()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


SYSTEM_CLOCK: Clock = SystemClock()
