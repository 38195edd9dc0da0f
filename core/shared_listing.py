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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.coalesce import Coalescer
from core.runtime.base import ContainerInfo

__all__ = ["SharedListing"]

ListManaged = Callable[[str | None], Awaitable[list[ContainerInfo]]]
ByApp = dict[str, list[ContainerInfo]]


@dataclass
class _Asks:
    """What the callers of one listing want."""

    apps: set[str] = field(default_factory=set)
    every: bool = False  # a caller wants every app's containers: list them all


class SharedListing:
    def __init__(self, list_managed: ListManaged) -> None:
        """``list_managed(app)``: the runtime's containers of ``app``, or with None every one this
        controller manages (``Runtime.list_managed``), sorted by app, slot, name."""
        self._list_managed = list_managed
        self._shared: Coalescer[_Asks, ByApp] = Coalescer(self._list, _Asks, name="shared-listing")

    @property
    def calls(self) -> int:
        """List calls made (for tests and benches)."""
        return self._shared.calls

    async def of(self, app: str) -> list[ContainerInfo]:
        """The containers of ``app``, from a listing that started after this call (same order as
        ``list_managed(app)``)."""
        found = await self._shared.join(lambda asks: asks.apps.add(app))
        return list(found.get(app, ()))

    async def every(self) -> ByApp:
        """Every app's containers by app, from a listing that started after this call (callers must
        not change the lists)."""
        return await self._shared.join(_ask_every)

    async def _list(self, asks: _Asks) -> ByApp:
        apps = sorted(asks.apps)
        # One app asking: its own call (Docker filters by label; nothing else is parsed).
        found = await self._list_managed(apps[0] if len(apps) == 1 and not asks.every else None)
        by_app: ByApp = {}
        for info in found:
            by_app.setdefault(info.app, []).append(info)
        return by_app

    async def close(self) -> None:
        await self._shared.close()


def _ask_every(asks: _Asks) -> None:
    asks.every = True
