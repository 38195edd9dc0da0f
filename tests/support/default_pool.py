"""asyncio's default thread pool, sized as asyncio sizes it, for a test to fill with other work.

Several fixes moved blocking calls off the default pool (min(32, CPUs + 4) threads, shared with every
other ``to_thread`` user of a node) onto threads of their own. Their tests set a pool of exactly that
size on the loop and hold every one of its threads, with more callers queued behind: work that still
needed the default pool would then wait until the test lets the pool go.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

POOL_SIZE = min(32, (os.cpu_count() or 1) + 4)  # asyncio's own default pool size
STUCK = POOL_SIZE + 4  # every thread taken, and more callers queued behind them
HELD_SECONDS = 60  # a held thread lets itself go after this, should a test never release it


def default_sized_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="default-pool")


@asynccontextmanager
async def every_default_thread_held(pool: ThreadPoolExecutor) -> AsyncIterator[asyncio.Future[Any]]:
    """``pool`` becomes the running loop's default pool, and every one of its threads is held until the
    block ends. Yields the held calls: a test asserts ``not busy.done()`` to show the pool was still
    full when what it awaited answered."""
    asyncio.get_running_loop().set_default_executor(pool)
    gate = threading.Event()
    busy = asyncio.gather(*(asyncio.to_thread(gate.wait, HELD_SECONDS) for _ in range(STUCK)))
    try:
        yield busy
    finally:
        gate.set()
        await busy
