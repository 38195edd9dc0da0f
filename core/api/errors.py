"""Map typed ``core`` errors to HTTP answers, once, for every route.

Every error answer is ``{"detail": "<sentence naming the field or object and the fix>"}``.  A node that
does not hold the lease answers 503 with ``X-Current-Leader`` so a controller LB (or a client) can go
to the leader instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from core.api.context import json_response
from core.api.wire import Error
from core.documents import MAX_DOCUMENT_BYTES
from core.errors import NotLeader, OrchestryError

log = logging.getLogger("orchestry.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LEADER_HEADER = "X-Current-Leader"


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(Error(detail=detail), status=status, headers=headers)


def _http_exception_detail(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no route {request.method} {request.path}: see /api/v1/openapi.json for the routes"
    if exc.status == 405:
        return f"method {request.method} is not allowed on {request.path}: see /api/v1/openapi.json"
    if exc.status == 413:
        return (
            f"request body is too large: keep it under {MAX_DOCUMENT_BYTES} bytes "
            "(an app document is a page of YAML)"
        )
    return exc.reason


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotLeader as exc:
        headers = {LEADER_HEADER: exc.leader_id} if exc.leader_id else None
        return error_response(exc.http_status, exc.message, headers)
    except OrchestryError as exc:
        if exc.http_status >= 500:
            log.warning("%s %s failed: %s", request.method, request.path, exc.message)
        return error_response(exc.http_status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, _http_exception_detail(exc, request))
    except ConnectionResetError:
        # The client left while we were answering (log follow, slow downloads): nothing to report.
        raise
    except Exception:
        # Only the type reaches the client; the traceback goes to the daemon log, which is redacted.
        log.exception("%s %s failed unexpectedly", request.method, request.path)
        return error_response(500, "internal error: the daemon log has the traceback; please report it")
