"""Replica logs of one app, merged across its replicas and redacted: a batch or a live follow."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from core.errors import app_not_registered
from core.events import EventBus
from core.redaction import Redactor
from core.runtime.base import LogLine, Runtime
from core.store import Store

FOLLOW_QUEUE_LINES = 10_000
# A follow looks for replicas that came or went (and whether the app still exists) when the app's
# lifecycle events say so: a replica started, stopped, vanished or crashed, the app was deleted.  Each
# look is a store read and a Docker list, so an idle follow makes none.  What no event of this engine
# tells (a follower's view of replicas its leader starts, a container started by hand, events a full
# subscription dropped) is caught by a slow relist.  A new replica's lines lose nothing to the wait
# (they are read from the follow's start), they come later.
FOLLOW_CHANGE_CATEGORIES = ("lifecycle", "error")
FOLLOW_FALLBACK_RELIST_SECONDS = 30.0

_RELIST = object()  # queued among the lines when an event asks for a relist


class AppLogs:
    def __init__(self, store: Store, runtime: Runtime, redactor: Redactor, bus: EventBus) -> None:
        self._store = store
        self._runtime = runtime
        self._redactor = redactor
        self._bus = bus

    async def _require_app(self, name: str) -> None:
        if await self._store.read(self._store.apps.get, name) is None:
            raise app_not_registered(name, [r.name for r in await self._store.read(self._store.apps.list)])

    def _redacted(self, line: LogLine) -> LogLine:
        return replace(line, message=self._redactor.redact(line.message))

    async def logs(
        self, name: str, tail: int | None = 100, since: float | None = None, until: float | None = None
    ) -> list[LogLine]:
        """Merged across replicas, oldest first."""
        await self._require_app(name)
        containers = await self._runtime.list_managed(name)
        batches = await asyncio.gather(
            *(self._runtime.logs(c.id, tail=tail, since=since, until=until) for c in containers),
            return_exceptions=True,
        )
        # A replica replaced between the listing and the read simply has no lines to add.
        lines = sorted(
            (line for batch in batches if not isinstance(batch, BaseException) for line in batch),
            key=lambda line: line.timestamp,
        )
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return [self._redacted(line) for line in lines]

    async def follow_logs(
        self, name: str, tail: int | None = 10, since: float | None = None
    ) -> AsyncIterator[LogLine]:
        """The last ``tail`` lines (of those since ``since``), then new lines as they come, from replicas
        as they come and go."""
        # Subscribed before the tail is read, so a replica that starts meanwhile is not missed.
        changes = self._bus.subscribe(app=name, categories=FOLLOW_CHANGE_CATEGORIES)
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=FOLLOW_QUEUE_LINES)
        followers: dict[str, asyncio.Task[None]] = {}
        relist_queued = False
        relist_due = False  # the slow relist's time came while the queue was full
        loop = asyncio.get_running_loop()

        async def pump(container_id: str, since: float) -> None:
            async for line in self._runtime.follow_logs(container_id, since=since):
                await queue.put(self._redacted(line))

        async def watch_changes() -> None:
            nonlocal relist_queued
            async for _event in changes:
                if not relist_queued:  # a scale by 10 is one relist, not ten
                    relist_queued = True
                    await queue.put(_RELIST)

        def fallback_relist() -> None:
            nonlocal relist_queued, relist_due
            if relist_queued:  # an event's relist is on its way
                return
            relist_queued = True
            try:
                queue.put_nowait(_RELIST)
            except asyncio.QueueFull:  # the reader is behind: it relists after its next line
                relist_due = True

        watcher = asyncio.create_task(watch_changes())
        try:
            for line in await self.logs(name, tail=tail, since=since):
                yield line
            since = time.time()
            while True:
                relist_queued = relist_due = False
                if await self._store.read(self._store.apps.get, name) is None:
                    return
                for info in await self._runtime.list_managed(name):
                    if info.running and info.id not in followers:
                        followers[info.id] = asyncio.create_task(pump(info.id, since))
                # One timer a relist period, made in an empty context: a cancelled timer stays in the
                # loop's heap until its time, holding the context it was made in, which is the reader's
                # (the console's worker, and once that worker is cancelled its traceback and frames).  A
                # timeout around each line left such a timer per line, and every app the console's
                # cursor passed kept a cancelled worker alive for 30 s, for every collection to walk.
                timer = loop.call_later(
                    FOLLOW_FALLBACK_RELIST_SECONDS, fallback_relist, context=contextvars.Context()
                )
                try:
                    while not relist_due:
                        item = await queue.get()
                        if not isinstance(item, LogLine):
                            break  # _RELIST
                        yield item
                finally:
                    timer.cancel()  # and with it the callback's hold on the queue
        finally:
            changes.close()
            tasks = [watcher, *followers.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
