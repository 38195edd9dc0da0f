"""The node watch's pace: an idle leader wakes once per poll of the nodes, and a drain begun between
polls is followed at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from core.nodes import NodeService
from core.runtime.base import NODE_ACTIVE, NodeInfo

NODE = NodeInfo(
    id="n1",
    hostname="host-1",
    address="10.0.0.1",
    role="worker",
    state="ready",
    availability=NODE_ACTIVE,
    tasks=0,
)


class Nodes:
    """A runtime with one node: counts its polls and keeps the availability it is given."""

    def __init__(self, enough: int) -> None:
        self.node = NODE
        self.polls = 0
        self.enough = enough
        self.polled_enough = asyncio.Event()  # set at the ``enough``-th poll

    async def nodes(self) -> list[NodeInfo]:
        self.polls += 1
        if self.polls >= self.enough:
            self.polled_enough.set()
        return [self.node]

    async def set_node_availability(self, node_id: str, availability: str) -> NodeInfo:
        self.node = replace(self.node, availability=availability)
        return self.node


class Leader:
    """``leads()``, counting how often the watch asks: once each time it wakes."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return True


def watch_service(
    runtime: Nodes, leads: Leader, kinds: list[str], drained: asyncio.Event, watch_seconds: float
) -> NodeService:
    async def emit(category: str, kind: str, message: str, **extra: Any) -> None:
        kinds.append(kind)
        if kind == "node_drained":
            drained.set()

    reconciler = SimpleNamespace(apps={}, wake=lambda name: None)  # no replicas: a drain ends at once
    return NodeService(runtime, reconciler, None, emit, leads, watch_seconds=watch_seconds)  # type: ignore[arg-type]


async def test_an_idle_leader_wakes_only_to_poll_the_nodes() -> None:
    runtime, leads, kinds = Nodes(enough=8), Leader(), []
    service = watch_service(runtime, leads, kinds, asyncio.Event(), watch_seconds=0.05)
    watch = asyncio.create_task(service.watch())
    try:
        await runtime.polled_enough.wait()
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    # Each wake asks whether this node leads; it woke three times per poll before (two for nothing).
    assert leads.asked <= runtime.polls + 2
    assert kinds == []  # nothing changed: no node event


async def test_a_drain_begun_between_polls_is_followed_at_once() -> None:
    runtime, leads, kinds, drained = Nodes(enough=1), Leader(), [], asyncio.Event()
    service = watch_service(runtime, leads, kinds, drained, watch_seconds=3600.0)  # next poll in an hour
    watch = asyncio.create_task(service.watch())
    try:
        await runtime.polled_enough.wait()
        await service.drain("n1")
        # Hang guard only: the watch finishes the drain in the turns right after it began.
        async with asyncio.timeout(30):
            await drained.wait()
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    assert kinds == ["node_draining", "node_drained"]
    assert runtime.node.availability == "drain"
