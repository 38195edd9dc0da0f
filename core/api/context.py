"""What every handler needs from the application: the engine and this node's id."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel

from core.redaction import default_redactor

if TYPE_CHECKING:
    from core.engine import Engine

ENGINE: web.AppKey[Engine] = web.AppKey("engine")
NODE_ID = web.AppKey("node_id", str)
# Set when the server begins to stop (aiohttp's on_shutdown): open streams end then, instead of
# holding the stop for aiohttp's 60 s wait on each open request.
CLOSING = web.AppKey("closing", asyncio.Event)


def engine_of(request: web.Request) -> Engine:
    return request.app[ENGINE]


def node_id_of(request: web.Request) -> str:
    return request.app[NODE_ID]


def is_leader(engine: Engine) -> bool:
    """A lone node without a cluster seam leads itself."""
    check = getattr(engine, "is_leader", None)
    return True if check is None else bool(check())


def ensure_leader(request: web.Request) -> Engine:
    """The engine, if this node may change state; NotLeader (503 + X-Current-Leader) otherwise.

    The engine checks too, but checking here first means a follower answers before reading the body
    and never half-applies anything."""
    engine = engine_of(request)
    if not is_leader(engine):
        raise engine.not_leader()
    return engine


def redacted_dumps(body: object) -> str:
    # Last line of defence: the engine redacts specs, but any registered secret value that slipped into
    # an answer (an error echoing input, a log line) is masked here before it leaves the process.
    return default_redactor.redact(json.dumps(body))


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """``body`` is a wire model (core/api/wire.py) or, for the few free-form answers, plain JSON data."""
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return web.json_response(body, status=status, headers=headers, dumps=redacted_dumps)
