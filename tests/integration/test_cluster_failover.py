"""Two engines on one PostgreSQL database: only the lease holder acts; a released lease fails over."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine import Engine
from core.errors import NotLeader
from tests.conftest import unique_name
from tests.integration.harness import (
    demo_app,
    engine_settings,
    free_port,
    get_text,
    ready_is,
    wait_for,
)


async def test_follower_refuses_writes_and_takes_over_after_release(
    tmp_path: Path, pg_database_url: str
) -> None:
    leader = Engine(engine_settings(tmp_path / "a", pg_database_url, lease_ttl=4))
    follower = Engine(engine_settings(tmp_path / "b", pg_database_url, lease_ttl=4))
    await leader.start()
    await follower.start()
    name = unique_name("ha")
    try:
        assert leader.cluster.is_leader() and not follower.cluster.is_leader()
        with pytest.raises(NotLeader) as err:
            await follower.register(demo_app(name))
        assert leader.node_id in str(err.value)

        await leader.register(demo_app(name))
        await leader.up(name)
        await leader.scale(name, 2)
        await wait_for(lambda: ready_is(leader, name, 2), what="2 ready on the leader")
        before = sorted(c.id for c in await leader.runtime.list_managed(name))
        # The follower shows what the leader saved, read-only.
        view = await follower.get_app(name)
        assert view.desired_replicas == 2

        status = await follower.cluster_status()
        assert status["leader_id"] == leader.node_id and status["is_leader"] is False

        await leader.stop(stop_nginx=True)  # releases the lease; containers keep running
        await wait_for(follower.cluster.is_leader, timeout=15, what="the follower to take over")
        await wait_for(lambda: ready_is(follower, name, 2), timeout=20, what="adopted replicas ready")
        after = sorted(c.id for c in await follower.runtime.list_managed(name))
        assert after == before, "the new leader adopts the running replicas and creates none"
        kinds = [e.kind for e in await follower.events(category="cluster")]
        assert "became_leader" in kinds
    finally:
        await follower.stop(stop_apps=True)
        await leader.stop(stop_nginx=True)  # no-op when it already stopped


async def test_second_engine_on_the_same_state_dir_follows_and_leaves_serving_alone(tmp_path: Path) -> None:
    first_settings = engine_settings(tmp_path / "state")
    second_settings = first_settings.model_copy(update={"port": free_port(), "node_id": "second-console"})
    first = Engine(first_settings)
    await first.start()
    second: Engine | None = None
    name = unique_name("twin")
    try:
        await first.register(demo_app(name))
        await first.up(name)
        await wait_for(lambda: ready_is(first, name, 1), what="ready")
        second = Engine(second_settings)
        await second.start()
        assert not second.cluster.is_leader() and second.cluster.leader_id == first.node_id
        with pytest.raises(NotLeader):
            await second.scale(name, 3)
        await second.stop()
        second = None
        status, body = await get_text(f"http://{first_settings.lb_listen}/{name}/")
        assert status == 200 and name in body
        assert len(await first.runtime.list_managed(name)) == 1
    finally:
        if second is not None:
            await second.stop()
        await first.stop(stop_apps=True)


async def test_a_restart_under_the_same_node_id_says_its_earlier_run_holds_the_lease(
    tmp_path: Path, database_url: str
) -> None:
    settings = engine_settings(tmp_path / "state", database_url, node_id="node-fixed", lease_ttl=30)
    earlier = Engine(settings)
    await earlier.start()
    await earlier.stop(release_lease=False)  # as if killed: the lease stays until it expires
    restarted = Engine(settings.model_copy(update={"port": free_port()}))
    await restarted.start()
    try:
        await wait_for(lambda: restarted.cluster.lease is not None, what="the lease read")
        assert not restarted.cluster.is_leader()
        with pytest.raises(NotLeader) as refused:
            await restarted.register(demo_app(unique_name("same")))
        message = str(refused.value)
        assert "an earlier run of this node (node-fixed, term 1) still holds the lease" in message
        assert "expires in" in message and "then this node takes over" in message
        assert refused.value.leader_id == "node-fixed"
    finally:
        await restarted.stop()
