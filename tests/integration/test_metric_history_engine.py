"""Metric history written by a real engine: it survives a restart and a change of leader, and the
series route serves it to a console that attaches after the restart."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import demo_app, engine_settings, ready_count, wait_for


async def test_history_survives_a_restart_and_a_leader_change(tmp_path: Path, database_url: str) -> None:
    first = Engine(engine_settings(tmp_path / "state", database_url))
    await first.start()
    second: Engine | None = None
    name = unique_name("hist")
    try:
        await wait_for(first.cluster.is_leader, timeout=20, what="the first node to lead")
        await first.register(demo_app(name))
        await first.up(name)
        await wait_for(lambda: ready_count(first, name), timeout=30, what="a ready replica")

        async def recorded_ready(engine: Engine, after: float) -> bool:
            samples = await engine.metric_history(name, after)
            return any(s.ready_replicas == 1 and s.desired_replicas == 1 for s in samples)

        await wait_for(lambda: recorded_ready(first, 0), timeout=20, what="a recorded period with 1 ready")
        first_term = first.cluster.term
        await first.stop()  # replicas keep running; the lease is released

        # Another node (a new node id) takes over the same store: a restart and a leader change.
        second = Engine(engine_settings(tmp_path / "state", database_url))
        restarted = time.time()
        await second.start()
        await wait_for(second.cluster.is_leader, timeout=20, what="the second node to lead")
        assert second.cluster.term > first_term

        client = TestClient(TestServer(create_app(second, second.settings.node_id)))
        await client.start_server()
        try:
            answer = await client.get(f"/api/v1/apps/{name}/series?seconds=300")
            assert answer.status == 200
            series = (await answer.json())["series"]
        finally:
            await client.close()
        # The new leader's own windows are empty, yet the chart shows the replica before the restart.
        before = [v for t, v in series["ready_replicas"] if t < restarted]
        assert before and before[-1] == 1.0, series["ready_replicas"]

        await wait_for(
            lambda: recorded_ready(second, restarted), timeout=30, what="the new leader to record history"
        )
        # Both leaders' periods are in the one history, oldest first.
        stored = await second.metric_history(name, 0)
        assert [s.at for s in stored] == sorted(s.at for s in stored)
        assert stored[0].at < restarted < stored[-1].at
    finally:
        if second is not None:
            await second.stop(stop_apps=True)
        else:
            await first.stop(stop_apps=True)


async def test_only_the_leader_records_and_its_successor_carries_on(
    tmp_path: Path, pg_database_url: str
) -> None:
    """Two live engines on PostgreSQL: one record per period while the first leads (the follower
    writes none), and the same after the lease moves to the second; the earlier records stay."""
    leader = Engine(engine_settings(tmp_path / "a", pg_database_url, lease_ttl=4))
    follower = Engine(engine_settings(tmp_path / "b", pg_database_url, lease_ttl=4))
    await leader.start()
    await follower.start()
    name = unique_name("hha")
    try:
        assert leader.cluster.is_leader() and not follower.cluster.is_leader()
        await leader.register(demo_app(name))
        await leader.up(name)
        await wait_for(lambda: ready_count(leader, name), timeout=30, what="a ready replica")

        async def records_after(after: float, count: int) -> bool:
            return len(await follower.metric_history(name, after)) >= count

        await wait_for(lambda: records_after(0, 4), timeout=20, what="a few periods recorded")
        await leader.stop(stop_nginx=True)  # releases the lease; the replica keeps running
        handed_over = time.time()
        await wait_for(follower.cluster.is_leader, timeout=15, what="the follower to take over")
        await wait_for(lambda: records_after(handed_over, 4), timeout=30, what="the new leader to record")
        stored = await follower.metric_history(name, 0)
    finally:
        await follower.stop(stop_apps=True)
        await leader.stop(stop_nginx=True)

    period = follower.settings.scaler_interval
    times = [s.at for s in stored]
    assert times[0] < handed_over < times[-1]
    # One writer at a time: while each engine leads, no two records of the same app closer than half a
    # scaling period (a follower writing too would interleave its own).  The handover itself may be
    # quicker than a period: the new leader records its first tick's decision whenever that tick comes.
    for writer_times in ([at for at in times if at < handed_over], [at for at in times if at > handed_over]):
        gaps = [later - earlier for earlier, later in pairwise(writer_times)]
        assert len(gaps) >= 2 and min(gaps) > period / 2, (gaps, times, handed_over)
    assert all(s.desired_replicas == 1 for s in stored)
