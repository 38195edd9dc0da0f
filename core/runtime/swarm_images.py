"""Pinning a slot service's image to the digest its tag names now, as `docker service create` does.

A task whose image is a bare tag makes its node ask the registry for that tag every time it starts a
task, even with the image at hand (a scale-out by nine: nine registry round trips on loaded nodes before
any container starts).  Pinned to a digest the node finds locally, the task starts at once; and every
replica of a burst runs the same image even if the tag moves meanwhile.  Creates that arrive while a
tag is being resolved share that one answer (it is no older than their request); later ones resolve
again, so a tag pushed since is picked up by the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import docker.errors
from docker import APIClient

log = logging.getLogger(__name__)


class ImagePins:
    def __init__(
        self, run: Callable[[Callable[[APIClient], dict[str, Any]]], Awaitable[dict[str, Any]]]
    ) -> None:
        """``run``: runs a blocking manager call in the runtime's thread pool."""
        self._run = run
        self._resolving: dict[str, asyncio.Future[str]] = {}

    async def pinned(self, image: str) -> str:
        """``image`` with the digest its tag names now (``name:tag@sha256:…``); ``image`` itself when it
        is pinned already or no registry answers for it (a node may still have it, or pull it later)."""
        if "@" in image:
            return image
        future = self._resolving.get(image)
        if future is None:
            future = asyncio.ensure_future(self._resolve(image))
            self._resolving[image] = future
            future.add_done_callback(lambda done: self._forget(image, done))
        return await asyncio.shield(future)

    def _forget(self, image: str, future: asyncio.Future[str]) -> None:
        if self._resolving.get(image) is future:
            del self._resolving[image]

    async def _resolve(self, image: str) -> str:
        try:
            answer = await self._run(lambda api: api.inspect_distribution(image))
        except docker.errors.APIError as exc:
            log.debug("no registry digest for %s (%s): the service names the tag", image, exc)
            return image
        digest = (answer.get("Descriptor") or {}).get("digest")
        return f"{image}@{digest}" if isinstance(digest, str) and digest.startswith("sha256:") else image
