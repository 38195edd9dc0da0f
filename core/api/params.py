"""Read and check request input (query parameters, JSON bodies).

Every problem becomes ``BadRequest`` naming the parameter or field and what it accepts, so a handler
never sees a value of the wrong type.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from aiohttp import web

from core.documents import read_json
from core.errors import BadRequest, RequestTimeout
from core.models import EVENT_CATEGORIES

# Bounds both route families put on what one request may ask for.
MAX_LOG_LINES = 10_000
MAX_EVENTS = 1000

APP_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
BODY_TIMEOUT_SECONDS = 10.0  # a document is a few KiB: ten seconds is generous on any link


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"2d"`` → seconds; ValueError otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_time(text: str, now: float | None = None) -> float:
    """An epoch timestamp, or a duration meaning that long ago (``since=1h``)."""
    try:
        value = float(text)
    except ValueError:
        return (time.time() if now is None else now) - parse_duration(text)
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ValueError(text)
    return value


def query_time(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise BadRequest(
            f"query parameter '{name}' must be an epoch time in seconds or a duration like 90s, 5m, 1h, 2d; "
            f"got {text!r}"
        ) from None


def query_int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter '{name}' must be from {low} to {high}; got {value}")
    return value


def query_bool(request: web.Request, name: str) -> bool:
    text = request.query.get(name, "").lower()
    if text in ("", "false", "0", "no"):
        return False
    if text in ("true", "1", "yes"):
        return True
    raise BadRequest(f"query parameter '{name}' must be true or false; got {text!r}")


def query_category(request: web.Request) -> str | None:
    """The ``type`` filter of the event routes: one of the event categories, or None."""
    text = request.query.get("type")
    if not text:
        return None
    if text not in EVENT_CATEGORIES:
        raise BadRequest(f"query parameter 'type' must be one of {', '.join(EVENT_CATEGORIES)}; got {text!r}")
    return text


def app_name(request: web.Request) -> str:
    """The ``{name}`` path part; a name that can never exist is simply unknown (404)."""
    return request.match_info["name"]


async def json_body(request: web.Request, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}`` when not required)."""
    try:
        raw = await asyncio.wait_for(request.read(), BODY_TIMEOUT_SECONDS)
    except TimeoutError:
        # A body that never finishes would hold this handler (and its connection) forever.
        raise RequestTimeout(
            f"request body did not arrive within {BODY_TIMEOUT_SECONDS:g} s: send the whole body at once"
        ) from None
    if not raw.strip():
        if required:
            raise BadRequest("request body is empty: send a JSON object")
        return {}
    body = read_json(raw, "request body")  # the guarded door every document enters by
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, not {type(body).__name__}")
    return body


def int_field(body: dict[str, Any], name: str, low: int, high: int, required: bool = True) -> int | None:
    if name not in body or body[name] is None:
        if required:
            raise BadRequest(f"field '{name}' is required: send a whole number from {low} to {high}")
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"field '{name}' must be a whole number from {low} to {high}; got {value!r}")
    if not low <= value <= high:
        raise BadRequest(f"field '{name}' must be from {low} to {high}; got {value}")
    return value


def number_field(body: dict[str, Any], name: str) -> float | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadRequest(f"field '{name}' must be a non-negative number; got {value!r}")
    return float(value)


def bool_field(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"field '{name}' must be true or false; got {value!r}")
    return value


def object_field(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise BadRequest(f"field '{name}' must be a JSON object of scaling keys, e.g. {{\"maxReplicas\": 5}}")
    return value
