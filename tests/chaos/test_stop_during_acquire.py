"""A node stopped (SIGTERM) while its election step is taking a term must still hand the term over.

The engine's stop cancels the election's loop, then releases the lease. Cancelling the loop does not
stop the lease's thread: a try_acquire under way commits a new term all the same, and the node never
learns that it won it. Seen on a three-daemon trial: node1, woken from SIGSTOP, took term 9 at
04:38:06.716 and was stopped at 06.721; its release found "not leader" and did nothing, so the cluster
had no leader until term 9 ran out 5 s later (TTL) instead of a peer taking over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from core.cluster import LeaseElection
from core.store import Store
from testkit.harness import wait_for

TTL = 30.0  # far longer than the test: a peer that leads did not wait for the lease to run out


async def test_a_term_won_while_the_node_stops_is_released_for_a_peer(
    two_stores: tuple[Store, Store],
) -> None:
    stopping, peer_store = two_stores
    entered, gate, committed = threading.Event(), threading.Event(), threading.Event()
    acquire = stopping.leases.try_acquire

    def slow_acquire(*args: Any) -> Any:
        entered.set()
        gate.wait(30)
        try:
            return acquire(*args)
        finally:
            committed.set()

    stopping.leases.try_acquire = slow_acquire  # type: ignore[method-assign]

    async def on_change(*_: Any) -> None:
        pass

    node = LeaseElection(stopping, "node-stopping", "http://node-stopping", ttl=TTL, on_change=on_change)
    peer = LeaseElection(peer_store, "node-peer", "http://node-peer", ttl=TTL, on_change=on_change)
    loop = asyncio.create_task(node.run())
    await wait_for(entered.is_set, timeout=30, interval=0.01, what="the step to be taking a term")
    loop.cancel()  # what the engine's stop does to its background tasks, first
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    gate.set()
    await wait_for(committed.is_set, timeout=30, interval=0.01, what="the term to be committed")
    assert peer_store.leases.current().leader_id == "node-stopping"  # won, and the node does not know

    await node.release()  # then the stop releases the lease

    await peer.step()
    assert peer.is_leader(), "the peer took over at once: the stopping node's term was released"
