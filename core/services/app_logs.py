"""Replica logs of one app, merged across its replicas and redacted: a batch or a live follow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from core.errors import NotFound
from core.redaction import Redactor
from core.runtime.base import LogLine, Runtime
from core.store import Store

FOLLOW_QUEUE_LINES = 10_000
# How often a follow looks for replicas that came or went (and whether the app still exists).  Each look
# is a store read and a Docker list: every second it was most of an idle console's logs pane.  A new
# replica's lines lose nothing to the wait (they are read from the follow's start), they come later.
FOLLOW_RELIST_SECONDS = 3.0


class AppLogs:
    def __init__(self, store: Store, runtime: Runtime, redactor: Redactor) -> None:
        self._store = store
        self._runtime = runtime
        self._redactor = redactor

    async def _require_app(self, name: str) -> None:
        if await asyncio.to_thread(self._store.apps.get, name) is None:
            raise NotFound(f"app '{name}' is not registered: register it first (orchestry register FILE)")

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

    async def follow_logs(self, name: str, tail: int | None = 10) -> AsyncIterator[LogLine]:
        """The last ``tail`` lines, then new lines as they come, from replicas as they come and go."""
        for line in await self.logs(name, tail=tail):
            yield line
        queue: asyncio.Queue[LogLine] = asyncio.Queue(maxsize=FOLLOW_QUEUE_LINES)
        followers: dict[str, asyncio.Task[None]] = {}
        since = time.time()

        async def pump(container_id: str) -> None:
            async for line in self._runtime.follow_logs(container_id, since=since):
                await queue.put(self._redacted(line))

        try:
            while True:
                if await asyncio.to_thread(self._store.apps.get, name) is None:
                    return
                for info in await self._runtime.list_managed(name):
                    if info.running and info.id not in followers:
                        followers[info.id] = asyncio.create_task(pump(info.id))
                deadline = time.monotonic() + FOLLOW_RELIST_SECONDS
                while (remaining := deadline - time.monotonic()) > 0:
                    try:
                        yield await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
        finally:
            for task in followers.values():
                task.cancel()
            await asyncio.gather(*followers.values(), return_exceptions=True)
