"""The event bus (in-process publish/subscribe) and the event log (redact, persist, publish).

Publishing never waits for a subscriber: each subscription has a bounded queue, and when a slow
reader lets it fill, the oldest event is dropped and counted in ``Subscription.dropped``.  The
engine must keep reconciling even when a console is frozen or an API client stopped reading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from core.errors import BadRequest
from core.models import EVENT_CATEGORIES, Event
from core.redaction import Redactor
from core.store import Store

log = logging.getLogger(__name__)

_CLOSED = object()  # wakes a reader blocked in __anext__ when its subscription closes


class Subscription:
    """An async iterator over the events the bus publishes (after this subscription was made)."""

    def __init__(
        self, bus: EventBus, maxsize: int, app: str | None, categories: frozenset[str] | None
    ) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(maxsize, 1))
        self._loop = asyncio.get_running_loop()
        self.app = app
        self.categories = categories
        self.dropped = 0
        self.closed = False

    def wants(self, event: Event) -> bool:
        if self.app is not None and event.app != self.app:
            return False
        return self.categories is None or event.category in self.categories

    def offer(self, event: Event) -> None:
        """Queue ``event`` without blocking; called from any thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._put(event)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: Event) -> None:
        if self.closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def close(self) -> None:
        """Stop receiving; a reader still gets what was queued, then the iteration ends."""
        if self.closed:
            return
        self.closed = True
        self._bus._unsubscribe(self)
        if self._queue.empty():
            # Only an empty queue can have a reader blocked in get(); a non-empty one ends by itself
            # in __anext__ once drained, so no queued event is pushed out to make room.
            self._queue.put_nowait(_CLOSED)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        return item

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def subscribe(
        self, maxsize: int = 1000, app: str | None = None, categories: Iterable[str] | None = None
    ) -> Subscription:
        """Receive every later event (optionally of one app and some categories); call from the loop."""
        subscription = Subscription(self, maxsize, app, frozenset(categories) if categories else None)
        self._subscriptions.add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every interested subscriber; never blocks, never raises."""
        for subscription in list(self._subscriptions):
            try:
                if subscription.wants(event):
                    subscription.offer(event)
            except Exception:
                log.exception("event subscriber failed to take event %s", event.kind)


class EventLog:
    """Emits events: validated, redacted, persisted (best effort) and published."""

    def __init__(self, bus: EventBus, store: Store, redactor: Redactor) -> None:
        self.bus = bus
        self._store = store
        self._redactor = redactor
        self._persist_failing = False
        self._pending: set[asyncio.Task[Event]] = set()
        # Set once the newest emit so far was published (or gave up): the next one publishes after it.
        self._published: asyncio.Future[None] | None = None

    async def emit(
        self,
        category: str,
        kind: str,
        message: str,
        app: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        if category not in EVENT_CATEGORIES:
            raise BadRequest(
                f"event category '{category}' is not one of {', '.join(EVENT_CATEGORIES)}: pick one of them"
            )
        event = Event(
            id=-1,
            app=app,
            category=category,
            kind=kind,
            message=self._redactor.redact(message),
            details=self._redactor.redact_obj(details or {}),
            timestamp=time.time(),
        )
        # Published in the order emitted, not in the order the saves end: the store's write threads
        # finish in any order on a loaded host, and the events pane showed a scale's new replica
        # started before the scale that started it.
        before, mine = self._published, asyncio.get_running_loop().create_future()
        self._published = mine
        try:
            event.id = await self._persist(event)
            if before is not None and not before.done() and before.get_loop() is mine.get_loop():
                await asyncio.wait([before])  # not ``await before``: a cancelled wait must not cancel it
            self.bus.publish(event)
        finally:
            if not mine.done():
                mine.set_result(None)
        return event

    async def _persist(self, event: Event) -> int:
        try:
            event_id = await self._store.write(
                self._store.events.add,
                event.app,
                event.category,
                event.kind,
                event.message,
                event.details,
                event.timestamp,
            )
        except Exception as exc:
            # Warn once per failure streak: a database outage must not flood the log with one line
            # per event, and the event still reaches every live subscriber.
            if not self._persist_failing:
                self._persist_failing = True
                log.warning("events are not being saved (still published live): %s", exc)
            return -1
        if self._persist_failing:
            self._persist_failing = False
            log.info("events are being saved again")
        return event_id

    def emit_nowait(
        self,
        category: str,
        kind: str,
        message: str,
        app: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> asyncio.Task[Event]:
        """Schedule emit() from synchronous code on the loop; the task is kept until it finishes."""
        task = asyncio.get_running_loop().create_task(self.emit(category, kind, message, app, details))
        self._pending.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Event]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not emit an event: %s", task.exception())

    async def query(
        self,
        app: str | None = None,
        category: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Newest first."""
        return await self._store.read(self._store.events.query, app, category, since, limit)
