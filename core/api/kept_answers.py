"""List answers kept encoded between requests while nothing they show has changed.

``GET /apps`` and ``GET /api/v1/apps`` are what dashboards and scripts poll.  Building one means a view
of every app and a model dump and JSON encoding of them all: milliseconds at fifty apps, on the event
loop, for an answer that changes a few times a minute.  The engine gives a fingerprint of everything
such a list shows (records, statuses, ready counts), computed from what it holds without waiting on
anything; while it stays equal the bytes built for it are sent again.  The answer is the one the full
path builds, byte for byte: the full path is what builds it.
"""

from __future__ import annotations

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

    async def respond(
        self, engine: Engine, route: str, build: Callable[[], Awaitable[BaseModel]]
    ) -> web.Response:
        """The answer of ``route``: kept bytes while the engine's fingerprint is unchanged, else
        ``build()`` encoded (and kept when the fingerprint did not move while it was built)."""
        fingerprint = getattr(engine, "apps_fingerprint", lambda: None)
        before = fingerprint()
        kept = self._kept.get(route)
        if before is not None and kept is not None and kept[0] == before:
            return _json(kept[1])
        body = redacted_dumps((await build()).model_dump(mode="json")).encode()
        if before is not None and fingerprint() == before:
            self._kept[route] = (before, body)
        else:
            self._kept.pop(route, None)
        return _json(body)


def _json(body: bytes) -> web.Response:
    # What web.json_response sends: the same body and "application/json; charset=utf-8".
    return web.Response(body=body, content_type="application/json", charset="utf-8")


KEPT_ANSWERS = web.AppKey("kept_answers", KeptAnswers)
