"""The in-flight coalescer under SharedListing and SharedPing (core/coalesce.py): callers that ask
together share one call and its outcome (value or error), a caller never takes the outcome of a call
sent before it asked, and one caller giving up leaves the call running for the others."""

from __future__ import annotations

import asyncio

import pytest

from core.coalesce import Coalescer

# A broken coalescer leaves callers waiting for ever: fail in a minute, not the suite's five.
pytestmark = pytest.mark.timeout(60)


class GatedCall:
    """A call that answers only when the test says so, with what its callers asked for."""

    def __init__(self) -> None:
        self.sent: list[asyncio.Future[None]] = []  # one per call, released by the test
        self.asked: list[list[str]] = []  # what each call was sent with
        self.cancelled = 0

    async def __call__(self, asks: list[str]) -> list[str]:
        self.asked.append(sorted(asks))
        gate = asyncio.get_running_loop().create_future()
        self.sent.append(gate)
        try:
            await gate
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return sorted(asks)

    def answer(self, call: int, error: Exception | None = None) -> None:
        if error is not None:
            self.sent[call].set_exception(error)
        else:
            self.sent[call].set_result(None)


def coalescer(call: GatedCall, hold_back: float | None = None) -> Coalescer[list[str], list[str]]:
    return Coalescer(call, list, name="test-call", hold_back=hold_back)


async def caller(shared: Coalescer[list[str], list[str]], name: str | None = None) -> list[str]:
    """One caller, in its own task as the passes and probes are; ``name``: what it asks for."""
    return await shared.join(None if name is None else lambda asks: asks.append(name))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_that_ask_together_share_one_call_with_all_their_asks() -> None:
    call = GatedCall()
    shared = coalescer(call)
    callers = [asyncio.create_task(caller(shared, n)) for n in "cab"]
    await settle()
    assert len(call.sent) == 1
    call.answer(0)
    assert await asyncio.gather(*callers) == [["a", "b", "c"]] * 3
    assert call.asked == [["a", "b", "c"]] and shared.calls == 1


async def test_a_caller_never_takes_the_outcome_of_a_call_sent_before_it_asked() -> None:
    call = GatedCall()
    shared = coalescer(call)
    early = asyncio.create_task(caller(shared, "early"))
    await settle()
    late = [asyncio.create_task(caller(shared, n)) for n in "xy"]
    await settle()
    assert len(call.sent) == 1, "the next call waits for the one in flight (one at a time)"
    call.answer(0)
    assert await early == ["early"]
    await settle()
    assert not any(t.done() for t in late), "the call in flight was sent before they asked"
    assert len(call.sent) == 2  # the late callers share the next call
    call.answer(1)
    assert await asyncio.gather(*late) == [["x", "y"], ["x", "y"]]


async def test_an_error_reaches_every_waiter_and_the_next_call_is_sent_afresh() -> None:
    call = GatedCall()
    shared = coalescer(call)
    callers = [asyncio.create_task(caller(shared)) for _ in range(3)]
    await settle()
    call.answer(0, ConnectionError("down"))
    for failed in callers:
        with pytest.raises(ConnectionError, match="down"):
            await failed
    again = asyncio.create_task(caller(shared, "again"))
    await settle()
    call.answer(1)
    assert await again == ["again"] and shared.calls == 2


async def test_a_waiter_cancelled_does_not_cancel_the_call_the_others_wait_for() -> None:
    call = GatedCall()
    shared = coalescer(call)
    gone = asyncio.create_task(caller(shared, "gone"))
    kept = asyncio.create_task(caller(shared, "kept"))
    await settle()
    gone.cancel()
    await settle()
    assert call.cancelled == 0
    call.answer(0)
    assert await kept == ["gone", "kept"]
    assert gone.cancelled()


async def test_a_hung_call_holds_back_the_next_at_most_hold_back() -> None:
    call = GatedCall()
    shared = coalescer(call, hold_back=0.05)
    hung = asyncio.create_task(caller(shared))
    await settle()
    later = [asyncio.create_task(caller(shared)) for _ in range(3)]
    for _ in range(500):  # without the bound they would wait for the hung call for ever
        if len(call.sent) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(call.sent) == 2  # one for all three later callers
    call.answer(1)
    await asyncio.gather(*later)
    hung.cancel()
    await shared.close()


async def test_close_ends_the_waiters_of_calls_in_flight_and_gathering() -> None:
    call = GatedCall()
    shared = coalescer(call)
    in_flight = asyncio.create_task(caller(shared))
    await settle()
    gathering = asyncio.create_task(caller(shared))
    await settle()
    await shared.close()
    for waiter in (in_flight, gathering):
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):  # without close cancelling them they would wait for ever
                await waiter
    assert call.cancelled == 1
