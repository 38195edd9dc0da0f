"""The listing every app's reconcile pass shares (core/shared_listing.py): one list call serves many
passes, and no pass ever gets a listing that was sent before it asked."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import RuntimeUnavailable
from core.runtime.base import ContainerInfo
from core.shared_listing import SharedListing


def info(app: str, slot: int) -> ContainerInfo:
    return ContainerInfo(
        id=f"{app}-{slot}-id",
        name=f"{app}-{slot}",
        app=app,
        slot=slot,
        spec_hash="h",
        state="running",
        host="127.0.0.1",
        port=8000 + slot,
    )


class ControlledRuntime:
    """A list call that answers only when the test says so, with the containers present when it was
    SENT (as Docker answers from its state at that moment)."""

    def __init__(self) -> None:
        self.containers: list[ContainerInfo] = []
        self.sent: list[asyncio.Future[None]] = []  # one per call, released by the test
        self.asked: list[str | None] = []  # the app of each call (None: every app)

    async def list_managed(self, app: str | None = None) -> list[ContainerInfo]:
        self.asked.append(app)
        snapshot = [c for c in self.containers if app is None or c.app == app]
        gate = asyncio.get_running_loop().create_future()
        self.sent.append(gate)
        await gate
        return sorted(snapshot, key=lambda i: (i.app, i.slot, i.name))

    def answer(self, call: int, error: Exception | None = None) -> None:
        if error is not None:
            self.sent[call].set_exception(error)
        else:
            self.sent[call].set_result(None)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_many_concurrent_passes_make_one_list_call_and_each_gets_only_its_app() -> None:
    runtime = ControlledRuntime()
    runtime.containers = [info(f"app{i}", slot) for i in range(50) for slot in (1, 2)]
    listing = SharedListing(runtime.list_managed)
    passes = [asyncio.ensure_future(listing.of(f"app{i}")) for i in range(50)]
    await settle()
    assert len(runtime.sent) == 1
    runtime.answer(0)
    results = await asyncio.gather(*passes)
    assert listing.calls == 1
    assert runtime.asked == [None]
    for i, found in enumerate(results):
        assert [(c.app, c.slot) for c in found] == [(f"app{i}", 1), (f"app{i}", 2)]


async def test_a_pass_never_takes_a_listing_sent_before_it_asked() -> None:
    runtime = ControlledRuntime()
    listing = SharedListing(runtime.list_managed)
    early = asyncio.ensure_future(listing.of("web"))
    await settle()
    assert len(runtime.sent) == 1  # sent while "web" had no container yet
    runtime.containers.append(info("web", 1))  # the pass just created one, and asks again
    late = asyncio.ensure_future(listing.of("web"))
    await settle()
    assert len(runtime.sent) == 1, "the next call waits for the one in flight (one at a time)"
    runtime.answer(0)
    assert await early == []
    await settle()
    assert not late.done(), "the answer to a call sent before the late pass asked is not its answer"
    assert len(runtime.sent) == 2
    runtime.answer(1)
    assert [c.id for c in await late] == ["web-1-id"]


async def test_passes_asking_while_a_call_is_in_flight_share_the_next_one() -> None:
    runtime = ControlledRuntime()
    listing = SharedListing(runtime.list_managed)
    first = asyncio.ensure_future(listing.of("a"))
    await settle()
    queued = [asyncio.ensure_future(listing.of(name)) for name in ("a", "b", "c")]
    await settle()
    runtime.answer(0)
    await first
    await settle()
    runtime.answer(1)
    await asyncio.gather(*queued)
    assert listing.calls == 2


async def test_a_failed_listing_fails_every_pass_that_shared_it_and_the_next_one_retries() -> None:
    runtime = ControlledRuntime()
    runtime.containers = [info("a", 1)]
    listing = SharedListing(runtime.list_managed)
    passes = [asyncio.ensure_future(listing.of(name)) for name in ("a", "b")]
    await settle()
    runtime.answer(0, RuntimeUnavailable("Docker engine does not answer"))
    for failed in passes:
        with pytest.raises(RuntimeUnavailable, match="does not answer"):
            await failed
    again = asyncio.ensure_future(listing.of("a"))
    await settle()
    runtime.answer(1)
    assert [c.app for c in await again] == ["a"]


async def test_a_cancelled_pass_does_not_cancel_the_listing_others_wait_for() -> None:
    runtime = ControlledRuntime()
    runtime.containers = [info("b", 1)]
    listing = SharedListing(runtime.list_managed)
    gone = asyncio.ensure_future(listing.of("a"))
    kept = asyncio.ensure_future(listing.of("b"))
    await settle()
    gone.cancel()
    await settle()
    runtime.answer(0)
    assert [c.app for c in await kept] == ["b"]
    assert gone.cancelled()


async def test_a_pass_asking_alone_makes_its_own_app_s_call() -> None:
    runtime = ControlledRuntime()
    runtime.containers = [info("a", 1), info("b", 1)]
    listing = SharedListing(runtime.list_managed)
    alone = asyncio.ensure_future(listing.of("a"))
    await settle()
    runtime.answer(0)
    assert [c.app for c in await alone] == ["a"]
    assert runtime.asked == ["a"], "nothing else to share it with: Docker filters by the app's label"


async def test_every_lists_every_app_even_alone_and_passes_asking_with_it_share_the_call() -> None:
    runtime = ControlledRuntime()
    runtime.containers = [info("a", 1), info("b", 1), info("b", 2)]
    listing = SharedListing(runtime.list_managed)
    every = asyncio.create_task(listing.every())
    one = asyncio.create_task(listing.of("b"))
    await settle()
    assert runtime.asked == [None]
    runtime.answer(0)
    found = await every
    assert {app: [c.slot for c in cs] for app, cs in found.items()} == {"a": [1], "b": [1, 2]}
    assert [c.slot for c in await one] == [1, 2]
    alone = asyncio.create_task(listing.every())
    await settle()
    assert runtime.asked == [None, None]  # alone, still every app's containers
    runtime.answer(1)
    assert set(await alone) == {"a", "b"}
