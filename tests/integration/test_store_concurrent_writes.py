"""Many writes at once on the store (SQLite and PostgreSQL): none fails or is lost because another
write held the database longer than SQLite's busy timeout, reads do not wait for writes, and when
SQLite really cannot take a write the error names the store and the fix."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from core.errors import StoreError
from core.history import MetricSample
from core.store import AppRecord, Store

WRITERS = 120
# Short, so that a write held a few times longer than it stays quick to test; production keeps 5 s.
BUSY_TIMEOUT_MS = 200
HELD_THREAD = "held-writer"


def shorten_busy_timeout(store: Store, milliseconds: int = BUSY_TIMEOUT_MS) -> None:
    """SQLite's busy handler gives up after ``milliseconds`` on every connection opened from now on."""
    if store.dialect != "sqlite":
        return
    engine = store.database.engine

    @sa.event.listens_for(engine, "connect")
    def _shorter(dbapi_connection: Any, _record: Any) -> None:  # runs after the store's own pragmas
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

    engine.dispose()  # connections already pooled were opened with the store's 5 s


class HeldWrite:
    """Holds the write transaction of the thread named HELD_THREAD open, between its INSERT and its
    COMMIT, until ``release`` is set: the slow write of a loaded host, made deterministic."""

    def __init__(self, store: Store) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self._engine = store.database.engine
        sa.event.listen(self._engine, "before_cursor_execute", self._hold)

    def _hold(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name == HELD_THREAD and statement.lstrip().upper().startswith("INSERT"):
            self.holding.set()
            assert self.release.wait(60), "the held write was never released"

    def remove(self) -> None:
        sa.event.remove(self._engine, "before_cursor_execute", self._hold)


def app_record(name: str) -> AppRecord:
    return AppRecord(
        name=name, spec={"image": "demo", "n": name}, raw={"metadata": {"name": name}}, spec_hash=name
    )


def sample(app: str) -> MetricSample:
    return MetricSample.raw(
        app,
        1000.0,
        5.0,
        rps=1.0,
        p95_latency_ms=10.0,
        cpu_percent=5.0,
        memory_percent=None,
        active_connections=1.0,
        ready_replicas=1,
        desired_replicas=1,
    )


def test_writes_queue_behind_one_held_longer_than_the_busy_timeout_and_none_is_lost(store: Store) -> None:
    """Seen as "database is locked" from one of 50 concurrent `up` calls at 10,000 replicas on SQLite:
    a write that waits longer than busy_timeout for another one must wait, not fail."""
    shorten_busy_timeout(store)
    held = HeldWrite(store)
    failures: list[BaseException] = []
    started = threading.Barrier(WRITERS + 1)

    def write(i: int) -> None:
        started.wait()
        try:
            # The paths that write: app records (a leader write), events and metric history.
            if i % 3 == 0:
                store.apps.create(app_record(f"app-{i:03d}"))
            elif i % 3 == 1:
                store.events.add(f"app-{i:03d}", "app", "test", f"event {i}", {"i": i}, 1000.0 + i)
            else:
                store.history.add([sample(f"app-{i:03d}")])
        except BaseException as exc:  # every failure is the finding
            failures.append(exc)

    slow = threading.Thread(target=store.apps.create, args=(app_record("held"),), name=HELD_THREAD)
    slow.start()
    try:
        assert held.holding.wait(30)
        writers = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
        for thread in writers:
            thread.start()
        started.wait()
        # Every writer has started its write: hold ours four busy timeouts longer.
        time.sleep(4 * BUSY_TIMEOUT_MS / 1000)
    finally:
        held.release.set()
        slow.join(60)
        held.remove()
    for thread in writers:
        thread.join(120)
    assert not any(thread.is_alive() for thread in writers)
    assert [str(exc) for exc in failures] == []
    apps = {rec.name: rec for rec in store.apps.list()}
    expected_apps = {"held"} | {f"app-{i:03d}" for i in range(0, WRITERS, 3)}
    assert set(apps) == expected_apps
    assert all(apps[name].spec["n"] == name for name in expected_apps - {"held"})
    events = store.events.query(category="app", limit=1000)
    assert sorted(e.details["i"] for e in events) == list(range(1, WRITERS, 3))
    assert store.history.count() == len(range(2, WRITERS, 3))


def test_reads_do_not_wait_for_a_held_write(store: Store) -> None:
    store.apps.create(app_record("before"))
    held = HeldWrite(store)
    read: list[list[str]] = []
    done = threading.Event()

    def reader() -> None:
        read.append([rec.name for rec in store.apps.list()])
        read.append([e.kind for e in store.events.query()])
        done.set()

    slow = threading.Thread(target=store.apps.create, args=(app_record("held"),), name=HELD_THREAD)
    slow.start()
    try:
        assert held.holding.wait(30)
        threading.Thread(target=reader).start()
        # The write is still held: the reader must finish without it (WAL readers, no queue).
        assert done.wait(30), "a read waited for a write that was still open"
        assert read == [["before"], []]
    finally:
        held.release.set()
        slow.join(60)
        held.remove()
    assert {rec.name for rec in store.apps.list()} == {"before", "held"}


def test_sqlite_write_that_cannot_get_its_turn_names_the_store_and_the_fix(
    sqlite_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write queued longer than the store lets it wait is refused with a message a user can act on."""
    monkeypatch.setattr("core.store.db.SQLITE_WRITE_WAIT_SECONDS", 0.3, raising=False)
    store = Store.open(sqlite_database_url)
    shorten_busy_timeout(store)
    held = HeldWrite(store)
    slow = threading.Thread(target=store.apps.create, args=(app_record("held"),), name=HELD_THREAD)
    slow.start()
    try:
        assert held.holding.wait(30)
        with pytest.raises(StoreError) as refused:
            store.apps.create(app_record("late"))
    finally:
        held.release.set()
        slow.join(60)
        held.remove()
    try:
        # The writer that gave up left the queue: the next write takes its turn at once.
        store.apps.create(app_record("next"))
        assert {rec.name for rec in store.apps.list()} == {"held", "next"}
    finally:
        store.close()
    message = str(refused.value)
    path = sqlite_database_url.removeprefix("sqlite:///")
    assert path in message and "creating app 'late'" in message
    assert "PostgreSQL" in message and "ORCHESTRY_DATABASE_URL" in message
    assert "Traceback" not in message


def test_sqlite_locked_by_another_process_names_the_store_and_the_fix(sqlite_database_url: str) -> None:
    """Another process (a second orchestry on the same state dir, a tool) holding SQLite's write lock
    longer than the busy timeout: the error says so, instead of blaming reachability or migrations."""
    store = Store.open(sqlite_database_url)
    shorten_busy_timeout(store)
    other = sqlite3.connect(sqlite_database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError) as refused:
            store.events.add(None, "cluster", "test", "locked out", None, 1000.0)
        other.execute("ROLLBACK")
        store.events.add(None, "cluster", "test", "after", None, 1000.0)  # and it recovers
        assert [e.message for e in store.events.query()] == ["after"]
    finally:
        other.close()
        store.close()
    message = str(refused.value)
    path = sqlite_database_url.removeprefix("sqlite:///")
    assert path in message and "recording event 'test'" in message
    assert "another process" in message
    assert "PostgreSQL" in message
    assert "migrated" not in message


def queue_behind_a_held_write(
    store: Store, calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]]
) -> None:
    """Hold one write open, queue ``calls`` (thread name, call, arguments) behind it one at a time, each
    only once the one before is queued, then let the held write commit and wait for them all."""
    writers = store.database.sqlite_writers
    assert writers is not None
    held = HeldWrite(store)
    slow = threading.Thread(target=store.apps.create, args=(app_record("held"),), name=HELD_THREAD)
    slow.start()
    threads: list[threading.Thread] = []
    try:
        assert held.holding.wait(30)
        for i, (name, call, args) in enumerate(calls):
            thread = threading.Thread(target=call, args=args, name=name)
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 30
            while writers.queued < i + 1:  # queued behind the held write, in this order
                assert time.monotonic() < deadline, f"{name} never queued"
                time.sleep(0.001)
    finally:
        held.release.set()
        slow.join(60)
        held.remove()
    for thread in threads:
        thread.join(60)


def test_sqlite_writes_take_their_turns_in_the_order_they_asked(sqlite_database_url: str) -> None:
    """First come first served: a write that asked early is never overtaken by later ones (under a
    steady stream of writes an unlucky one would otherwise wait, and fail, however short each is)."""
    store = Store.open(sqlite_database_url)
    try:
        queue_behind_a_held_write(
            store,
            [
                (f"write-{i}", store.events.add, (None, "cluster", "turn", f"turn {i}", {"i": i}, 1000.0))
                for i in range(20)
            ],
        )
        committed = sorted(store.events.query(category="cluster", limit=100), key=lambda e: e.id)
        assert [e.details["i"] for e in committed] == list(range(20))
    finally:
        store.close()


def test_sqlite_lease_renewal_takes_the_next_turn_ahead_of_queued_writes(sqlite_database_url: str) -> None:
    """The leader's renewal has a deadline (the lease runs out), the other writes have not: queued
    behind a held write and five others, it commits right after the held one."""
    store = Store.open(sqlite_database_url)
    try:
        lease = store.leases.try_acquire("n1", "host", "http://n1", ttl=60.0)
        assert lease is not None
        committed: list[str] = []
        sa.event.listen(
            store.database.engine, "commit", lambda _conn: committed.append(threading.current_thread().name)
        )
        calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
            (f"write-{i}", store.events.add, (None, "cluster", "turn", f"turn {i}", {}, 1000.0))
            for i in range(5)
        ]
        calls.append(("renewal", store.leases.renew, (lease.term, "n1", 60.0)))
        queue_behind_a_held_write(store, calls)
        assert committed == [HELD_THREAD, "renewal"] + [f"write-{i}" for i in range(5)]
        current = store.leases.current()
        assert current is not None and current.renewed_at > lease.renewed_at
    finally:
        store.close()


def test_two_status_saves_of_one_app_at_once_leave_the_row_known_as_the_last_commit_left_it(
    store: Store,
) -> None:
    """A scale saves its app's status from several starts at once: the kept row a reader catches up
    with (no read) is the one the database holds once both committed, whichever of the two finished
    last in Python.  One save is held between its transaction's start and its UPDATE while the other
    goes in."""
    store.apps.create(app_record("web"))
    before = store.apps.changes
    holding, release = threading.Event(), threading.Event()

    def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name == HELD_THREAD and statement.lstrip().upper().startswith("UPDATE"):
            holding.set()
            assert release.wait(60), "the held save was never released"

    engine = store.database.engine
    sa.event.listen(engine, "before_cursor_execute", hold)
    try:
        first = threading.Thread(
            target=store.apps.save_status, args=("web", "starting", "held"), name=HELD_THREAD
        )
        first.start()
        assert holding.wait(30)
        second = threading.Thread(target=store.apps.save_status, args=("web", "running", "quick"))
        second.start()
        deadline = time.monotonic() + 30
        # In flight together: the second is inside its write (PostgreSQL: done, the row is not locked
        # yet; SQLite: waiting for the write turn the first one holds).
        while store.apps._in_flight.get("web", 0) < 2 and second.is_alive():
            assert time.monotonic() < deadline, "the second save never started"
            time.sleep(0.001)
        release.set()
        first.join(30)
        second.join(30)
    finally:
        sa.event.remove(engine, "before_cursor_execute", hold)
    caught_up = store.apps.fresh_since(before)
    assert caught_up is not None, "two saves at once left the row unknown: every reader reads it again"
    stored = store.apps.get("web")
    assert stored is not None and caught_up[1]["web"] == stored
    assert caught_up[0] == store.apps.changes
