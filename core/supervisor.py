"""Supervised background tasks: an exception is logged and the task restarted with backoff.

Nothing the engine runs in the background may die silently (STYLE.md, kopf's guarded tasks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from core.errors import OrchestryError

log = logging.getLogger(__name__)

DEFAULT_BACKOFF: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A task that ran this long before failing is considered healthy again: its backoff restarts.
HEALTHY_RUN_SECONDS = 60.0

ErrorHook = Callable[[str, BaseException, float], Awaitable[None] | None]


async def guarded(
    name: str,
    factory: Callable[[], Awaitable[object]],
    backoff: Sequence[float] = DEFAULT_BACKOFF,
    restart_on_return: bool = True,
    on_error: ErrorHook | None = None,
    restarts: dict[str, int] | None = None,
) -> None:
    """Run ``factory()`` until cancelled: a failure is logged (one line for a typed error, a traceback
    for a bug) and the coroutine started again after the next delay of ``backoff``; a return starts it
    again too unless ``restart_on_return`` is False. Also for tasks kept by their owner (one per app)
    rather than by a Supervisor."""
    attempt = 0
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await factory()
            if not restart_on_return:
                return
            log.warning("background task %s returned; restarting it", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if loop.time() - started > HEALTHY_RUN_SECONDS:
                attempt = 0
            delay = backoff[min(attempt, len(backoff) - 1)]
            if isinstance(exc, OrchestryError):
                # A typed error already names what failed and the fix (a database or Docker
                # outage): one line per failure, not a traceback on every retry of the outage.
                log.warning("background task %s failed: %s; restarting in %.1f s", name, exc, delay)
            else:
                log.exception("background task %s failed; restarting in %.1f s", name, delay)
            if restarts is not None:
                restarts[name] = restarts.get(name, 0) + 1
            if on_error is not None:
                try:
                    result = on_error(name, exc, delay)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("error hook for %s failed", name)
            attempt += 1
            await asyncio.sleep(delay)
            continue
        attempt = 0
        await asyncio.sleep(backoff[0])


class Supervisor:
    """Owns long-running coroutines; restarts each one that fails or returns, with backoff."""

    def __init__(self, on_error: ErrorHook | None = None) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._on_error = on_error
        self.restarts: dict[str, int] = {}

    def start(
        self,
        name: str,
        factory: Callable[[], Awaitable[object]],
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        restart_on_return: bool = True,
    ) -> asyncio.Task[None]:
        if name in self._tasks and not self._tasks[name].done():
            return self._tasks[name]
        task = asyncio.create_task(
            guarded(name, factory, backoff, restart_on_return, self._on_error, self.restarts), name=name
        )
        self._tasks[name] = task
        return task

    def is_running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def cancel(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def names(self) -> list[str]:
        return sorted(name for name, task in self._tasks.items() if not task.done())
