"""Bearer-token auth for an API bound outside loopback.

Loopback binds need no token (only local users reach them).  Bound anywhere else the daemon refuses to
start without ``ORCHESTRY_API_TOKEN`` and then every route but ``/health`` requires it.  The compare is
constant-time so a wrong token leaks nothing through timing.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from core.api.errors import Handler, error_response
from core.errors import SettingsError

UNAUTHENTICATED_PATHS = frozenset({"/health"})
UNAUTHORIZED_DETAIL = "missing or wrong bearer token: set Authorization: Bearer $ORCHESTRY_API_TOKEN"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def required_token(host: str, token: str | None) -> str | None:
    """The token the API must demand when bound to ``host``; raises when one is needed but unset."""
    if is_loopback_host(host):
        return token or None
    if not token:
        raise SettingsError(
            f"ORCHESTRY_HOST={host} is not a loopback address, so the API needs a token: "
            "set ORCHESTRY_API_TOKEN to a long random string (or bind ORCHESTRY_HOST=127.0.0.1)"
        )
    return token


def token_matches(header: str | None, token: str) -> bool:
    scheme, _, presented = (header or "").partition(" ")
    # compare_digest on equal-typed bytes; a wrong scheme still costs one compare so timing is flat.
    ok = hmac.compare_digest(presented.strip().encode(), token.encode())
    return ok and scheme.lower() == "bearer"


def bearer_auth_middleware(token: str) -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in UNAUTHENTICATED_PATHS:
            return await handler(request)
        if not token_matches(request.headers.get("Authorization"), token):
            return error_response(401, UNAUTHORIZED_DETAIL, {"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return middleware
