"""Events counted where they happen show up on /metrics with their labels: an automatic scale-out is
counted under the metric that decided it, a manual one under ``manual``."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from tests.conftest import unique_name
from tests.integration.harness import demo_app

TEXT = {"Accept": "text/plain"}


def _value(page: str, series: str) -> float:
    for line in page.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_scaling_decisions_are_counted_by_direction_and_deciding_metric(api: TestClient) -> None:
    name = unique_name("promdec")
    scaling = {"mode": "auto", "minReplicas": 1, "maxReplicas": 3, "targetRPSPerReplica": 10}
    assert (await api.post("/apps/register", json=demo_app(name, scaling=scaling))).status == 200
    assert (await api.post(f"/apps/{name}/up")).status == 200
    for _ in range(200):
        status = await (await api.get(f"/apps/{name}/status")).json()
        if status["ready_replicas"] >= 1:
            break
        await asyncio.sleep(0.2)
    simulated = await api.post(f"/apps/{name}/simulateMetrics", json={"rps": 25, "evaluate": True})
    body = await simulated.json()
    assert simulated.status == 200 and body["action"], body
    page = await (await api.get("/metrics", headers=TEXT)).text()
    assert _value(page, f'orchestry_scaling_decisions_total{{app="{name}",direction="up",metric="rps"}}') == 1

    manual = await api.put(f"/api/v1/apps/{name}/scaling", json={"mode": "manual"})
    assert manual.status == 200
    assert (await api.post(f"/api/v1/apps/{name}/scale", json={"replicas": 1})).status == 200
    page = await (await api.get("/metrics", headers=TEXT)).text()
    assert (
        _value(page, f'orchestry_scaling_decisions_total{{app="{name}",direction="down",metric="manual"}}')
        == 1
    )

    assert (await api.delete(f"/api/v1/apps/{name}")).status in (200, 204)
    page = await (await api.get("/metrics", headers=TEXT)).text()
    assert f'app="{name}"' not in page  # a deleted app's series go with it


async def test_failed_probes_and_the_replacement_they_cause_are_counted(api: TestClient) -> None:
    name = unique_name("promhc")
    assert (await api.post("/apps/register", json=demo_app(name))).status == 200
    assert (await api.post(f"/apps/{name}/up")).status == 200
    container = ""
    for _ in range(200):
        status = await (await api.get(f"/apps/{name}/status")).json()
        if status["ready_replicas"] >= 1:
            container = status["instances"][0]["container_id"]
            break
        await asyncio.sleep(0.2)
    assert container, "the replica never became ready"
    removed = await asyncio.create_subprocess_exec("docker", "exec", container, "rm", "/www/health")
    assert await removed.wait() == 0  # the probe path now answers 404: the serving replica fails it
    failures = f'orchestry_health_check_failures_total{{app="{name}"}}'
    restarts = f'orchestry_replica_restarts_total{{app="{name}",slot="1"}}'
    page = ""
    for _ in range(300):
        page = await (await api.get("/metrics", headers=TEXT)).text()
        if _value(page, failures) >= 2 and _value(page, restarts) >= 1:
            break
        await asyncio.sleep(0.2)
    assert _value(page, failures) >= 2, page  # failureThreshold 2 of the demo spec
    assert _value(page, restarts) >= 1, "the unhealthy replica was not replaced and counted"
    await api.delete(f"/api/v1/apps/{name}")
