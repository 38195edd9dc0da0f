"""The leader keeps its lease while the rest of the node's store calls wait.

Store and file calls across core/ run on asyncio's default thread pool (min(32, CPUs + 4) threads).
A burst of writes (50 `up` calls applying a fleet, each queued for SQLite's write turn or behind a
PostgreSQL row lock) parks every one of those threads; a lease renewal queued behind them missed its
deadline and the leader stepped down in the middle of the operator's apply, though nothing was wrong
with it. The lease work has a lane of its own, so these tests fill the default pool with stuck calls
for several lease TTLs and expect the leader to keep renewing all along.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from core.cluster import LEADER, LeaseElection
from core.store import AppRecord, Store
from testkit.harness import wait_for
from tests.support.default_pool import STUCK, default_sized_pool

TTL = 2.0  # renewed every 2/3 s; given up 1.6 s after a renewal began if the next one has not come
HELD_FOR = 3 * TTL  # the default pool stays full this long: a leader without a lane lapses twice over
# The SQLite queue test: WRITERS writes always queued, each holding the turn SLOW s, so a renewal that
# queues behind them waits WRITERS * SLOW = 1.8 s, more than the 1.6 s a renewal has; ahead of them, SLOW.
WRITERS = 6
SLOW = 0.3


def _app(name: str) -> AppRecord:
    return AppRecord(name=name, spec={"metadata": {"name": name}}, raw={}, spec_hash="h1",
                     desired_replicas=1)  # fmt: skip


@pytest.fixture
async def default_pool() -> AsyncIterator[ThreadPoolExecutor]:
    """The loop's default pool, sized as asyncio sizes it, shut down after the test."""
    pool = default_sized_pool()
    asyncio.get_running_loop().set_default_executor(pool)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def probe() -> Iterator[ThreadPoolExecutor]:
    """The test's own reads of the lease, off the default pool it fills."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe")
    yield pool
    pool.shutdown(wait=True)


class Leader:
    """An election's run() as a task on a store, with every state it reaches."""

    def __init__(self, store: Store) -> None:
        self.states: list[str] = []

        async def on_change(state: str, _why: str, _details: dict[str, Any]) -> None:
            self.states.append(state)

        self.election = LeaseElection(store, "n1", "http://n1", ttl=TTL, on_change=on_change)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.election.run())
        await wait_for(self.election.is_leader, timeout=30, interval=0.01, what="n1 to lead")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _lease_expiry(store: Store, probe: ThreadPoolExecutor) -> float:
    current, _now = await asyncio.get_running_loop().run_in_executor(probe, store.leases.newest_and_now)
    assert current is not None and current.leader_id == "n1"
    return current.expires_at


async def _keeps_leading_while(
    store: Store,
    probe: ThreadPoolExecutor,
    begin: Callable[[], Awaitable[Any] | None],
    release: Callable[[], None],
) -> None:
    """Once the node leads, ``begin()`` loads it (what it may return is awaited after ``release()``) for
    HELD_FOR; all along the node must keep leading and renewing."""
    leader = Leader(store)
    await leader.start()
    done: Awaitable[Any] | None = None
    try:
        before = await _lease_expiry(store, probe)
        done = begin()
        await asyncio.sleep(HELD_FOR)  # the lease's own semantics: several TTLs under the load
        assert leader.election.is_leader(), "the leader lapsed while the other calls waited"
        after = await _lease_expiry(store, probe)
        assert after > before + TTL, "the lease was not renewed while the other calls waited"
    finally:
        release()
        try:
            if done is not None:
                for outcome in await asyncio.wait_for(done, timeout=60) or []:
                    assert not isinstance(outcome, BaseException), f"a parked call failed: {outcome!r}"
        finally:
            await leader.stop()
    assert leader.states == [LEADER], f"the leader stepped down on the way: {leader.states}"


def _fill_default_pool(stuck: Callable[[], Any]) -> Callable[[], Awaitable[list[Any]]]:
    """STUCK calls of ``stuck`` on the default pool, more than it has threads."""
    return lambda: asyncio.gather(*(asyncio.to_thread(stuck) for _ in range(STUCK)), return_exceptions=True)


async def test_the_leader_renews_its_lease_while_every_default_thread_waits(
    store: Store, default_pool: ThreadPoolExecutor, probe: ThreadPoolExecutor
) -> None:
    """On both stores: every default thread stands for a write parked in SQLite's write queue or on a
    PostgreSQL lock (here it waits for a gate, then writes)."""
    gate = threading.Event()

    def parked_write() -> None:
        gate.wait(timeout=60)
        store.events.add(None, "test", "parked", "a write that waited its turn", None, time.time())

    await _keeps_leading_while(store, probe, _fill_default_pool(parked_write), gate.set)


async def test_the_leader_renews_its_lease_while_writes_wait_on_a_postgresql_row_lock(
    pg_database_url: str, default_pool: ThreadPoolExecutor, probe: ThreadPoolExecutor
) -> None:
    """Writes to an app whose row another session holds locked fill the default pool for real."""
    store = Store.open(pg_database_url)
    locker = sa.create_engine(pg_database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    conn = locker.connect()
    try:
        store.apps.create(_app("web"))
        transaction = conn.begin()
        conn.execute(sa.text("SELECT 1 FROM applications WHERE name = 'web' FOR UPDATE"))

        await _keeps_leading_while(
            store,
            probe,
            _fill_default_pool(lambda: store.apps.update("web", desired_replicas=2)),
            transaction.rollback,
        )
    finally:
        conn.close()
        locker.dispose()
        store.close()


async def test_the_leader_renews_its_sqlite_lease_ahead_of_a_queue_of_slow_writes(
    sqlite_database_url: str, default_pool: ThreadPoolExecutor, probe: ThreadPoolExecutor
) -> None:
    """SQLite takes one write at a time, so the renewal also waits for its write turn. Here writers
    keep the queue full of slow writes (each holds the turn SLOW s, as a big write does under load):
    first come first served, a renewal waits for all of them, longer than the lease leaves it
    (TTL 2: renewed every 0.67 s, given up 1.6 s after the renewal began), and the leader lapses."""
    store = Store.open(sqlite_database_url)
    stop = threading.Event()

    def slow_writes() -> None:
        while not stop.is_set():
            with store.database.write("a slow write"):
                time.sleep(SLOW)

    writers = [threading.Thread(target=slow_writes, name=f"slow-writer-{n}") for n in range(WRITERS)]

    def begin() -> None:
        for writer in writers:
            writer.start()

    try:
        await _keeps_leading_while(store, probe, begin, stop.set)
    finally:
        stop.set()
        for writer in writers:
            if writer.is_alive():
                writer.join(timeout=60)
        store.close()
