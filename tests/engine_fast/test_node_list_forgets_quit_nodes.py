"""The node list (console cluster pane, GET /api/v1/cluster/overview) drops a controller that quit
cleanly: node ids carry the pid, so each console run used to add a row shown "down" for good."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from core.store import Store
from tests.support.world import memory_world


def node_ids(database_url: str) -> list[str]:
    store = Store.open(database_url)
    try:
        return [n.node_id for n in store.nodes.list()]
    finally:
        store.close()


async def test_a_clean_quit_leaves_the_node_list(tmp_path: Path, database_url: str) -> None:
    async with memory_world(tmp_path / "first", database_url=database_url) as first:
        gone = first.engine.node_id
        assert gone in await asyncio.to_thread(node_ids, database_url)
    async with memory_world(tmp_path / "second", database_url=database_url) as second:
        overview = await second.engine.cluster_overview()
        assert [n["node_id"] for n in overview["nodes"]] == [second.engine.node_id]


def age(database_url: str, node_id: str, seconds: float) -> None:
    store = Store.open(database_url)
    try:
        with store.database.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE cluster_nodes SET last_heartbeat = last_heartbeat - :s WHERE node_id = :n"),
                {"s": seconds, "n": node_id},
            )
    finally:
        store.close()


async def test_a_killed_controller_is_shown_down_then_forgotten(tmp_path: Path, database_url: str) -> None:
    async with memory_world(tmp_path / "first", database_url=database_url) as first:
        killed = first.engine.node_id
        await first.engine.stop(release_lease=False)  # as if killed: no clean quit
    await asyncio.to_thread(age, database_url, killed, 60.0)  # silent a minute: shown down
    async with memory_world(tmp_path / "second", database_url=database_url) as second:
        rows = {n["node_id"]: n for n in (await second.engine.cluster_overview())["nodes"]}
        assert killed in rows, rows
    await asyncio.to_thread(age, database_url, killed, 3600.0)  # silent past the default hour
    async with memory_world(tmp_path / "third", database_url=database_url) as third:
        overview = await third.engine.cluster_overview()
        assert [n["node_id"] for n in overview["nodes"]] == [third.engine.node_id]


async def test_the_retention_is_a_setting(tmp_path: Path, database_url: str) -> None:
    """ORCHESTRY_NODE_RETENTION=5m: a controller silent ten minutes is gone, not shown down an hour."""
    async with memory_world(tmp_path / "first", database_url=database_url) as first:
        killed = first.engine.node_id
        await first.engine.stop(release_lease=False)
    await asyncio.to_thread(age, database_url, killed, 240.0)  # within five minutes: still shown down
    async with memory_world(tmp_path / "second", database_url=database_url, node_retention="5m") as second:
        assert killed in [n["node_id"] for n in (await second.engine.cluster_overview())["nodes"]]
    await asyncio.to_thread(age, database_url, killed, 360.0)  # ten minutes
    async with memory_world(tmp_path / "third", database_url=database_url, node_retention="5m") as third:
        overview = await third.engine.cluster_overview()
        assert [n["node_id"] for n in overview["nodes"]] == [third.engine.node_id]
