"""What the Docker and Swarm runtimes share: SDK calls run in the bounded thread pool, a connection
failure becomes RuntimeUnavailable, and which labelled objects belong to this installation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import requests.exceptions
from docker import APIClient

from core.errors import RuntimeUnavailable
from core.runtime.base import LABEL_CLUSTER
from core.runtime.docker_calls import _root_cause

T = TypeVar("T")


class PooledApiCalls:
    # Provided by the runtime this is mixed into.
    cluster_id: str | None
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
        try:
            return work(self._api())
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise self._unavailable(_root_cause(exc)) from exc

    async def _run(self, work: Callable[[APIClient], T]) -> T:
        if self._closed:
            raise RuntimeUnavailable(self._closed_message)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, work)
