"""``Engine.stop(stop_apps=True)`` ends the nginx this engine started whatever its leadership is at that
moment, and leaves alone the nginx a peer that leads now drives (nodes on one host share the prefix)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from core.engine import Engine
from core.lb.nginx import _is_master_of, running_master
from tests.conftest import unique_name
from tests.integration.harness import demo_app, engine_settings, free_port, get_text, wait_for


def _end_left_master(prefix: Path) -> None:
    """Clean-up for a failed test: the master its engine left serving."""
    pid = running_master(prefix)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)


async def _refuses_connections(lb_listen: str) -> None:
    host, port = lb_listen.rsplit(":", 1)
    with pytest.raises(OSError):
        await asyncio.open_connection(host, int(port))


async def test_a_node_that_released_its_lease_still_stops_its_nginx(tmp_path: Path) -> None:
    """The API fuzzer's last operation releases the lease; the test then stops the engine with stop_apps
    within the ~2 s a node that stepped down sits out, so it stopped as a follower and left its nginx
    serving the registered app's routes until the test session ended."""
    engine = Engine(engine_settings(tmp_path / "state"))
    prefix = engine.settings.state_dir / "nginx"
    await engine.start()
    try:
        await wait_for(engine.cluster.is_leader, timeout=20, what="the lone node to lead")
        await engine.register(demo_app(unique_name("rel")))
        master = running_master(prefix)
        assert master is not None
        await engine.release_leadership()  # DELETE /api/v1/cluster/leadership
        assert not engine.is_leader()
        await engine.stop(stop_apps=True)
        assert running_master(prefix) is None and not _is_master_of(master, prefix / "nginx.conf")
        assert not (prefix / "nginx.pid").exists()
        await _refuses_connections(engine.settings.lb_listen)
    finally:
        await engine.stop(stop_apps=True)  # a no-op once stopped
        _end_left_master(prefix)


async def test_stop_leaves_the_nginx_a_peer_now_leads_with(tmp_path: Path) -> None:
    """Two nodes on one state dir: the leader steps down, its peer takes the lease and adopts the same
    master; stopping the first node with stop_apps must not take nginx from under the new leader."""
    first_settings = engine_settings(tmp_path / "state")
    second_settings = first_settings.model_copy(update={"port": free_port(), "node_id": "second-node"})
    prefix = first_settings.state_dir / "nginx"
    first, second = Engine(first_settings), Engine(second_settings)
    await first.start()
    try:
        await wait_for(first.cluster.is_leader, timeout=20, what="the first node to lead")
        name = unique_name("peer")
        await first.register(demo_app(name))
        await second.start()
        master = running_master(prefix)
        await first.release_leadership()
        await wait_for(second.cluster.is_leader, timeout=20, what="the peer to take the lease")
        await first.stop(stop_apps=True)
        assert running_master(prefix) == master, "the new leader's nginx was stopped"
        status, _body = await get_text(f"http://{first_settings.lb_listen}/{name}/")
        assert status != 0, "nothing answers on the load-balancer port"
        await second.stop(stop_apps=True)
        assert running_master(prefix) is None
        await _refuses_connections(first_settings.lb_listen)
    finally:
        await first.stop(stop_apps=True)
        await second.stop(stop_apps=True)
        _end_left_master(prefix)
