"""Followers learn at once that the lease is free, without waiting for their retry timer.

A release (a leader's SIGTERM or step-down) reaches the followers as a PostgreSQL notice sent by the
releasing transaction; a killed leader's lease is tried for as soon as it runs out. The retry timer is
patched to an hour here, so a follower that takes over can only have been woken by the mechanism under
test. Each election runs on its own store, as nodes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from core.cluster import LEADER, LeaseElection
from core.store import Store, lease_notices
from core.store.lease_notices import LeaseNotices
from testkit.harness import wait_for
from tests.support.default_pool import default_sized_pool, every_default_thread_held

NEVER = 3600.0  # a follower retry period no test outlives


@pytest.fixture
def no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LeaseElection, "_follower_retry", property(lambda _self: NEVER))


class Running:
    """An election's run() as a task, with an event per state it reaches."""

    def __init__(self, store: Store, node_id: str, ttl: float) -> None:
        self.led = asyncio.Event()
        self.states: list[str] = []

        async def on_change(state: str, _why: str, _details: dict[str, object]) -> None:
            self.states.append(state)
            if state == LEADER:
                self.led.set()

        self.election = LeaseElection(store, node_id, f"http://{node_id}", ttl=ttl, on_change=on_change)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.election.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            # Bounded: an election that swallowed its cancel (Python 3.11's wait_for did, when a notice
            # came in the same turn) kept the fixture's teardown waiting for its hour-long timer.
            done, _ = await asyncio.wait({self.task}, timeout=30)
            assert done, "the election did not stop within 30 s of being cancelled"
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def running() -> AsyncIterator[list[Running]]:
    started: list[Running] = []
    yield started
    for each in started:
        await each.stop()


async def _following(follower: Running) -> None:
    """Until the follower has read the lease once and is waiting (listening) for its next step."""

    def listening() -> bool:
        notices = follower.election._notices
        return bool(follower.states and notices is not None and notices.listening)

    await wait_for(listening, timeout=30, interval=0.01, what="the follower to listen")


async def _leader_and_listening_follower(
    two_stores: tuple[Store, Store], running: list[Running]
) -> tuple[Running, Running]:
    """Node "a" leads (one step, no loop of its own); node "b" runs, follows it and listens."""
    leader_store, follower_store = two_stores
    leader = Running(leader_store, "a", ttl=30)
    await leader.election.step()
    follower = Running(follower_store, "b", ttl=30)
    running.append(follower)
    follower.start()
    await _following(follower)
    return leader, follower


async def test_a_release_wakes_the_follower_which_takes_the_next_term(
    two_stores: tuple[Store, Store], running: list[Running], no_timer: None
) -> None:
    leader, follower = await _leader_and_listening_follower(two_stores, running)
    follower_store = two_stores[1]
    assert leader.election.is_leader()
    assert follower.states == ["follower"]

    assert await leader.election.release()
    await asyncio.wait_for(follower.led.wait(), 30)

    released, taken = follower_store.leases.history(2)[::-1]
    assert (released.term, released.leader_id, taken.term, taken.leader_id) == (1, "a", 2, "b")
    assert released.released_at is not None
    # Term 1 would still have been valid for most of its 30 s: only the release let term 2 start, and
    # only the notice woke the follower (its timer is an hour).
    assert taken.acquired_at < released.expires_at - 20
    assert follower.election.wakeups >= 1
    assert not leader.election.is_leader()


async def test_a_release_wakes_the_follower_while_every_default_thread_is_busy(
    two_stores: tuple[Store, Store], running: list[Running], no_timer: None
) -> None:
    """The follower's notice connection opens on a thread of its own: with asyncio's default pool full
    of other work (min(32, CPUs + 4) threads) it still listens, so the release wakes it at once."""
    pool = default_sized_pool()
    try:
        async with every_default_thread_held(pool) as busy:
            leader, follower = await _leader_and_listening_follower(two_stores, running)
            assert await leader.election.release()
            await asyncio.wait_for(follower.led.wait(), 30)
            assert not busy.done(), "the default pool was let go before the follower took over"
            assert follower.election.wakeups >= 1
    finally:
        pool.shutdown(wait=False)


async def test_a_dead_leaders_lease_is_tried_for_when_it_runs_out_and_not_before(
    two_stores: tuple[Store, Store], running: list[Running], no_timer: None
) -> None:
    dead_store, follower_store = two_stores
    # As if killed right after winning: the lease is never renewed nor released.
    dead = dead_store.leases.try_acquire("dead", socket.gethostname(), "http://dead", ttl=2.0)
    assert dead is not None
    follower = Running(follower_store, "b", ttl=30)
    running.append(follower)
    follower.start()
    await asyncio.wait_for(follower.led.wait(), 30)

    expired, taken = follower_store.leases.history(2)[::-1]
    assert (expired.term, taken.term, taken.leader_id) == (1, 2, "b")
    assert taken.acquired_at >= expired.expires_at, "never before the dead leader's lease ran out"
    assert follower.states == ["follower", LEADER]


async def test_a_lost_notice_connection_falls_back_to_the_timer_and_listens_again(
    two_stores: tuple[Store, Store], running: list[Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease_notices, "RECONNECT_SECONDS", 0.0)  # listen again at the next wait
    leader, follower = await _leader_and_listening_follower(two_stores, running)
    leader_store, follower_store = two_stores

    # The database drops the listening session (a restart, an idle-session killer).
    with leader_store.database.engine.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        ).all()
    assert killed == [(True,)]
    assert await leader.election.release()
    await asyncio.wait_for(follower.led.wait(), 30)  # on the timer (1 s), or a reconnect's first look
    assert follower_store.leases.current().leader_id == "b"
    notices = follower.election._notices
    assert notices is not None
    # The leader's next renewal waits on a fresh connection.
    await wait_for(lambda: notices.listening, timeout=30, what="listening again")
    before = notices.received
    assert await follower.election.release()  # its own release comes back as a notice
    await wait_for(lambda: notices.received > before, timeout=30, what="the release's notice")


def test_sqlite_has_no_notices_and_postgresql_has(sqlite_database_url: str, pg_database_url: str) -> None:
    lone = Store.open(sqlite_database_url)
    shared = Store.open(pg_database_url)
    try:
        assert lone.lease_notices() is None  # one node: nobody to wake
        assert isinstance(shared.lease_notices(), LeaseNotices)
    finally:
        lone.close()
        shared.close()


async def test_a_database_that_does_not_answer_never_holds_up_the_timer() -> None:
    """Connecting to listen happens beside the wait: a follower keeps its retry timer meanwhile."""
    with socket.socket() as silent:  # accepts TCP connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/none?connect_timeout=2")
        notices = LeaseNotices(engine)
        try:
            assert await notices.wait(0.05) is False  # the timer ran out first
            connecting = notices._connecting
            assert connecting is not None and not connecting.done(), "still connecting in the background"
            assert await notices.wait(0.05) is False  # and no second attempt piles up
            assert notices._connecting is connecting
            await connecting  # the attempt gives up (connect timeout) and is retried later, not at once
            assert not notices.listening and notices._connecting is None
            assert await notices.wait(0.05) is False
            assert notices._connecting is None
        finally:
            notices.close()
            engine.dispose()
