"""GET /api/v1/nodes and node drain/activate on a single Docker host (the Swarm side: tests/swarm)."""

from __future__ import annotations

import os
import socket

from aiohttp.test_utils import TestClient

from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import demo_app, wait_for


async def test_a_single_docker_host_is_one_ready_node_with_its_replicas(
    api: TestClient, api_engine: Engine
) -> None:
    name = unique_name("nodes")
    assert (await api.post("/api/v1/apps", json=demo_app(name))).status == 201
    assert (await api.post(f"/api/v1/apps/{name}/up")).status == 200
    await wait_for(
        lambda: any(r.ready for r in api_engine.reconciler.state(name).replicas.values()),
        timeout=30,
        what="a ready replica",
    )
    response = await api.get("/api/v1/nodes")
    assert response.status == 200
    (node,) = (await response.json())["nodes"]
    assert node["hostname"] == socket.gethostname()
    assert (node["role"], node["state"], node["availability"]) == ("standalone", "ready", "active")
    assert node["tasks"] == 1
    assert node["cpu_cores"] == os.cpu_count()
    assert node["memory_bytes"] > 0
    assert node["reason"] is None
    app = await (await api.get(f"/api/v1/apps/{name}")).json()
    assert [r["node"] for r in app["replicas"]] == [socket.gethostname()]


async def test_drain_and_activate_say_a_single_host_has_no_other_node(api: TestClient) -> None:
    for action in ("drain", "activate"):
        response = await api.post(f"/api/v1/nodes/{socket.gethostname()}/{action}")
        assert response.status == 409
        assert "single Docker host has no other node" in (await response.json())["detail"]
        unknown = await api.post(f"/api/v1/nodes/no-such-node/{action}")
        assert unknown.status == 404
        assert "no node 'no-such-node'" in (await unknown.json())["detail"]
