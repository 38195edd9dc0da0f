"""What the Docker and Swarm runtimes share: SDK calls run in the bounded thread pool, a connection
failure becomes RuntimeUnavailable, and which labelled objects belong to this installation."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import urlsplit

import requests.exceptions
from docker import APIClient

from core.errors import RuntimeUnavailable
from core.runtime.base import LABEL_CLUSTER
from core.runtime.docker_calls import _root_cause

T = TypeVar("T")

# How long a fresh connection to the engine may take before it counts as refused (a full listen
# backlog on a hung daemon would otherwise block the thread).
CONNECT_CHECK_SECONDS = 5.0


class PooledApiCalls:
    # Provided by the runtime this is mixed into.
    cluster_id: str | None
    docker_url: str
    _closed: bool
    _executor: ThreadPoolExecutor
    # What ``_run`` says once the runtime is closed (names the runtime to create instead).
    _closed_message: str

    def _api(self) -> APIClient:
        raise NotImplementedError

    def _unavailable(self, reason: object) -> RuntimeUnavailable:
        raise NotImplementedError

    def _ours(self, labels: dict[str, str]) -> bool:
        """Objects from before cluster ids (no label) count as ours, so an upgrade adopts them."""
        owner = labels.get(LABEL_CLUSTER)
        return owner is None or self.cluster_id is None or owner == self.cluster_id

    def _guarded(self, work: Callable[[APIClient], T]) -> T:
        api: APIClient | None = None
        try:
            api = self._api()
            return work(api)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if api is not None and isinstance(exc, requests.exceptions.ConnectionError):
                # A stopping dockerd removes its socket at once but keeps answering, for seconds, on
                # the connections it already has: a call on a kept one would say Docker answers while
                # the next new one fails, and the node watch flipped between the two (62 events in one
                # outage).  Closing the pool ends the kept connections (one in use closes as it is
                # returned), so every call after this one connects afresh, as it would to a new engine.
                api.close()
            raise self._unavailable(_root_cause(exc)) from exc

    def _connects(self) -> None:
        """Raises ConnectionError unless the engine accepts a new connection now.

        The pool's calls may all go over connections kept from before a dockerd began to stop, which
        it keeps answering while it stops its containers (its socket already gone): only a fresh
        connection tells a stopping engine from a running one.  A hung engine still accepts (the
        kernel does), so this is no answer check: the call made after it is.  URLs other than a unix
        socket or a TCP address (ssh://, npipe://) are not checked."""
        url = urlsplit(self.docker_url)
        try:
            if url.scheme == "unix":
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.settimeout(CONNECT_CHECK_SECONDS)
                    probe.connect(url.path)
            elif url.scheme in ("tcp", "http", "https") and url.hostname:
                port = url.port or (443 if url.scheme == "https" else 2375)
                socket.create_connection((url.hostname, port), timeout=CONNECT_CHECK_SECONDS).close()
        except OSError as exc:
            raise requests.exceptions.ConnectionError(f"cannot connect to {self.docker_url}: {exc}") from exc

    async def _run(self, work: Callable[[APIClient], T]) -> T:
        if self._closed:
            raise RuntimeUnavailable(self._closed_message)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, work)
