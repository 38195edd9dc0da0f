"""The store's own threads: a lane for reads and one for writes, sized for the backend.

The store is synchronous SQLAlchemy. Run on asyncio's default pool (min(32, CPUs + 4) threads: 6
here), a store read shared its threads with every Docker-free blocking call of the node (nginx files,
presence, cgroup reads) and with the store's own writes; a burst of writes parked in SQLite's write
queue or on a PostgreSQL row lock, or any other user that filled the pool, left the API's and the
console's reads waiting for a thread. Here reads never wait behind a write or a non-store call, and
writes never take a thread a read needs.

Threads start on first use and end when the store is collected, as the lease's own lane does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# SQLite takes one write at a time (SqliteWriters queues this process's writers): a second write thread
# waits for the turn, so the next write starts the moment the one before commits; more would only park.
# Its reads run beside a write (WAL), but every read is Python work under the GIL beside that one
# writer, which every write of the fleet waits for: bench/lease_turn.py's 3,000-replica fill took
# 1.3-1.5x the default pool's time at load 11-16 with 4 read threads, 1.9x with 6 (the leader lapsed
# twice), 1.3x with 2; with 2 at load 5-7, 1.0x (22.6 / 23.4 s vs 23.9 / 22.0 s). So SQLite reads get 2.
# PostgreSQL takes writes at once, but a write may wait on a row lock held by a peer: its write lane is
# wider, and together (4 + 8, plus the lease's 2) they stay inside the pool of 20 connections
# (core.store.db.create_db_engine), so no call waits for a connection.
READ_THREADS = {"sqlite": 2, "postgresql": 4}
WRITE_THREADS = {"sqlite": 2, "postgresql": 8}
READ_LANE = "orchestry-store-read"  # thread name prefixes: a thread dump or py-spy tells the lanes apart
WRITE_LANE = "orchestry-store-write"


class StoreLanes:
    """Bounded executors for one store's blocking calls: ``read`` for calls that only read, ``write``
    for every call that may write (a read given the write lane only waits longer; a write given the
    read lane could fill it with parked writes, which is what the lanes exist to prevent)."""

    def __init__(self, dialect: str) -> None:
        self._reads = ThreadPoolExecutor(
            max_workers=READ_THREADS.get(dialect, 2), thread_name_prefix=READ_LANE
        )
        self._writes = ThreadPoolExecutor(
            max_workers=WRITE_THREADS.get(dialect, 2), thread_name_prefix=WRITE_LANE
        )

    async def read(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await _run(self._reads, call, args, kwargs)

    async def write(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await _run(self._writes, call, args, kwargs)


async def _run(
    lane: ThreadPoolExecutor, call: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> T:
    # The caller's context goes along, as asyncio.to_thread carries it (a call's contextvars, e.g. the
    # logging or test hooks that tell which task asked).
    bound = functools.partial(contextvars.copy_context().run, call, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(lane, bound)
