"""A node that does not hold the lease refuses writes with 503 + X-Current-Leader and still reads."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import demo_app

WRITES = [
    ("POST", "/apps/register", "doc"),
    ("POST", "/apps/{n}/up", None),
    ("POST", "/apps/{n}/down", None),
    ("DELETE", "/apps/{n}", None),
    ("POST", "/apps/{n}/scale", {"replicas": 2}),
    ("POST", "/apps/{n}/policy", {"policy": {"maxReplicas": 3}}),
    ("POST", "/apps/{n}/simulateMetrics", {"rps": 1}),
    ("POST", "/api/v1/apps", "doc"),
    ("DELETE", "/api/v1/apps/{n}", None),
    ("POST", "/api/v1/apps/{n}/up", None),
    ("POST", "/api/v1/apps/{n}/down", None),
    ("POST", "/api/v1/apps/{n}/restart", None),
    ("POST", "/api/v1/apps/{n}/scale", {"replicas": 2}),
    ("PUT", "/api/v1/apps/{n}/scaling", {"mode": "auto"}),
    ("DELETE", "/api/v1/apps/{n}/instances", None),
    ("DELETE", "/api/v1/cluster/leadership", None),
    ("PUT", "/api/v1/secrets/{n}", {"password": "abcdef"}),
    ("DELETE", "/api/v1/secrets/{n}", None),
    ("POST", "/api/v1/nodes/{n}/drain", None),
    ("POST", "/api/v1/nodes/{n}/activate", None),
]


async def test_follower_refuses_every_write_and_names_the_leader(
    api: TestClient, api_engine: Engine, follower: Engine
) -> None:
    name = unique_name("fol")
    assert (await api.post("/apps/register", json=demo_app(name))).status == 200
    client = TestClient(TestServer(create_app(follower, follower.node_id)))
    await client.start_server()
    try:
        assert not follower.cluster.is_leader()
        for method, path, body in WRITES:
            payload = demo_app(name) if body == "doc" else body
            response = await client.request(method, path.format(n=name), json=payload)
            assert response.status == 503, (method, path, await response.text())
            assert response.headers["X-Current-Leader"] == api_engine.node_id
            assert await response.json() == {"detail": f"Not the leader. Leader is: {api_engine.node_id}"}
        # Reads still work on a follower, from the shared store.
        apps = await (await client.get("/apps")).json()
        assert name in [a["name"] for a in apps["apps"]]
        health = await (await client.get("/health")).json()
        assert health["is_leader"] is False
        leader = await (await client.get("/cluster/leader")).json()
        assert leader["leader_id"] == api_engine.node_id
    finally:
        await client.close()
