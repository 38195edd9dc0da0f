"""EventLog on both stores: redacted, persisted, published; a failing store still publishes."""

from __future__ import annotations

import asyncio
import logging

import pytest
import sqlalchemy as sa

from core.errors import BadRequest
from core.events import EventBus, EventLog
from core.redaction import Redactor
from core.store import Store


async def test_round_trip_through_the_event_log(store: Store) -> None:
    bus = EventBus()
    log = EventLog(bus, store, Redactor())
    async with bus.subscribe() as live:
        first = await log.emit("lifecycle", "registered", "web registered", app="web", details={"v": 1})
        second = await log.emit("scaling", "scaled", "web 1 -> 3: rps 120 > 80", app="web")
        third = await log.emit("cluster", "leader", "node-a leads term 4")
        published = [await asyncio.wait_for(anext(live), 1) for _ in range(3)]
    assert first.id > 0 and second.id > first.id and third.id > second.id
    assert published == [first, second, third]

    stored = await log.query()
    assert stored == [third, second, first]
    assert stored[2].details == {"v": 1}
    assert await log.query(app="web", category="scaling") == [second]
    assert await log.query(since=second.timestamp, limit=1) == [third]


async def test_secrets_are_redacted_before_they_are_stored_or_published(store: Store) -> None:
    redactor = Redactor()
    redactor.add("s3cret-value")
    bus = EventBus()
    log = EventLog(bus, store, redactor)
    async with bus.subscribe() as live:
        await log.emit(
            "error", "start_failed", "env PASSWORD=s3cret-value rejected", details={"env": ["s3cret-value"]}
        )
        published = await asyncio.wait_for(anext(live), 1)
    stored = (await log.query())[0]
    for seen in (published, stored):
        assert "s3cret-value" not in seen.message
        assert seen.details == {"env": ["***"]}


async def test_unknown_category_is_refused(store: Store) -> None:
    log = EventLog(EventBus(), store, Redactor())
    with pytest.raises(BadRequest, match="category 'oops'"):
        await log.emit("oops", "k", "m")
    assert await log.query() == []


async def test_a_failing_store_still_publishes_and_warns_once(
    sqlite_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(sqlite_database_url)
    try:
        with store.database.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE events"))
        bus = EventBus()
        log = EventLog(bus, store, Redactor())
        with caplog.at_level(logging.WARNING, logger="core.events"):
            async with bus.subscribe() as live:
                emitted = [
                    await log.emit("health", "unhealthy", f"web-{n} failed", app="web") for n in (1, 2)
                ]
                published = [await asyncio.wait_for(anext(live), 1) for _ in range(2)]
        assert [e.id for e in emitted] == [-1, -1]
        assert [e.message for e in published] == ["web-1 failed", "web-2 failed"]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "not being saved" in warnings[0].getMessage()
    finally:
        store.close()


async def test_emit_nowait_is_kept_alive_until_done(store: Store) -> None:
    bus = EventBus()
    log = EventLog(bus, store, Redactor())
    async with bus.subscribe() as live:
        task = log.emit_nowait("lifecycle", "app_up", "web is starting", app="web")
        received = await asyncio.wait_for(anext(live), 5)
    assert received.kind == "app_up"
    assert (await task).id > 0
    assert [e.kind for e in await log.query(app="web")] == ["app_up"]
