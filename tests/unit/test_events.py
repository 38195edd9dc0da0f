"""The event bus: publishing never waits for a subscriber, and readers see events in order."""

from __future__ import annotations

import asyncio
import threading

from core.events import EventBus
from core.models import Event


def event(n: int, app: str | None = "web", category: str = "lifecycle") -> Event:
    return Event(
        id=n, app=app, category=category, kind="k", message=f"m{n}", details={"n": n}, timestamp=float(n)
    )


async def test_a_subscriber_that_never_reads_does_not_block_publishing() -> None:
    bus = EventBus()
    stalled = bus.subscribe(maxsize=100)
    for n in range(10_000):  # publishing returns at once (its cost: bench/responsiveness.py)
        bus.publish(event(n))
    assert stalled.dropped == 10_000 - 100
    # What is left is the newest 100, oldest first.
    stalled.close()
    remaining = [e.id async for e in stalled]
    assert remaining == list(range(9_900, 10_000))


async def test_a_fast_subscriber_gets_every_event_in_order() -> None:
    bus = EventBus()
    received: list[int] = []

    async def read(subscription) -> None:  # type: ignore[no-untyped-def]
        async for item in subscription:
            received.append(item.id)
            if item.id == 4_999:
                return

    async with bus.subscribe(maxsize=10) as subscription:
        reader = asyncio.create_task(read(subscription))
        for n in range(5_000):
            bus.publish(event(n))
            if n % 5 == 0:
                await asyncio.sleep(0)  # let the reader keep up, as a live loop would
        await asyncio.wait_for(reader, timeout=5)
        assert subscription.dropped == 0
    assert received == list(range(5_000))


async def test_filters_by_app_and_category() -> None:
    bus = EventBus()
    web_only = bus.subscribe(app="web")
    scaling_only = bus.subscribe(categories=["scaling", "error"])
    bus.publish(event(1, app="web"))
    bus.publish(event(2, app="api", category="scaling"))
    bus.publish(event(3, app=None, category="error"))
    web_only.close()
    scaling_only.close()
    assert [e.id async for e in web_only] == [1]
    assert [e.id async for e in scaling_only] == [2, 3]


async def test_close_ends_iteration_and_unsubscribes() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    waiter = asyncio.create_task(anext(subscription, None))
    await asyncio.sleep(0)
    assert bus.subscriber_count == 1
    subscription.close()
    assert await asyncio.wait_for(waiter, timeout=10) is None
    assert bus.subscriber_count == 0
    bus.publish(event(1))  # nobody listening: fine
    async with bus.subscribe():
        assert bus.subscriber_count == 1
    assert bus.subscriber_count == 0


async def test_publish_from_another_thread_reaches_the_loop() -> None:
    bus = EventBus()
    async with bus.subscribe() as subscription:
        thread = threading.Thread(target=lambda: [bus.publish(event(n)) for n in range(3)])
        thread.start()
        thread.join()
        got = [await asyncio.wait_for(anext(subscription), timeout=10) for _ in range(3)]
    assert [e.id for e in got] == [0, 1, 2]


async def test_a_broken_subscriber_does_not_stop_the_others() -> None:
    bus = EventBus()
    broken = bus.subscribe()
    healthy = bus.subscribe()

    def explode(_event: Event) -> None:
        raise RuntimeError("boom")

    broken.offer = explode  # type: ignore[method-assign]
    bus.publish(event(1))
    healthy.close()
    assert [e.id async for e in healthy] == [1]
