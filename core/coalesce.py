"""Calls that ask together share one outcome, and none takes an outcome sent before it asked.

Callers join the *gathering* round: the call not sent yet.  When the call in flight (if any) has
answered, the gathering round is sent, with what its callers asked for, and every one of them gets
its outcome: its value, or the exception it raised.  Callers that arrive after a round was sent wait
for the next one (the one in flight may have been sent before the world changed under them), so at
most one call is in flight and one more gathers callers, whatever the number of callers.

A caller that gives up (cancelled, or its deadline) leaves the shared call running for the others.
Used by the reconcile passes' container listing (core/shared_listing.py) and /health's database ping
(core/services/node_status.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["Coalescer", "retrieved"]

A = TypeVar("A")  # what one round's callers ask for together (e.g. the apps they want)
T = TypeVar("T")  # the call's outcome


class _Round(Generic[A, T]):
    """The callers of one call that has not been sent yet."""

    def __init__(self, asks: A) -> None:
        self.asks = asks
        self.outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.outcome.add_done_callback(retrieved)


class Coalescer(Generic[A, T]):
    def __init__(
        self,
        call: Callable[[A], Awaitable[T]],
        asks: Callable[[], A],
        *,
        name: str,
        hold_back: float | None = None,
    ) -> None:
        """``call(asks)`` makes the shared call with what one round's callers asked for (``asks()``
        starts each round's, empty).  A call in flight holds the next one back until it answers,
        or at most ``hold_back`` seconds (a hung call then costs one stuck call per period, not one
        per caller).  ``name`` names the calls' tasks."""
        self._call = call
        self._asks = asks
        self._name = name
        self._hold_back = hold_back
        self._running: asyncio.Future[T] | None = None  # sent: not joinable any more
        self._gathering: _Round[A, T] | None = None  # not sent yet: joinable
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # calls sent (for tests and benches)

    def join(self, ask: Callable[[A], object] | None = None) -> asyncio.Future[T]:
        """Await it for the outcome of a call sent after this one asked: its value, or raise what it
        raised.  ``ask(asks)`` adds this caller's wishes to the round's.  (Not a coroutine: the
        callers' own coroutines await it directly, without one more frame per caller.)"""
        joined = self._gathering
        if joined is None:
            joined = self._gathering = _Round(self._asks())
            task = asyncio.create_task(self._send(joined, self._running), name=self._name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if ask is not None:
            ask(joined.asks)
        # Shielded: one caller giving up must not cancel the others' call.
        return asyncio.shield(joined.outcome)

    async def _send(self, joined: _Round[A, T], before: asyncio.Future[T] | None) -> None:
        outcome = joined.outcome
        try:
            if before is not None:
                # One call at a time: callers keep joining this round until the previous answers.
                await asyncio.wait([before], timeout=self._hold_back)
            # From here on the call is (about to be) sent: a later caller must not take its outcome.
            if self._gathering is joined:
                self._gathering = None
            self._running = outcome
            self.calls += 1
            value = await self._call(joined.asks)
        except asyncio.CancelledError:  # closed: the waiters must not wait for ever
            outcome.cancel()
            raise
        except Exception as exc:  # every waiter gets the call's error, as its own call would
            if not outcome.done():
                outcome.set_exception(exc)
        else:
            if not outcome.done():
                outcome.set_result(value)
        finally:
            if self._gathering is joined:  # closed while gathering: no later caller joins it
                self._gathering = None
            if self._running is outcome:
                self._running = None

    async def close(self) -> None:
        """Cancel the calls in flight or gathering (their waiters get CancelledError)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def retrieved(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome, so an error no waiter is left to see is not reported as never retrieved
    (a done callback of a future shared by callers that may all have given up)."""
    if not future.cancelled():
        future.exception()
