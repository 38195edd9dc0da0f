"""Nodes through the whole Engine on the Swarm lab: the nodes list and NODE of each replica, node events,
and `orchestry node drain` under traffic: zero failed requests, the replicas end on other nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from core.api.app import create_app
from core.engine import Engine
from tests.cli.conftest import ORCHESTRY
from tests.integration.harness import TrafficClient, lb, wait_for
from tests.swarm.engine_support import app_name, swarm_app, swarm_engine


async def _routed(engine: Engine, name: str, count: int, avoid: str | None = None) -> bool:
    view = await engine.get_app(name)
    ready = [r for r in view.replicas if r.ready]
    return len(ready) == count == len(view.replicas) and all(r.host != avoid for r in ready)


async def _event(engine: Engine, kind: str, hostname: str) -> bool:
    events = await engine.events(category="cluster")
    return any(e.kind == kind and e.details.get("hostname") == hostname for e in events)


async def test_nodes_list_replica_nodes_and_node_down_up_events(swarm_lab: Any, tmp_path: Path) -> None:
    name = app_name("nd")
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(swarm_app(swarm_lab, name))
        await engine.up(name)
        await engine.scale(name, 3)
        await wait_for(lambda: _routed(engine, name, 3), timeout=90, what="3 replicas routed")

        nodes = await engine.nodes()
        assert {n.hostname for n in nodes} == {lab.netns for lab in swarm_lab.nodes}
        assert sum(n.tasks for n in nodes) == 3
        by_address = {n.address: n.hostname for n in nodes}
        view = await engine.get_app(name)
        assert [r.node for r in view.replicas] == [by_address[r.host] for r in view.replicas]

        worker = swarm_lab.workers[-1]
        swarm_lab.cut_link(worker)
        try:
            await wait_for(lambda: _event(engine, "node_down", worker.netns), timeout=60, what="node_down")
        finally:
            swarm_lab.restore_link(worker)
        await wait_for(lambda: _event(engine, "node_up", worker.netns), timeout=60, what="node_up")


async def test_node_drain_under_traffic_moves_every_replica_without_a_failed_request(
    swarm_lab: Any, tmp_path: Path
) -> None:
    name = app_name("dr")
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(swarm_app(swarm_lab, name))
        await engine.up(name)
        await engine.scale(name, 6)
        await wait_for(lambda: _routed(engine, name, 6), timeout=90, what="6 replicas routed")
        view = await engine.get_app(name)
        worker = max(swarm_lab.workers, key=lambda n: sum(r.host == n.address for r in view.replicas))
        moving = sum(r.host == worker.address for r in view.replicas)
        assert moving >= 1, "no replica on a worker to drain"

        server = TestServer(create_app(engine, engine.node_id))
        await server.start_server()
        try:
            async with TrafficClient(lb(engine, name), label="swarm node drain") as traffic:
                await asyncio.sleep(1.0)
                drain = await asyncio.create_subprocess_exec(
                    ORCHESTRY, "--url", str(server.make_url("")).rstrip("/"), "node", "drain", worker.netns,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, err = await asyncio.wait_for(drain.communicate(), timeout=240)
                await asyncio.sleep(1.0)
            assert drain.returncode == 0, err.decode()
            assert f"node {worker.netns} drained in" in out.decode()
            traffic.assert_none_failed(at_least=50)

            await wait_for(
                lambda: _routed(engine, name, 6, avoid=worker.address), timeout=30, what="6 elsewhere"
            )
            node = next(n for n in await engine.nodes() if n.id == worker.swarm_node_id)
            assert (node.availability, node.tasks) == ("drain", 0)
            assert await _event(engine, "node_drained", worker.netns)
        finally:
            await engine.activate_node(worker.swarm_node_id)
            await server.close()
        print(f"\nnode drain of {moving} replica(s): {traffic.figures()}")


async def test_a_drain_cut_short_by_a_controller_restart_is_finished_by_the_next_controller(
    swarm_lab: Any, tmp_path: Path
) -> None:
    name = app_name("rs")
    state = tmp_path / "state"
    async with swarm_engine(swarm_lab, state, stop_apps=False) as engine:
        await engine.register(swarm_app(swarm_lab, name))
        await engine.up(name)
        await engine.scale(name, 6)
        await wait_for(lambda: _routed(engine, name, 6), timeout=90, what="6 replicas routed")
        view = await engine.get_app(name)
        worker = max(swarm_lab.workers, key=lambda n: sum(r.host == n.address for r in view.replicas))
        started = await engine.drain_node(worker.netns)
        assert started.moving >= 1 and started.node.availability == "draining"
    # The controller stopped before moving anything: the intent stays on the node itself.
    spec = swarm_lab.docker().nodes.get(worker.swarm_node_id).attrs["Spec"]
    assert spec["Availability"] == "pause" and "orchestry.draining" in spec["Labels"]

    async with swarm_engine(swarm_lab, state) as engine:
        # Moving the replicas is Swarm placing, starting and the engine routing new ones, then stopping
        # the old: a wait for Swarm, given as long as the drain under traffic above gets.
        try:
            await wait_for(
                lambda: _event(engine, "node_drained", worker.netns), timeout=240, what="node_drained"
            )
        except AssertionError as exc:
            events = [f"{e.kind}: {e.message}" for e in await engine.events(category="cluster")]
            raise AssertionError(f"{exc}; cluster events: {events}") from None
        await wait_for(lambda: _routed(engine, name, 6, avoid=worker.address), timeout=30, what="6 elsewhere")
        node = next(n for n in await engine.nodes() if n.id == worker.swarm_node_id)
        assert (node.availability, node.tasks) == ("drain", 0)
        messages = [e.message for e in await engine.events(category="cluster") if e.kind == "node_draining"]
        assert any(m.startswith(f"resuming the drain of node {worker.netns}") for m in messages), messages
