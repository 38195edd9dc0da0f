"""List answers kept encoded between requests while nothing they show has changed.

``GET /apps`` and ``GET /api/v1/apps`` are what dashboards and scripts poll.  Building one means a view
of every app and a model dump and JSON encoding of them all: milliseconds at fifty apps, on the event
loop, for an answer that changes a few times a minute.  The engine gives a fingerprint of everything
such a list shows (records, statuses, ready counts), computed from what it holds without waiting on
anything; while it stays equal the bytes built for it are sent again.  The answer is the one the full
path builds, byte for byte: the full path is what builds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel

from core.api.context import redacted_dumps

if TYPE_CHECKING:
    from core.engine import Engine


class KeptAnswers:
    def __init__(self) -> None:
        self._kept: dict[str, tuple[Hashable, bytes]] = {}
        self._building: dict[str, asyncio.Lock] = {}

    async def respond(
        self, engine: Engine, route: str, build: Callable[[], Awaitable[BaseModel]]
    ) -> web.Response:
        """The answer of ``route``: kept bytes while the engine's fingerprint is unchanged, else
        ``build()`` encoded (and kept when the fingerprint did not move while it was built)."""
        fingerprint = getattr(engine, "apps_fingerprint", lambda: None)
        now = fingerprint()
        if now is None:  # nothing to key an answer on (a follower): built for each request, in parallel
            return _json(await self._build(route, fingerprint, None, build))
        kept = self._kept_for(route, now)
        if kept is not None:
            return _json(kept)
        # One build per route at a time: clients that miss together (a change during a scale) wait
        # for it and take its answer when it is for what they would see, instead of each building one.
        async with self._building.setdefault(route, asyncio.Lock()):
            before = fingerprint()
            kept = self._kept_for(route, before)
            if kept is not None:
                return _json(kept)
            body = await self._build(route, fingerprint, before, build)
        return _json(body)

    def _kept_for(self, route: str, fingerprint: Hashable | None) -> bytes | None:
        kept = self._kept.get(route)
        return kept[1] if fingerprint is not None and kept is not None and kept[0] == fingerprint else None

    async def _build(
        self,
        route: str,
        fingerprint: Callable[[], Hashable | None],
        before: Hashable | None,
        build: Callable[[], Awaitable[BaseModel]],
    ) -> bytes:
        body = redacted_dumps((await build()).model_dump(mode="json")).encode()
        if before is not None and fingerprint() == before:
            self._kept[route] = (before, body)
        else:
            self._kept.pop(route, None)
        return body


def _json(body: bytes) -> web.Response:
    # What web.json_response sends: the same body and "application/json; charset=utf-8".
    return web.Response(body=body, content_type="application/json", charset="utf-8")


KEPT_ANSWERS = web.AppKey("kept_answers", KeptAnswers)
