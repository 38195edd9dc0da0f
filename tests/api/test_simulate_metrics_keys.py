"""POST /apps/{name}/simulateMetrics takes every key API.md documents, not only rps."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import unique_name
from tests.integration.harness import demo_app

DOCUMENTED = {"rps": 120, "p95LatencyMs": 900, "activeConnections": 40, "cpuPercent": 95, "memoryPercent": 60,
              "healthyReplicas": 1}  # fmt: skip


async def test_every_documented_metric_is_taken(api: TestClient) -> None:
    """Found by tests/api/test_spec_fuzz.py: {"p95LatencyMs": 0} got 400 "simulated metric
    'p95_latency_ms' is unknown: use one of rps, p95LatencyMs, ...": the route renamed each key to the
    collector's internal name, which the collector, expecting API names, refused. Only rps worked."""
    name = unique_name("sim")
    assert (await api.post("/apps/register", json=demo_app(name))).status == 200
    for key, value in DOCUMENTED.items():
        answer = await api.post(f"/apps/{name}/simulateMetrics", json={key: value, "evaluate": False})
        body = await answer.json()
        assert answer.status == 200, (key, body)
        assert body["metrics_added"] == {key: value}, (key, body)
    answer = await api.post(f"/apps/{name}/simulateMetrics", json={**DOCUMENTED, "evaluate": True})
    body = await answer.json()
    assert answer.status == 200 and body["metrics_added"] == DOCUMENTED, body
    # Each figure reached the scaler: its factor is the value over the policy's target (demo_app's defaults).
    factors = body["evaluation"]["scale_factors"]
    assert factors["latency"] == 360.0 and factors["connections"] == 50.0 and factors["memory"] == 80.0, (
        factors
    )
