"""Waiting for newly created slot services to run, all of them through one poll of the manager.

Docker 20.10 emits no task events, so the only way to learn that a new task runs (and which port Swarm
published for it) is to list tasks.  A scale-out by nine used to poll nine times over, three calls each
every 0.1 s: ~270 requests a second to the manager while it and the nodes were busy placing and
starting those very tasks, which slowed the starts down.  ``StartWatch`` polls once per tick for every
service still starting (``swarm_calls.started_replicas``) and hands each waiter its outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from docker import APIClient

from core.runtime.base import ContainerInfo
from core.runtime.swarm_calls import Starting, started_replicas
from core.runtime.swarm_spec import SwarmNode

log = logging.getLogger(__name__)

T = TypeVar("T")
Run = Callable[[Callable[[APIClient], T]], Awaitable[T]]

WATCH_POLL_SECONDS = 0.05


class StartWatch:
    """One poll loop for every slot service waiting for its task to run; it ends when none waits."""

    def __init__(self, run: Run[dict[str, ContainerInfo | Exception | None]], interval: float) -> None:
        """``run``: runs a blocking manager call in the runtime's thread pool."""
        self._run = run
        self.interval = interval
        self._waiting: dict[str, tuple[Starting, asyncio.Future[ContainerInfo]]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._nodes: dict[str, SwarmNode] = {}  # listed once per burst of starts

    async def started(self, service_id: str, starting: Starting) -> ContainerInfo:
        """The replica once the service's task runs and its published port is known; raises what
        ``started_replicas`` found wrong (unplaceable, failed start) or what the listing raised.
        Cancel it (e.g. with a timeout) to stop waiting."""
        future: asyncio.Future[ContainerInfo] = asyncio.get_running_loop().create_future()
        self._waiting[service_id] = (starting, future)
        if self._loop_task is None or self._loop_task.done():
            self._nodes = {}
            self._loop_task = asyncio.create_task(self._poll(), name="swarm-start-watch")
        try:
            return await future
        finally:
            self._waiting.pop(service_id, None)

    async def _poll(self) -> None:
        while self._waiting:
            waiting = {sid: start for sid, (start, future) in self._waiting.items() if not future.done()}
            if not waiting:  # every outcome handed over: let the waiters take them and leave
                await asyncio.sleep(0)
                continue
            try:
                outcomes = await self._run(lambda api, w=waiting: started_replicas(api, w, self._nodes))
            except Exception as exc:  # the listing failed: every waiter of this round learns why
                outcomes = dict.fromkeys(waiting, exc)
            for service_id, outcome in outcomes.items():
                entry = self._waiting.get(service_id)
                if entry is None or entry[1].done() or outcome is None:
                    continue
                if isinstance(outcome, Exception):
                    entry[1].set_exception(outcome)
                else:
                    entry[1].set_result(outcome)
            await asyncio.sleep(self.interval)

    async def close(self, reason: Exception) -> None:
        """Stop polling; whoever still waits gets ``reason``."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for _start, future in self._waiting.values():
            if not future.done():
                future.set_exception(reason)
