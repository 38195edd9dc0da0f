"""Build the aiohttp application that serves both route families for one Engine."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from core import __version__
from core.api import routes_legacy, routes_v1
from core.api.auth import bearer_auth_middleware
from core.api.bind_failure import bind_failure
from core.api.context import CLOSING, ENGINE, NODE_ID, json_response
from core.api.errors import Handler, error_middleware, error_response
from core.api.kept_answers import KEPT_ANSWERS, KeptAnswers
from core.api.openapi import openapi_document
from core.documents import MAX_DOCUMENT_BYTES
from core.errors import SettingsError

if TYPE_CHECKING:
    from core.engine import Engine


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(openapi_document(__version__))


# On every answer, errors included: a client told an address that answers 404 can tell Orchestry's
# "no such app" from another web server (the apps' load balancer is the usual mistake).
API_HEADER = "X-Orchestry-Version"


async def identify(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_HEADER] = __version__


SHUTTING_DOWN = (
    "this node is shutting down: send the request again (through the controller LB it reaches another node)"
)


@web.middleware
async def refuse_once_stopping(request: web.Request, handler: Handler) -> web.StreamResponse:
    """From the moment the engine begins to stop, new requests (keep-alive connections still bring
    some after the listener closed) get a 503 rather than a half-stopped engine's 500."""
    if not request.app[ENGINE].serving:
        return error_response(503, SHUTTING_DOWN, {"Connection": "close"})
    return await handler(request)


def create_app(
    engine: Engine,
    node_id: str,
    *,
    require_token: bool = False,
    api_token: str | None = None,
) -> web.Application:
    """The API for ``engine``.  With ``require_token`` every route but /health needs the bearer token.

    No CORS headers are sent: browsers on other origins cannot call the API, which is the point for an
    API that controls containers."""
    middlewares = [error_middleware, refuse_once_stopping]
    if require_token:
        if not api_token:
            raise SettingsError("the API requires a token but ORCHESTRY_API_TOKEN is not set: set it")
        # Auth runs inside the error middleware so a 401 has the same JSON shape as every other error.
        middlewares.append(bearer_auth_middleware(api_token))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_DOCUMENT_BYTES)
    app[ENGINE] = engine
    app[NODE_ID] = node_id
    app[KEPT_ANSWERS] = KeptAnswers()
    app.on_response_prepare.append(identify)
    app[CLOSING] = asyncio.Event()
    app.on_shutdown.append(_closing)
    app.add_routes(routes_legacy.routes)
    app.add_routes(routes_v1.routes)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    return app


async def _closing(app: web.Application) -> None:
    app[CLOSING].set()


async def start_site(
    engine: Engine, host: str, port: int, node_id: str, token: str | None
) -> tuple[web.AppRunner, web.TCPSite]:
    """Serve the API on ``host:port`` in the running loop (daemon and console alike).

    Raises OSError, after cleaning up, when the address cannot be bound, its ``strerror`` naming who
    holds the port and a free one; each caller says what that means for it. The engine then advertises
    no API address rather than the configured one, which belongs to whoever holds it.
    """
    app = create_app(engine, node_id, require_token=token is not None, api_token=token)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await engine.advertise_api("")
        raise bind_failure(host, port, exc) from None
    return runner, site
