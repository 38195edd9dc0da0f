"""A clean handover of the shared three-daemon cluster, seen by a client of the controller LB.

SIGTERM of the leader: the client keeps writing through the controller LB and a write is accepted by
another node, even while a log follow the old leader still serves keeps that process alive; the old
leader released its term (it did not run out), the next term went to a live node, and at no time did
two nodes say they lead. How fast is measured by bench/handover.py.
"""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from core.store import Store
from testkit.daemon_cluster import Answer, DaemonCluster, call
from tests.chaos.conftest import SHARED_TTL, restore
from tests.conftest import unique_name
from tests.integration.harness import demo_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

# A liveness bound for the loop below, not a speed claim: even an expiry would be over by then.
GIVE_UP = SHARED_TTL * 4 + 10


async def _scale(lb: str, app: str, replicas: int) -> Answer:
    return await call(f"{lb}/api/v1/apps/{app}/scale", "POST", {"replicas": replicas}, timeout=10)


async def test_sigterm_of_the_leader_hands_writes_to_another_node_through_the_lb(
    shared_cluster: DaemonCluster,
) -> None:
    cluster = shared_cluster
    await restore(cluster)
    old = await cluster.wait_leader()
    lb = f"http://{cluster.controller_listen}"
    app = unique_name("handover")
    cluster.apps.add(app)  # registered only (never up): scaling it is a store write, no container
    answer = await call(f"{lb}/api/v1/apps", "POST", demo_app(app))
    assert answer.status in (200, 201), answer
    assert (await _scale(lb, app, 1)).status == 200
    store = await asyncio.to_thread(Store.open, cluster.database_url, upgrade=False)
    try:
        (before,) = await asyncio.to_thread(store.leases.history, 1)
        assert before.leader_id == old.node_id

        split_brain: list[list[str]] = []

        async def watch_leaders() -> None:
            while True:
                found = await cluster.leaders()
                if len(found) > 1:
                    split_brain.append([n.node_id for n in found])
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch_leaders())
        # A client following logs on the leader itself: a request in flight the process waits for.
        follow_session = aiohttp.ClientSession()
        follow = await follow_session.get(
            f"{old.url}/api/v1/apps/{app}/logs?follow=true", timeout=aiohttp.ClientTimeout(total=120)
        )
        assert follow.status == 200
        old.send(signal.SIGTERM)
        started = time.monotonic()
        replicas, accepted, old_alive = 1, None, False
        while time.monotonic() - started < GIVE_UP:
            replicas = 3 - replicas
            answer = await _scale(lb, app, replicas)
            by = answer.headers.get("X-Orchestry-Node", "").split(",")[-1].strip()
            if answer.status == 200 and by != f"127.0.0.1:{old.port}":
                accepted = by
                old_alive = old.alive
                break
            # Meanwhile nobody takes it: followers refuse (503) and the stopping node's socket closes,
            # which nginx answers 502 when it was the last node it tried.
            assert answer.status in (200, 502, 503), answer
            await asyncio.sleep(0.01)
        watcher.cancel()
        assert accepted is not None, f"no write accepted by another node within {GIVE_UP} s"
        assert old_alive, "the lease moved only once the old leader had exited (its log follow held it)"
        follow.close()
        await follow_session.close()
        assert await asyncio.to_thread(old.process.wait, 90) == 0
        assert split_brain == []

        released, taken = (await asyncio.to_thread(store.leases.history, 2))[::-1]
        assert released.term == before.term and released.leader_id == old.node_id
        assert released.released_at is not None, "the old leader gave its term up on SIGTERM"
        assert taken.term == before.term + 1 and taken.leader_id != old.node_id
        assert taken.acquired_at >= released.released_at
        new = next(n for n in cluster.nodes if n.node_id == taken.leader_id)
        assert accepted == f"127.0.0.1:{new.port}"
        status = await call(f"{lb}/api/v1/apps/{app}", timeout=5)
        assert status.status == 200 and status.body["desired_replicas"] == replicas, status
    finally:
        await asyncio.to_thread(store.close)
        await restore(cluster)
