"""List answers kept encoded between requests, one entry per app, while nothing they show changes.

``GET /apps`` and ``GET /api/v1/apps`` are what dashboards and scripts poll.  Building one means a view
of every app and a model dump and JSON encoding of them all: milliseconds at fifty apps, on the event
loop, for an answer that changes a few times a minute.  On the leader the engine lists every app with a
key of what its entry shows (record, status, reason, ready replicas), from what it holds and without
waiting on anything.  Each app's entry is kept encoded under its key and the whole answer under all the
keys: an unchanged list is sent again as it is, and a change to one app (a scale, a status, a register
or a delete) encodes and masks that one entry and splices the rest.  The bytes are the full path's: the
entries are the same models encoded the same way, joined the way ``json.dumps`` joins a list, and masked
as ``redacted_dumps`` masks the whole (piece by piece only while no secret could match across a cut).
A follower builds each answer with the full path.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel

from core.api.context import redacted_dumps
from core.redaction import default_redactor

if TYPE_CHECKING:
    from core.engine import Engine
    from core.models import AppView
    from core.services.app_views import AppListing

# How json.dumps writes {"apps": [a, b]} with its default separators.
_HEAD, _SEPARATOR, _TAIL = '{"apps": [', ", ", "]}"
# The two characters either side of each cut between an entry and the text around it (and of an
# empty list's): while no secret contains one, entries masked one by one make the same text as the
# whole masked at once.
_CUTS = ("[{", "},", " {", "}]", "[]")


class KeptList:
    """One route's list: each app's encoded entry under its key, and the whole answer under them all."""

    def __init__(self, entry: Callable[[AppView], BaseModel]) -> None:
        self._entry = entry
        # name → (key, entry as json.dumps writes it, that text masked and encoded)
        self._entries: dict[str, tuple[Hashable, str, bytes]] = {}
        self._whole: tuple[Hashable, bytes] | None = None
        self._secrets = -1  # how many secret values the masked entries were masked with
        self._piecewise = False

    def answer(self, listing: AppListing) -> bytes:
        """The encoded list of ``listing``.  Synchronous on purpose: keys, views and bytes all come
        from one instant of the engine's state, so nothing can change between a key and its entry."""
        secrets = len(default_redactor)  # only ever grows: a new value changes what is masked
        key = (secrets, tuple(listing.keys))
        if self._whole is not None and self._whole[0] == key:
            return self._whole[1]
        if secrets != self._secrets:
            self._entries, self._secrets = {}, secrets
            self._piecewise = not default_redactor.any_contains(_CUTS)
        entries: dict[str, tuple[Hashable, str, bytes]] = {}
        for index, (name, app_key) in enumerate(zip(listing.names, listing.keys, strict=True)):
            kept = self._entries.get(name)
            if kept is None or kept[0] != app_key:
                text = json.dumps(self._entry(listing.view(index)).model_dump(mode="json"))
                kept = (app_key, text, default_redactor.redact(text).encode() if self._piecewise else b"")
            entries[name] = kept
        self._entries = entries  # deleted apps' entries go with the old dict
        if self._piecewise:  # masking a big list costs milliseconds: mask only the new entries
            redact = default_redactor.redact
            body = (
                redact(_HEAD).encode()
                + redact(_SEPARATOR).encode().join(masked for _key, _text, masked in entries.values())
                + redact(_TAIL).encode()
            )
        else:
            text = _HEAD + _SEPARATOR.join(text for _key, text, _masked in entries.values()) + _TAIL
            body = default_redactor.redact(text).encode()
        self._whole = (key, body)
        return body


class KeptAnswers:
    def __init__(self) -> None:
        self._lists: dict[str, KeptList] = {}

    async def respond(
        self,
        engine: Engine,
        route: str,
        build: Callable[[], Awaitable[BaseModel]],
        entry: Callable[[AppView], BaseModel],
    ) -> web.Response:
        """The answer of ``route``, a list of ``entry(view)`` of every app: spliced from kept entries
        on the leader, ``build()`` encoded where the engine cannot list its apps with keys."""
        listing = await engine.listed_apps()
        if listing is None:
            return _json(redacted_dumps((await build()).model_dump(mode="json")).encode())
        kept = self._lists.get(route)
        if kept is None:
            kept = self._lists[route] = KeptList(entry)
        return _json(kept.answer(listing))


def _json(body: bytes) -> web.Response:
    # What web.json_response sends: the same body and "application/json; charset=utf-8".
    return web.Response(body=body, content_type="application/json", charset="utf-8")


KEPT_ANSWERS = web.AppKey("kept_answers", KeptAnswers)
