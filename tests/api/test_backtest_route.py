"""POST /api/v1/apps/{name}/backtest: both policies over recorded history or a synthetic trace, and
one clear answer for each kind of bad input."""

from __future__ import annotations

import time

from aiohttp.test_utils import TestClient

from core.engine import Engine
from core.history import MetricSample
from tests.conftest import unique_name
from tests.integration.harness import demo_app


async def registered(api: TestClient, **scaling: object) -> str:
    name = unique_name("bt")
    doc = demo_app(name)
    doc["scaling"] = {**doc["scaling"], "mode": "auto", "minReplicas": 1, "maxReplicas": 6, **scaling}
    response = await api.post("/apps/register", json=doc)
    assert response.status == 200, await response.text()
    return name


async def backtest(api: TestClient, name: str, body: object) -> tuple[int, dict]:
    response = await api.post(f"/api/v1/apps/{name}/backtest", json=body)
    return response.status, await response.json()


async def test_a_trace_compares_the_current_and_the_candidate_policy(api: TestClient) -> None:
    name = await registered(api)
    status, body = await backtest(api, name, {"trace": "step", "policy": {"maxReplicas": 2}})
    assert status == 200, body
    assert body["source"] == "trace:step" and body["samples"] > 100
    assert "served" in body["model"]
    current, candidate = body["current"], body["candidate"]
    assert current["policy"]["maxReplicas"] == 6 and candidate["policy"]["maxReplicas"] == 2
    assert current["summary"]["peak_replicas"] > 2 >= candidate["summary"]["peak_replicas"]
    # The capped candidate runs short of capacity for longer and costs less.
    assert candidate["summary"]["under_provisioned_minutes"] > current["summary"]["under_provisioned_minutes"]
    assert candidate["summary"]["replica_minutes"] < current["summary"]["replica_minutes"]
    assert current["decisions"][0]["reason"].startswith("scale out 1 → ")
    assert max(v for _, v in current["replicas"]) == current["summary"]["peak_replicas"]
    assert body["load"]["rps"] and body["load"]["cpu_percent"]


async def test_recorded_history_is_replayed(api: TestClient, api_engine: Engine) -> None:
    name = await registered(api, targetRPSPerReplica=10, windowSeconds=30, cooldownSeconds=30)
    now = time.time()
    # 10 minutes at 5 s: quiet, then 35 req/s on one replica (350 % of target), recorded as served.
    api_engine.store.history.add(
        [
            MetricSample.raw(
                name,
                now - 600 + 5 * i,
                5.0,
                rps=35.0 if i >= 60 else 2.0,
                p95_latency_ms=3.0,
                cpu_percent=5.0,
                memory_percent=None,
                active_connections=1.0,
                ready_replicas=1,
                desired_replicas=1,
            )
            for i in range(120)
        ]
    )
    status, body = await backtest(api, name, {"since": 3600})
    assert status == 200, body
    assert body["source"] == "history" and body["samples"] == 120
    first = body["current"]["decisions"][0]
    # The 30 s window averages the step in: out within one window, then to ceil(35 / 10 / 0.8) = 5.
    assert first["from_replicas"] == 1 and now - 300 <= first["at"] <= now - 300 + 30
    assert "rps" in first["reason"]
    assert body["current"]["summary"]["peak_replicas"] == 5
    assert body["candidate"] == body["current"]  # no candidate given: the current policy twice


async def test_bad_input_gets_one_clear_answer(api: TestClient) -> None:
    name = await registered(api)
    status, body = await backtest(api, name, {})
    assert status == 400 and "no recorded metric history" in body["detail"] and "trace" in body["detail"]

    status, body = await backtest(api, name, {"trace": "step", "policy": {"maxReplica": 3}})
    assert status == 422 and "scaling.maxReplica is not a known key" in body["detail"]
    assert "maxReplicas" in body["detail"]  # the fix

    status, body = await backtest(
        api, name, {"trace": "step", "policy": {"minReplicas": 9, "maxReplicas": 2}}
    )
    assert status == 422 and "minReplicas" in body["detail"] and "maxReplicas" in body["detail"]

    status, body = await backtest(api, name, {"trace": "saw"})
    assert status == 400 and "step, ramp, spike, sine" in body["detail"]

    status, body = await backtest(api, name, {"since": 5})
    assert status == 400 and "'since'" in body["detail"]

    status, body = await backtest(api, name, {"trace": "step", "polcy": {}})
    assert status == 400 and "'polcy'" in body["detail"]

    status, body = await backtest(api, unique_name("nope"), {"trace": "step"})
    assert status == 404
