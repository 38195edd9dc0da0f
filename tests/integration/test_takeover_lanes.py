"""A takeover completes while asyncio's default thread pool is full, and never holds the renewals back.

When a node wins the lease, the election's step waits for the takeover (say so in an event, adopt or
start nginx, start the app workers) before it renews again. Each of those ran blocking calls on the
default pool (min(32, CPUs + 4) threads), shared with every other blocking call of the node: with the
pool full (Docker-free file work, store calls, any to_thread user) the takeover waited for all of them,
and the new leader neither renewed nor served. The takeover's calls have threads of their own now (the
lease's, the store's, nginx's), so here it completes while every default thread is held. On SQLite and
PostgreSQL, with a real nginx (the in-memory runtime stands in for Docker).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from core.cluster import LEADER, LeaseElection
from core.engine import Engine
from core.runtime.memory import MemoryPorts, MemoryRuntime
from core.store import Store
from testkit.harness import engine_settings, wait_for
from tests.support.default_pool import every_default_thread_held

# The failure this guards against is a takeover that waits until the test lets the pool go: it never
# completes while the pool is held. This only bounds how long the test waits to say so.
TAKEOVER_TIMEOUT = 30.0


@pytest.fixture
async def engine(
    tmp_path: Path, database_url: str, default_pool: ThreadPoolExecutor
) -> AsyncIterator[Engine]:
    """A node with a real nginx, stopped (nginx too) before ``default_pool`` shuts down."""
    runtime = MemoryRuntime()
    settings = engine_settings(tmp_path / "state", database_url, node_id=f"take-{uuid.uuid4().hex[:6]}")
    node = Engine(settings, runtime=runtime, probe=runtime.probe, ports=MemoryPorts())
    await node.start()
    try:
        yield node
    finally:
        await node.stop(stop_apps=True)


async def test_a_node_takes_the_lease_and_nginx_over_while_every_default_thread_is_busy(
    engine: Engine, default_pool: ThreadPoolExecutor
) -> None:
    assert engine.is_leader()
    master = engine.nginx.status()["pid"]
    assert engine.nginx.status()["running"], f"the leader's nginx is not running: {engine.nginx.status()}"
    await engine.release_leadership()
    assert not engine.is_leader() and not engine.nginx.active

    async with every_default_thread_held(default_pool) as busy:
        # The election's own step, as its loop takes a free lease: it returns once the takeover is done.
        leads = await asyncio.wait_for(engine.cluster.reclaim(), TAKEOVER_TIMEOUT)
        assert not busy.done(), "the default pool was let go before the takeover completed"
    assert leads and engine.is_leader()
    # nginx adopted, not restarted: the master that served under the last term serves on.
    status = engine.nginx.status()
    assert status["active"] and status["running"] and status["pid"] == master, status
    kinds = [event.kind for event in await engine.events(category="cluster", limit=3)]
    assert kinds[0] == "became_leader", kinds


async def test_the_leader_renews_its_lease_while_its_takeover_is_still_under_way(store: Store) -> None:
    """The election's loop hands each state change to a task of its own: a takeover that waits (here
    until the test lets it go; for real, its event queued behind a burst of SQLite writes, or a slow
    nginx start) no longer holds the renewals back, so the new leader's lease does not lapse during
    its own takeover. Before, the loop awaited the takeover and renewed nothing until it ended."""
    renewals: list[int] = []
    renew = store.leases.renew

    def counted(term: int, node_id: str, ttl: float) -> Any:
        renewals.append(term)
        return renew(term, node_id, ttl)

    store.leases.renew = counted  # type: ignore[method-assign]
    taken_over = asyncio.Event()
    states: list[str] = []

    async def on_change(state: str, _why: str, _details: dict[str, Any]) -> None:
        states.append(state)
        if state == LEADER:
            await taken_over.wait()

    election = LeaseElection(store, "n1", "http://n1", ttl=3, on_change=on_change)
    loop = asyncio.create_task(election.run())
    try:
        await wait_for(lambda: states == [LEADER], timeout=30, interval=0.01, what="the takeover to begin")
        # Three renewals (one a second at TTL 3) while the takeover has not ended: more than the 2.4 s
        # the lease is trusted locally without one.
        await wait_for(lambda: len(renewals) >= 3, timeout=30, interval=0.05, what="renewals meanwhile")
        assert election.is_leader() and states == [LEADER]
        taken_over.set()
    finally:
        taken_over.set()
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert states == [LEADER], f"the leader stepped down on the way: {states}"
