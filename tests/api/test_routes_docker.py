"""Routes that run replicas: up, status, scale, logs (and follow), restart, down, delete on real Docker."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp.test_utils import TestClient

from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import demo_app, wait_for


async def ready_count(api: TestClient, name: str) -> int:
    body = await (await api.get(f"/apps/{name}/status")).json()
    return int(body["ready_replicas"])


async def test_lifecycle_through_both_families(api: TestClient, api_engine: Engine) -> None:
    name = unique_name("life")
    assert (await api.post("/apps/register", json=demo_app(name))).status == 200

    up = await (await api.post(f"/apps/{name}/up")).json()
    assert up["status"] == "started" and up["app"] == name and up["replicas"] >= 1
    await wait_for(lambda: ready_count(api, name), timeout=30, what="one ready replica")
    status = await (await api.get(f"/apps/{name}/status")).json()
    assert status["status"] == "running"
    instance = status["instances"][0]
    assert len(instance["container_id"]) == 12 and instance["ip"] == "127.0.0.1"
    assert isinstance(instance["cpu_percent"], float)

    # Health and list keep answering while a scale-out is under way (their latency: bench/api.py).
    scale = asyncio.create_task(api.post(f"/api/v1/apps/{name}/scale", json={"replicas": 4}))
    while not scale.done():
        assert (await api.get("/health")).status == 200
        assert (await api.get("/apps")).status == 200
        await asyncio.sleep(0.02)
    scaled = await (await scale).json()
    assert scaled["status"] == "scaled" and scaled["replicas"] == 4 and scaled["clamped"] is False
    await wait_for(lambda: _at_least(api, name, 4), timeout=40, what="four ready replicas")
    same = await (await api.post(f"/apps/{name}/scale", json={"replicas": 4})).json()
    assert same == {"status": "no_change", "app": name, "replicas": 4}

    legacy_logs = await (await api.get(f"/apps/{name}/logs?lines=20")).json()
    assert legacy_logs["app"] == name and legacy_logs["total_containers"] == 4
    stamps = [line["timestamp"] for line in legacy_logs["logs"]]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) <= 20
    v1_logs = await (await api.get(f"/api/v1/apps/{name}/logs?tail=5&since=1h")).json()
    assert all(len(line["container_id"]) == 12 for line in v1_logs["lines"])

    restarted = await (await api.post(f"/api/v1/apps/{name}/restart", json={"replica": 2})).json()
    assert restarted == {"app": name, "restarted": [2]}

    down = await (await api.post(f"/apps/{name}/down")).json()
    assert down["status"] == "stopped" and down["containers_stopped"] >= 1
    deleted = await (await api.delete(f"/apps/{name}")).json()
    assert deleted["status"] == "deleted"


async def _at_least(api: TestClient, name: str, count: int) -> bool:
    return await ready_count(api, name) >= count


async def ready_is(api: TestClient, name: str, count: int) -> bool:
    body = await (await api.get(f"/apps/{name}/status")).json()
    return body["ready_replicas"] == count and len(body["instances"]) == count


async def test_follow_streams_ndjson_until_the_client_leaves(api: TestClient, api_engine: Engine) -> None:
    name = unique_name("fol")
    await api.post("/apps/register", json=demo_app(name))
    await api.post(f"/apps/{name}/up")
    await wait_for(lambda: ready_count(api, name), timeout=30, what="one ready replica")

    response = await api.get(f"/api/v1/apps/{name}/logs?follow=true&tail=5")
    assert response.status == 200 and response.content_type == "application/x-ndjson"
    lb = f"http://{api_engine.settings.lb_listen}/{name}/"
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(lb) as answer:
                await answer.read()
    line = await asyncio.wait_for(response.content.readline(), 20)
    record = json.loads(line)
    assert set(record) == {"timestamp", "container_id", "replica", "stream", "message"}
    response.close()  # the client leaves; the server must notice and end the stream quietly

    # A replica coming and going does not break a stream either: lines of the new replica arrive on
    # it, and after that replica is gone the stream still carries the first replica's lines.
    second = await api.get(f"/api/v1/apps/{name}/logs?follow=true&tail=1")
    assert second.status == 200
    seen: list[dict] = []

    async def line_from(replica: str) -> bool:
        line = await asyncio.wait_for(second.content.readline(), 20)
        assert line, "the follow stream ended"
        seen.append(json.loads(line))
        return seen[-1]["replica"] == replica

    await api.post(f"/api/v1/apps/{name}/scale", json={"replicas": 2})
    await wait_for(lambda: _at_least(api, name, 2), timeout=30, what="two ready replicas")
    await wait_for(lambda: line_from(f"{name}-2"), timeout=60, interval=0, what="a line of replica 2")
    await api.post(f"/api/v1/apps/{name}/scale", json={"replicas": 1})
    await wait_for(lambda: ready_is(api, name, 1), timeout=30, what="back to one replica")
    seen.clear()
    async with aiohttp.ClientSession() as session:
        async with session.get(lb) as answer:
            assert answer.status == 200
    await wait_for(lambda: line_from(f"{name}-1"), timeout=60, interval=0, what="a line of replica 1")
    assert (await api.get("/health")).status == 200
    second.close()
    await api.post(f"/api/v1/apps/{name}/down?force=true")
    await api.delete(f"/api/v1/apps/{name}")
