"""The API client for an event loop: the same requests and errors as ``http.ApiClient``, via aiohttp.

The console attached to a daemon uses it: nothing here blocks the loop, every call has a timeout, and
a failure is one of the two errors the CLI already knows (``ApiError``, ``DaemonUnreachable``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from orchestry_tui.client.http import (
    LEADER_HEADER,
    ApiError,
    DaemonUnreachable,
    error_detail,
    request_headers,
    request_url,
    unreachable_reason,
)

# Reads answer in milliseconds; a daemon that takes longer is as good as gone for a live screen.
READ_TIMEOUT_SECONDS = 10.0
# Writes may wait on the store or a rolling restart's first step; diagnostics gather a lot.
WRITE_TIMEOUT_SECONDS = 120.0
CONNECT_TIMEOUT_SECONDS = 5.0
# aiohttp reads NDJSON lines up to this long; a log line longer than 64 KiB must not end the stream.
STREAM_LINE_LIMIT = 1024 * 1024


class AsyncApiClient:
    """One aiohttp session to ``base_url``; ``close()`` it when done."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so it belongs to the loop that uses it (not the one that built us).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(read_bufsize=STREAM_LINE_LIMIT)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        timeout: float | None = READ_TIMEOUT_SECONDS,
    ) -> aiohttp.ClientResponse:
        """The response with its status checked; the caller reads and releases it."""
        try:
            response = await self._client().request(
                method,
                request_url(self.base_url, path, query),
                data=None if body is None else json.dumps(body),
                headers=request_headers(self.token, body is not None),
                timeout=aiohttp.ClientTimeout(
                    total=timeout, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=timeout
                ),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DaemonUnreachable(self.base_url, unreachable_reason(exc)) from None
        if response.status >= 400:
            try:
                raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise DaemonUnreachable(self.base_url, unreachable_reason(exc)) from None
            finally:
                response.release()
            raise ApiError(
                response.status, error_detail(raw, response.reason or ""), response.headers.get(LEADER_HEADER)
            )
        return response

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        timeout: float | None = READ_TIMEOUT_SECONDS,
    ) -> bytes:
        response = await self._send(method, path, body, query, timeout)
        try:
            return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DaemonUnreachable(self.base_url, unreachable_reason(exc)) from None
        finally:
            response.release()

    async def get(self, path: str, **query: Any) -> Any:
        return _json(await self.call("GET", path, query=query))

    async def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return _json(await self.call("POST", path, body, query, WRITE_TIMEOUT_SECONDS))

    async def put(self, path: str, body: Any = None) -> Any:
        return _json(await self.call("PUT", path, body, timeout=WRITE_TIMEOUT_SECONDS))

    async def delete(self, path: str, **query: Any) -> Any:
        return _json(await self.call("DELETE", path, query=query, timeout=WRITE_TIMEOUT_SECONDS))

    async def stream_lines(self, path: str, **query: Any) -> AsyncIterator[dict[str, Any]]:
        """Newline-delimited JSON until the server ends the stream; a cut stream is DaemonUnreachable."""
        response = await self._send("GET", path, query=query, timeout=None)
        try:
            while True:
                try:
                    raw = await response.content.readline()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise DaemonUnreachable(self.base_url, unreachable_reason(exc)) from None
                if not raw:
                    return
                if raw.strip():
                    yield json.loads(raw)
        finally:
            response.release()


def _json(raw: bytes) -> Any:
    return json.loads(raw) if raw else None
