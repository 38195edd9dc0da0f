"""One container listing shared by the reconcile passes that ask for one at the same time.

With hundreds of apps, a pass per app each asking Docker for its own containers (a list call filtered
by the app's label, through the bounded thread pool) was most of an idle engine's CPU.  Passes now ask
this object instead: passes that ask together share one list call of all this controller's containers,
each keeping its own app's (indexed once per listing).  A pass that asks alone still makes the
per-app call, so nothing parses every container in the fleet for one app.

Freshness is never traded for it: a caller only ever gets a listing that STARTED after it asked (a
listing already in flight may have been sent before the caller created or removed a container, so it
waits for the next one).  Callers that ask while no listing has started yet join that one, so at most
one list call is in flight and one more is gathering callers, whatever the number of apps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from core.runtime.base import ContainerInfo

__all__ = ["SharedListing"]

ListManaged = Callable[[str | None], Awaitable[list[ContainerInfo]]]
ByApp = dict[str, list[ContainerInfo]]


class _Group:
    """The callers of one listing that has not been sent yet."""

    def __init__(self) -> None:
        self.apps: set[str] = set()
        self.every = False  # a caller wants every app's containers: list them all
        self.result: asyncio.Future[ByApp] = asyncio.get_running_loop().create_future()
        self.result.add_done_callback(retrieved)


class SharedListing:
    def __init__(self, list_managed: ListManaged) -> None:
        """``list_managed(app)``: the runtime's containers of ``app``, or with None every one this
        controller manages (``Runtime.list_managed``), sorted by app, slot, name."""
        self._list_managed = list_managed
        self._running: asyncio.Future[ByApp] | None = None  # sent: not joinable any more
        self._gathering: _Group | None = None  # not sent yet: joinable
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # list calls made (for tests and benches)

    async def of(self, app: str) -> list[ContainerInfo]:
        """The containers of ``app``, from a listing that started after this call (same order as
        ``list_managed(app)``)."""
        group = self._group()
        group.apps.add(app)
        # Shielded: one caller giving up (a cancelled pass) must not cancel the others' listing.
        found = await asyncio.shield(group.result)
        return list(found.get(app, ()))

    async def every(self) -> ByApp:
        """Every app's containers by app, from a listing that started after this call (callers must
        not change the lists)."""
        group = self._group()
        group.every = True
        return await asyncio.shield(group.result)

    def _group(self) -> _Group:
        group = self._gathering
        if group is None:
            group = self._gathering = _Group()
            task = asyncio.create_task(self._list(group, self._running), name="shared-listing")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return group

    async def _list(self, group: _Group, before: asyncio.Future[ByApp] | None) -> None:
        if before is not None:
            # One list call at a time: callers keep joining this group until the previous answers.
            await asyncio.wait([before])
        # From here on the call is (about to be) sent: a later caller must not take its answer.
        if self._gathering is group:
            self._gathering = None
        self._running = group.result
        self.calls += 1
        apps = sorted(group.apps)
        try:
            # One app asking: its own call (Docker filters by label; nothing else is parsed).
            found = await self._list_managed(apps[0] if len(apps) == 1 and not group.every else None)
        except asyncio.CancelledError:
            group.result.cancel()
            raise
        except Exception as exc:  # every waiter gets the runtime's error, as its own call would
            if not group.result.done():
                group.result.set_exception(exc)
        else:
            by_app: ByApp = {}
            for info in found:
                by_app.setdefault(info.app, []).append(info)
            if not group.result.done():
                group.result.set_result(by_app)
        finally:
            if self._running is group.result:
                self._running = None

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def retrieved(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome, so an error no waiter is left to see is not reported as never retrieved
    (a done callback of a future shared by callers that may all have given up)."""
    if not future.cancelled():
        future.exception()
