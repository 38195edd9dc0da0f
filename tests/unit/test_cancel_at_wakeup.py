"""A loop task stopped (cancelled) in the same turn of the event loop as its wake-up arrives must end.

Python 3.11's ``asyncio.wait_for`` returns the result instead of raising when its inner wait finished
as the cancel came: a ``while True`` around it then never stops (the follower's election kept running
for its hour-long timer after a test had cancelled it, and stop() would hang the same way).
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from core.clock import SystemClock
from core.store.lease_notices import LeaseNotices


async def _cancelled_as_woken(wait: asyncio.Task[bool], wake: asyncio.Event) -> None:
    await asyncio.sleep(0.01)  # the task is waiting
    wake.set()  # the wake-up and the stop in the same turn of the loop
    wait.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait


async def test_a_lease_notice_wait_cancelled_as_a_notice_arrives_ends_cancelled() -> None:
    engine = sa.create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    notices = LeaseNotices(engine)
    notices.close()  # no connection: only the wait itself is under test
    try:
        wait = asyncio.create_task(notices.wait(3600))
        await _cancelled_as_woken(wait, notices._event)
    finally:
        engine.dispose()


async def test_a_clock_wait_cancelled_as_its_event_is_set_ends_cancelled() -> None:
    event = asyncio.Event()
    wait = asyncio.create_task(SystemClock().wait(event, 3600))
    await _cancelled_as_woken(wait, event)
