"""``Engine.stop(stop_apps=True)`` right after this node stepped down ("quit and stop every app" within
the ~2 s a node that released its lease sits out the next election).

Alone, the node takes the lease back and stops the apps as a leader does: the user's explicit stop wins
over the sit-out. With a peer holding the lease, the apps are the peer's to run: nothing of theirs is
stopped, and the stop says so, naming the leader. Both stores: taking the lease back is a store write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from core.engine import Engine
from core.lb.nginx import running_master
from core.store import Store
from tests.conftest import unique_name
from tests.integration.harness import (
    demo_app,
    docker,
    engine_settings,
    free_port,
    get_text,
    lb,
    ready_is,
    wait_for,
)


async def _containers(name: str) -> list[str]:
    """Every container of the app, running or not."""
    return (await docker("ps", "-aq", "--filter", f"label=orchestry.app={name}")).split()


async def _stored_status(database_url: str, name: str) -> str | None:
    store = await asyncio.to_thread(Store.open, database_url)
    try:
        record = await asyncio.to_thread(store.apps.get, name)
    finally:
        await asyncio.to_thread(store.close)
    return record.status if record is not None else None


async def _clean_up(names: list[str], prefix: Path) -> None:
    """For a failed test: the containers and nginx its engines left."""
    for name in names:
        ids = await _containers(name)
        if ids:
            await docker("rm", "-f", *ids)
    pid = running_master(prefix)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)


async def _start_leading_with(engine: Engine, name: str) -> None:
    """Starts ``engine`` (no other node runs yet), waits until it leads, then ups ``name`` (one
    replica, ready): where both tests stand before the node steps down."""
    await engine.start()
    await wait_for(engine.cluster.is_leader, timeout=20, what=f"{engine.settings.node_id} to lead")
    await engine.register(demo_app(name))
    await engine.up(name)
    await wait_for(lambda: ready_is(engine, name, 1), timeout=40, what=f"{name} ready")


async def test_a_lone_node_that_stepped_down_stops_its_apps(tmp_path: Path, database_url: str) -> None:
    """Console `L` then `Q`: the apps' containers stayed up and the store still said running, while
    nginx was stopped, so the apps answered nothing yet were not stopped."""
    engine = Engine(engine_settings(tmp_path / "state", database_url))
    prefix = engine.settings.state_dir / "nginx"
    name = unique_name("down")
    try:
        await _start_leading_with(engine, name)
        await engine.release_leadership()
        assert not engine.is_leader()
        # What a refusal says until the lease is taken again: nobody leads (not "this node leads").
        assert engine.leadership().leader_id is None
        assert engine.not_leader().leader_id is None
        note = await engine.stop(stop_apps=True)
        assert await _containers(name) == []
        assert await _stored_status(database_url, name) == "stopped"
        assert running_master(prefix) is None
        assert note == "", "the stop did all it was asked: nothing to say"
    finally:
        await engine.stop(stop_apps=True)
        await _clean_up([name], prefix)


async def test_stop_leaves_running_the_apps_a_peer_now_leads(tmp_path: Path, database_url: str) -> None:
    """The apps belong to whoever holds the lease: the node that stepped down stops none of them, keeps
    the peer's nginx, and says who leads them instead of quitting as if they had stopped."""
    first_settings = engine_settings(tmp_path / "state", database_url)
    second_settings = first_settings.model_copy(update={"port": free_port(), "node_id": "second-node"})
    prefix = first_settings.state_dir / "nginx"
    first, second = Engine(first_settings), Engine(second_settings)
    name = unique_name("peer")
    try:
        await _start_leading_with(first, name)
        await second.start()
        await first.release_leadership()
        await wait_for(second.cluster.is_leader, timeout=20, what="the peer to take the lease")
        containers = await _containers(name)
        note = await first.stop(stop_apps=True)
        assert "second-node" in note and "left running" in note, note
        assert await _containers(name) == containers
        assert await _stored_status(database_url, name) not in (None, "stopped")
        status, _body = await get_text(lb(second, name))
        assert status == 200, "the peer's app no longer answers through nginx"
        await second.stop(stop_apps=True)
        assert await _containers(name) == []
        assert running_master(prefix) is None
    finally:
        await first.stop(stop_apps=True)
        await second.stop(stop_apps=True)
        await _clean_up([name], prefix)
