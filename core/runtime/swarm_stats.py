"""CPU and memory of Swarm tasks, from the Docker Engine API of the node that runs each one.

A node's API is found from its ``orchestry.docker-url`` label (or a settings map by hostname or id) and
reached with Docker's TLS environment.  A node whose API is unknown or does not answer gives no figure
and a reason: a wrong number would be worse than none.  A node that failed is not asked again for
``NODE_RETRY_SECONDS`` (each try would wait out a timeout).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor

import docker.errors
import requests.exceptions
from docker import APIClient

from core.runtime.base import ContainerStats
from core.runtime.docker_calls import _root_cause, _sample_stats
from core.runtime.docker_tls import tls_for
from core.runtime.swarm_nodes import NODE_LABEL_DOCKER_URL, api_unreachable
from core.runtime.swarm_spec import SwarmNode

NODE_API_TIMEOUT_SECONDS = 5.0
NODE_RETRY_SECONDS = 10.0


class NodeStats:
    def __init__(
        self,
        executor: Executor,
        api_version: Callable[[], str],
        node_docker_urls: dict[str, str],
        pool_size: int,
    ) -> None:
        """``api_version()``: the manager's API version (blocking the first time), used for every node;
        ``node_docker_urls``: hostname or node id → URL, for nodes without the label."""
        self._executor = executor
        self._api_version = api_version
        self.node_docker_urls = dict(node_docker_urls)
        self._pool_size = pool_size
        self._clients: dict[str, APIClient] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # url → (when, why)
        self._lock = threading.Lock()

    def url_of(self, node: SwarmNode | None) -> str | None:
        if node is None:
            return None
        return (
            node.docker_url or self.node_docker_urls.get(node.hostname) or self.node_docker_urls.get(node.id)
        )

    async def sample(self, node: SwarmNode | None, container_id: str) -> ContainerStats | str | None:
        """The container's figures; a reason (str) when its node's API cannot give them; None when the
        container no longer runs."""
        url = self.url_of(node)
        name = node.hostname if node is not None else "unknown"
        if url is None:
            return (
                f"node {name} has no Docker API address: label it "
                f"(docker node update --label-add {NODE_LABEL_DOCKER_URL}=tcp://ADDR:2376 {name})"
            )
        failed = self.recent_failure(url)
        if failed is not None:
            return failed
        loop = asyncio.get_running_loop()
        try:
            sample = await loop.run_in_executor(
                self._executor, lambda: _sample_stats(self.client(url), container_id)
            )
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            reason = api_unreachable(name, url, exc, _root_cause(exc))
            self.note_failure(url, reason)
            return reason
        self._failed.pop(url, None)
        return sample

    def recent_failure(self, url: str) -> str | None:
        """Why the node API at ``url`` failed less than NODE_RETRY_SECONDS ago (it is not asked again
        meanwhile: each try would wait out a timeout); None when it did not."""
        failed = self._failed.get(url)
        return failed[1] if failed is not None and time.monotonic() - failed[0] < NODE_RETRY_SECONDS else None

    def note_failure(self, url: str, reason: str) -> None:
        self._failed[url] = (time.monotonic(), reason)

    def client(self, url: str) -> APIClient:
        """The node's engine at ``url`` (one client per node, kept; blocking the first time)."""
        version = self._api_version()
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = APIClient(
                    base_url=url,
                    version=version,
                    timeout=NODE_API_TIMEOUT_SECONDS,
                    max_pool_size=self._pool_size,
                    tls=tls_for(url),
                )
                self._clients[url] = client
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
