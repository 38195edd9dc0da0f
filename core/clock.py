"""Time as a collaborator: what the reconciler and the health checker read and wait on.

Production code uses :data:`SYSTEM_CLOCK` (wall time, ``time.monotonic`` and asyncio's own sleeps), so
nothing changes for it.  Tests hand the same components a fake clock (tests/support/clock.py) and move
time forward themselves: a crash back-off of 1, 2, 4 … seconds or a health check's start-up deadline is
then a step of the test, not a wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Epoch seconds (what events, back-off deadlines and status reasons are measured in)."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go backwards (for intervals and deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` seconds passed (False)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that comes in the same turn as
            # the event, and a loop waiting here would never stop.
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True


SYSTEM_CLOCK: Clock = SystemClock()
