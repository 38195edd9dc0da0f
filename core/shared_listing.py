"""One container listing shared by every app's reconcile pass.

With hundreds of apps, a pass per app each asking Docker for its own containers (a list call filtered
by the app's label, through the bounded thread pool) was most of an idle engine's CPU.  Passes now ask
this object instead: it lists all of this cluster's containers once and each pass keeps its own app's.

Freshness is never traded for it: a caller only ever gets a listing that STARTED after it asked (a
listing already in flight may have been sent before the caller created or removed a container, so it
waits for the next one).  Callers that ask while no listing has started yet share that one listing, so
at most one list call is in flight and one more is queued, whatever the number of apps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from core.runtime.base import ContainerInfo

__all__ = ["SharedListing"]

ListAll = Callable[[], Awaitable[list[ContainerInfo]]]


class SharedListing:
    def __init__(self, list_all: ListAll) -> None:
        """``list_all``: every container this controller manages (``Runtime.list_managed()``)."""
        self._list_all = list_all
        self._running: asyncio.Future[list[ContainerInfo]] | None = None  # sent, not joinable
        self._queued: asyncio.Future[list[ContainerInfo]] | None = None  # not sent yet: joinable
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # list calls made (for tests and benches)

    async def of(self, app: str) -> list[ContainerInfo]:
        """The containers of ``app``, from a listing that started after this call (same order as
        ``list_managed(app)``: sorted by app, slot, name)."""
        everything = await self.fresh()
        return [c for c in everything if c.app == app]

    async def fresh(self) -> list[ContainerInfo]:
        """Every managed container, from a listing that started after this call."""
        if self._queued is None:
            self._queued = asyncio.get_running_loop().create_future()
            self._queued.add_done_callback(_retrieved)
            task = asyncio.create_task(self._list(self._queued, self._running), name="shared-listing")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: one caller giving up (a cancelled pass) must not cancel the others' listing.
        return await asyncio.shield(self._queued)

    async def _list(
        self,
        result: asyncio.Future[list[ContainerInfo]],
        before: asyncio.Future[list[ContainerInfo]] | None,
    ) -> None:
        if before is not None:
            # One list call at a time: callers keep joining this one until the previous answers.
            await asyncio.wait([before])
        # From here on the call is (about to be) sent: a later caller must not take its answer.
        if self._queued is result:
            self._queued = None
        self._running = result
        self.calls += 1
        try:
            found = await self._list_all()
        except asyncio.CancelledError:
            result.cancel()
            raise
        except Exception as exc:  # every waiter gets the runtime's error, as its own call would
            if not result.done():
                result.set_exception(exc)
        else:
            if not result.done():
                result.set_result(found)
        finally:
            if self._running is result:
                self._running = None

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _retrieved(future: asyncio.Future[list[ContainerInfo]]) -> None:
    """Retrieve the outcome, so an error no waiter is left to see is not reported as never retrieved."""
    if not future.cancelled():
        future.exception()
