"""Store reads answer while writes wait their turn and while other blocking work fills the default pool.

The store ran on asyncio's default pool (min(32, CPUs + 4) threads), shared with every other blocking
call of the node. Writes parked in SQLite's write queue or on a PostgreSQL row lock, or any other
to_thread user, took every thread, and the API's and the console's reads (the event list, an app's
describe) waited for them. The store has its own threads now, reads apart from writes (core/store/
lanes.py). Every test runs on SQLite and on PostgreSQL, on the real engine with the in-memory runtime.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.engine import Engine
from tests.support.default_pool import STUCK, every_default_thread_held
from tests.support.world import MemoryWorld, app_document, memory_world, unique_app

# How long a read may take before the test calls it stuck (the failure it guards against is a read
# that waits until the test lets the blocked calls go: it never answers while they are held).
ANSWER_TIMEOUT = 30.0


@pytest.fixture
async def world(
    tmp_path: Path, database_url: str, default_pool: ThreadPoolExecutor
) -> AsyncIterator[MemoryWorld]:
    """Stopped before ``default_pool`` shuts down: the engine's stop still uses the default pool."""
    async with memory_world(tmp_path / "state", database_url=database_url) as started:
        yield started


async def _registered(engine: Engine) -> str:
    name = unique_app("lane")
    await engine.register(app_document(name))
    return name


async def _reads_answer(engine: Engine, name: str) -> None:
    """What the API and the console read from the store: the event list and the app's record."""
    events = await asyncio.wait_for(engine.events(app=name, limit=5), ANSWER_TIMEOUT)
    assert events and events[0].app == name
    record = await asyncio.wait_for(engine.store.read(engine.store.apps.get, name), ANSWER_TIMEOUT)
    assert record is not None and record.name == name


async def test_store_reads_answer_while_every_default_thread_is_busy(
    world: MemoryWorld, default_pool: ThreadPoolExecutor
) -> None:
    engine = world.engine
    name = await _registered(engine)
    async with every_default_thread_held(default_pool) as busy:
        await _reads_answer(engine, name)
        assert not busy.done(), "the default pool was let go before the reads answered"


@contextmanager
def _sqlite_turn_held(engine: Engine) -> Iterator[Callable[[], None]]:
    """Another write of this process holds SQLite's write turn until released."""
    gate, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.store.database.write("a long write"):
            holding.set()
            gate.wait(60)

    holder = threading.Thread(target=hold, name="turn-holder")
    holder.start()
    holding.wait(60)
    try:
        yield gate.set
    finally:
        gate.set()
        holder.join(60)


@contextmanager
def _row_locked(database_url: str, name: str) -> Iterator[Callable[[], None]]:
    """Another PostgreSQL session holds the app's row locked until released."""
    locker = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    conn = locker.connect()
    transaction = conn.begin()
    conn.execute(sa.text("SELECT 1 FROM applications WHERE name = :name FOR UPDATE"), {"name": name})
    try:
        yield transaction.rollback
    finally:
        if transaction.is_active:
            transaction.rollback()
        conn.close()
        locker.dispose()


async def test_store_reads_answer_while_writes_wait_their_turn(
    world: MemoryWorld, default_pool: ThreadPoolExecutor, database_url: str
) -> None:
    """Scale requests parked on SQLite's write turn or on a PostgreSQL row lock, more of them than the
    default pool has threads: the event list and the app's record still answer, and the parked
    writes all go through once let go."""
    engine = world.engine
    name = await _registered(engine)
    asyncio.get_running_loop().set_default_executor(default_pool)
    held: AbstractContextManager[Callable[[], None]] = (
        _sqlite_turn_held(engine) if engine.store.dialect == "sqlite" else _row_locked(database_url, name)
    )
    outcomes: list[Any] = []
    with held as release:
        writes = asyncio.gather(
            *(engine.scale(name, 2 + n % 3, reason="parked") for n in range(STUCK)), return_exceptions=True
        )
        try:
            await _reads_answer(engine, name)
            assert not writes.done(), "the writes went through before the reads answered: nothing was held"
        finally:
            release()
            outcomes = await asyncio.wait_for(writes, 60)
    assert not [o for o in outcomes if isinstance(o, BaseException)], f"a parked write failed: {outcomes}"
