"""Every route's success shape and error statuses that need no running replicas."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from core import __version__
from tests.conftest import unique_name
from tests.integration.harness import demo_app


async def register(api: TestClient, name: str) -> None:
    response = await api.post("/apps/register", json=demo_app(name))
    assert response.status == 200, await response.text()


async def test_health_has_the_1_0_shape(api: TestClient) -> None:  # its latency: bench/api.py
    response = await api.get("/health")
    body = await response.json()
    assert response.status == 200
    assert set(body) == {"status", "timestamp", "version", "database", "node_id", "is_leader"}
    assert body["status"] == "healthy" and body["database"] == {"status": "ok"}
    assert isinstance(body["timestamp"], float) and body["is_leader"] is True


async def test_register_list_raw_status_and_reregister(api: TestClient) -> None:
    name = unique_name("reg")
    response = await api.post("/apps/register", json=demo_app(name))
    assert await response.json() == {
        "status": "registered",
        "app": name,
        "message": "Application registered successfully",
    }
    apps = (await (await api.get("/apps")).json())["apps"]
    mine = next(a for a in apps if a["name"] == name)
    assert mine["status"] == "stopped" and mine["ready_replicas"] == 0 and mine["mode"] == "manual"
    assert isinstance(mine["created_at"], float) and mine["last_scaled_at"] is None

    raw = await (await api.get(f"/apps/{name}/raw")).json()
    assert raw["name"] == name and raw["raw"]["metadata"]["name"] == name
    assert set(raw["parsed"]) == {
        "name",
        "spec",
        "status",
        "created_at",
        "updated_at",
        "replicas",
        "last_scaled_at",
        "mode",
    }

    status = await (await api.get(f"/apps/{name}/status")).json()
    assert status == {"app": name, "status": "stopped", "replicas": status["replicas"], "ready_replicas": 0,
                      "instances": [], "mode": "manual"}  # fmt: skip

    again = await api.post("/apps/register", json=demo_app(name))
    assert again.status == 200


async def test_v1_register_conflict_and_replace(api: TestClient) -> None:
    name = unique_name("v1")
    created = await api.post("/api/v1/apps", json=demo_app(name))
    assert created.status == 201
    body = await created.json()
    assert body["created"] is True and body["app"]["name"] == name and body["app"]["replicas"] == []
    conflict = await api.post("/api/v1/apps", json=demo_app(name))
    assert conflict.status == 409
    assert name in (await conflict.json())["detail"]
    replaced = await api.post("/api/v1/apps?replace=true", json=demo_app(name))
    assert replaced.status == 200 and (await replaced.json())["created"] is False

    described = await (await api.get(f"/api/v1/apps/{name}")).json()
    assert described["status"] == "stopped" and described["image"] == "orchestry/demo:latest"
    listed = await (await api.get("/api/v1/apps")).json()
    assert name in [a["name"] for a in listed["apps"]]

    deleted = await api.delete(f"/api/v1/apps/{name}")
    assert await deleted.json() == {"status": "deleted", "app": name}
    assert (await api.get(f"/api/v1/apps/{name}")).status == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "empty"),
    ],
)
async def test_bad_bodies_are_400(api: TestClient, body: bytes, fragment: str) -> None:
    response = await api.post("/apps/register", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert fragment in (await response.json())["detail"]


async def test_invalid_spec_is_422_naming_the_field(api: TestClient) -> None:
    doc = demo_app(unique_name("bad"))
    doc["spec"]["replicaz"] = 3
    response = await api.post("/api/v1/apps", json=doc)
    assert response.status == 422
    assert "replicaz" in (await response.json())["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/apps/{n}/up", None),
        ("POST", "/apps/{n}/down", None),
        ("DELETE", "/apps/{n}", None),
        ("GET", "/apps/{n}/status", None),
        ("POST", "/apps/{n}/scale", {"replicas": 2}),
        ("POST", "/apps/{n}/policy", {"policy": {"maxReplicas": 3}}),
        ("GET", "/apps/{n}/raw", None),
        ("GET", "/apps/{n}/logs", None),
        ("GET", "/apps/{n}/metrics", None),
        ("POST", "/apps/{n}/simulateMetrics", {"rps": 10}),
        ("GET", "/api/v1/apps/{n}", None),
        ("DELETE", "/api/v1/apps/{n}", None),
        ("POST", "/api/v1/apps/{n}/up", None),
        ("POST", "/api/v1/apps/{n}/down", None),
        ("POST", "/api/v1/apps/{n}/restart", None),
        ("POST", "/api/v1/apps/{n}/scale", {"replicas": 2}),
        ("PUT", "/api/v1/apps/{n}/scaling", {"mode": "auto"}),
        ("DELETE", "/api/v1/apps/{n}/instances", None),
        ("GET", "/api/v1/apps/{n}/events", None),
        ("GET", "/api/v1/apps/{n}/logs", None),
        ("GET", "/api/v1/apps/{n}/logs?follow=true", None),
        ("GET", "/api/v1/apps/{n}/metrics", None),
    ],
)
async def test_unknown_app_is_404_naming_it(api: TestClient, method: str, path: str, body: object) -> None:
    name = unique_name("nope")
    response = await api.request(method, path.format(n=name), json=body)
    assert response.status == 404, await response.text()
    assert name in (await response.json())["detail"]


async def test_wrong_types_are_400_naming_the_field(api: TestClient) -> None:
    name = unique_name("typ")
    await register(api, name)
    for path, body, field in [
        (f"/apps/{name}/scale", {"replicas": "two"}, "replicas"),
        (f"/apps/{name}/scale", {"replicas": 101}, "replicas"),
        (f"/api/v1/apps/{name}/scale", {}, "replicas"),
        (f"/apps/{name}/policy", {"policy": 5}, "policy"),
        (f"/apps/{name}/simulateMetrics", {"rps": "fast"}, "rps"),
        (f"/api/v1/apps/{name}/restart", {"replica": "one"}, "replica"),
    ]:
        response = await api.post(path, json=body)
        assert response.status == 400, (path, await response.text())
        assert field in (await response.json())["detail"]
    for path, param in [
        ("/events?limit=abc", "limit"),
        ("/api/v1/events?limit=0", "limit"),
        ("/api/v1/events?since=yesterday", "since"),
        (f"/apps/{name}/logs?lines=-1", "lines"),
        (f"/api/v1/apps/{name}/logs?follow=maybe", "follow"),
    ]:
        response = await api.get(path)
        assert response.status == 400, (path, await response.text())
        assert param in (await response.json())["detail"]


async def test_policy_is_validated_and_persisted(api: TestClient) -> None:
    name = unique_name("pol")
    await register(api, name)
    response = await api.post(f"/apps/{name}/policy", json={"policy": {"maxReplicas": 7}})
    body = await response.json()
    assert response.status == 200 and body["status"] == "updated" and body["policy"]["maxReplicas"] == 7
    bad = await api.put(f"/api/v1/apps/{name}/scaling", json={"minReplicas": 9, "maxReplicas": 2})
    assert bad.status == 422
    mode = await api.put(f"/api/v1/apps/{name}/scaling", json={"mode": "auto"})
    assert (await mode.json())["policy"]["mode"] == "auto"
    described = await (await api.get(f"/api/v1/apps/{name}")).json()
    assert described["mode"] == "auto" and described["policy"]["maxReplicas"] == 7


async def test_events_newest_first_filtered_by_app_and_type(api: TestClient) -> None:
    name = unique_name("ev")
    await register(api, name)
    await api.post(f"/apps/{name}/policy", json={"policy": {"maxReplicas": 4}})
    legacy = (await (await api.get(f"/events?app={name}&limit=50")).json())["events"]
    assert legacy and all(e["app_name"] == name for e in legacy)
    assert set(legacy[0]) == {"id", "app_name", "event_type", "message", "timestamp", "details"}
    stamps = [e["timestamp"] for e in legacy]
    assert stamps == sorted(stamps, reverse=True)
    one = (await (await api.get(f"/api/v1/apps/{name}/events?limit=1")).json())["events"]
    assert len(one) == 1 and one[0]["id"] == legacy[0]["id"]
    lifecycle = (await (await api.get("/api/v1/events?type=lifecycle&since=1h")).json())["events"]
    assert lifecycle and all(e["category"] == "lifecycle" for e in lifecycle)


async def test_app_metrics_shapes_and_simulation(api: TestClient) -> None:
    name = unique_name("met")
    await register(api, name)
    legacy = await (await api.get(f"/apps/{name}/metrics")).json()
    assert set(legacy["metrics"]["metrics"]) == {
        "rps", "p95_latency_ms", "active_connections", "cpu_percent", "memory_percent",
        "healthy_replicas", "total_replicas",
    }  # fmt: skip
    assert isinstance(legacy["scaling_history"], list)
    v1 = await (await api.get(f"/api/v1/apps/{name}/metrics")).json()
    assert set(v1) == {"app", "current", "window", "policy", "last_decision"}
    simulated = await api.post(f"/apps/{name}/simulateMetrics", json={"rps": 500, "evaluate": True})
    body = await simulated.json()
    assert simulated.status == 200, body
    assert set(body) == {"app", "metrics_added", "evaluation", "action"}


async def test_node_metrics_json_and_prometheus(api: TestClient) -> None:
    name = unique_name("prom")
    await register(api, name)
    body = await (await api.get("/metrics")).json()
    assert set(body) == {"timestamp", "cluster", "apps", "instances", "nginx"}
    assert body["apps"]["total"] >= 1
    text_response = await api.get("/metrics", headers={"Accept": "text/plain"})
    assert text_response.content_type == "text/plain"
    text = await text_response.text()
    assert f'orchestry_app_replicas_desired{{app="{name}"}}' in text
    assert "orchestry_is_leader 1" in text
    openmetrics = await api.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert (await openmetrics.text()).rstrip().endswith("# EOF")


async def test_cluster_routes_for_a_lone_leader(api: TestClient) -> None:
    status = await (await api.get("/cluster/status")).json()
    assert status["is_leader"] is True and status["state"] == "leader" and status["term"] >= 1
    assert status["leader_id"] == status["node_id"] and status["lease"]["leader_id"] == status["node_id"]
    v1 = await (await api.get("/api/v1/cluster/status")).json()

    def stable(doc: dict) -> dict:
        # The lease renews and nodes heartbeat between the two calls; everything else must match.
        moving = {"lease", "nodes"}
        return {k: v for k, v in doc.items() if k not in moving}

    assert stable(v1) == stable(status)
    assert v1["lease"]["term"] == status["lease"]["term"] and v1["lease"]["leader_id"] == status["node_id"]
    leader = await (await api.get("/cluster/leader")).json()
    assert leader["leader_id"] == status["node_id"] and isinstance(leader["lease_expires_at"], float)
    assert (await api.get("/api/v1/cluster/leader")).status == 200
    health = await (await api.get("/cluster/health")).json()
    assert health["cluster_ready"] is True and health["clustering"] == "disabled"


async def test_secrets_never_return_values(api: TestClient) -> None:
    name = unique_name("sec")
    value = "hunter2-planted-" + name
    put = await api.put(f"/api/v1/secrets/{name}", json={"password": value, "user": "app"})
    assert await put.json() == {"name": name, "fields": ["password", "user"]}
    got = await (await api.get(f"/api/v1/secrets/{name}")).json()
    assert got == {"name": name, "fields": ["password", "user"]}
    listed = await api.get("/api/v1/secrets")
    assert {"name": name, "fields": ["password", "user"]} in (await listed.json())["secrets"]
    for response in (put, listed):
        assert value not in await response.text()
    assert (await api.put(f"/api/v1/secrets/{name}", json={"password": 5})).status == 400
    assert (await api.put(f"/api/v1/secrets/{name}", json={})).status == 400
    assert await (await api.delete(f"/api/v1/secrets/{name}")).json() == {"status": "deleted", "name": name}
    assert (await api.get(f"/api/v1/secrets/{name}")).status == 404


async def test_diagnostics_is_a_named_gzip(api: TestClient) -> None:
    response = await api.post("/api/v1/diagnostics")
    assert response.status == 200
    assert response.content_type == "application/gzip"
    assert 'filename="orchestry-diagnostics-' in response.headers["Content-Disposition"]
    assert (await response.read())[:2] == b"\x1f\x8b"


async def test_unknown_route_and_method_answer_json(api: TestClient) -> None:
    missing = await api.get("/nope")
    assert missing.status == 404 and "openapi" in (await missing.json())["detail"]
    wrong = await api.put("/health")
    assert wrong.status == 405 and "PUT" in (await wrong.json())["detail"]


async def test_no_cors_headers(api: TestClient) -> None:
    response = await api.get("/apps", headers={"Origin": "http://evil.example"})
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


async def test_cluster_overview_lists_this_node_its_lease_and_term_history(api: TestClient) -> None:
    body = await (await api.get("/api/v1/cluster/overview")).json()
    me = body["node_id"]
    assert body["leader_id"] == me and body["term"] >= 1
    assert 0 < body["lease"]["remaining"] <= body["lease"]["ttl"]
    node = next(n for n in body["nodes"] if n["node_id"] == me)
    assert node["state"] == "leader" and node["database"] == "ok" and node["version"]
    assert body["history"][0] == {
        "term": body["term"],
        "leader_id": me,
        "hostname": body["history"][0]["hostname"],
        "acquired_at": body["history"][0]["acquired_at"],
        "ended_at": None,
        "ended": None,
    }


async def test_scaling_a_stopped_app_says_it_stays_stopped(api: TestClient) -> None:
    """`orchestry scale web 3` on a stopped app answered "scaled" and the CLI said "scaling to 3
    replicas" while nothing started: the answer says the count waits for `up`."""
    name = unique_name("stopped")
    await register(api, name)
    response = await api.post(f"/api/v1/apps/{name}/scale", json={"replicas": 3})
    body = await response.json()
    assert response.status == 200 and (body["status"], body["replicas"]) == ("scaled", 3)
    assert body["message"] == f"{name} is stopped: it runs 3 replica(s) once started (orchestry up {name})"
    status = await (await api.get(f"/apps/{name}/status")).json()
    assert (status["status"], status["instances"]) == ("stopped", [])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/health", 200), ("GET", "/apps/nope/status", 404), ("GET", "/api/v1/apps/nope", 404),
     ("GET", "/api/v1/nothing", 404), ("PATCH", "/api/v1/apps", 405), ("POST", "/api/v1/apps", 400)],
)  # fmt: skip
async def test_every_answer_says_it_comes_from_orchestry(
    api: TestClient, method: str, path: str, status: int
) -> None:
    """So a client can tell the API's 404 (no such app) from another web server's (the apps' LB)."""
    response = await api.request(method, path)
    assert response.status == status
    assert response.headers["X-Orchestry-Version"] == __version__


async def test_a_quiet_follow_sends_keepalive_lines(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A follow of an app that logs nothing wrote no byte at all, so a proxy in between (the controller
    LB closes a followed log silent for 300 s) ended it, and the CLI said the daemon went away. Empty
    lines, which NDJSON readers skip, keep it open."""
    from core.api import routes_v1

    monkeypatch.setattr(routes_v1, "KEEPALIVE_SECONDS", 0.1)
    name = unique_name("kal")
    await register(api, name)  # never started: no replica, no line
    response = await api.get(f"/api/v1/apps/{name}/logs?follow=true&tail=0")
    try:
        assert response.status == 200
        assert await asyncio.wait_for(response.content.readline(), timeout=30) == b"\n"
    finally:
        response.close()
