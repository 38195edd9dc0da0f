"""Auto-scaling end to end: real load through nginx on demo replicas drives the leader's scaling loop.

Each policy switches off the metrics a test is not about (targets far out of reach), so a scale-out
can only come from the metric under test, and its reason must say so.  Windows and cooldowns are a
few seconds so each test finishes well under a minute.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.engine import Engine
from core.models import ScalingRecord
from tests.conftest import unique_name
from tests.integration.harness import (
    TrafficClient,
    demo_app,
    docker,
    engine_settings,
    lb,
    ready_count,
    wait_for,
)

WINDOW = 6
# Targets no test load comes near, for the metrics a test is not about.
OUT_OF_REACH: dict[str, Any] = {
    "targetRPSPerReplica": 100_000,
    "maxP95LatencyMs": 600_000,
    "maxConnPerReplica": 100_000,
    "maxCPUPercent": 100,
    "maxMemoryPercent": 100,
}


_started_apps: list[str] = []


@pytest.fixture(autouse=True)
async def _remove_leftover_containers() -> AsyncIterator[None]:
    """Set up before (so torn down after) the engine: remove what a stopped engine left running.

    A test that ends right after a scaling decision has a reconcile pass in flight when the fixture
    runs ``down``; that pass can write the app's status back to running and leave replicas behind
    (reported to the lead).  Other tests share this dockerd, so clean up by our own app names only.
    """
    _started_apps.clear()
    yield
    for name in _started_apps:
        await _remove_leftovers(name)


def auto_app(name: str, cpu: str | None = None, **policy: Any) -> dict[str, Any]:
    doc = demo_app(name)
    if cpu is not None:
        doc["spec"] = {**doc["spec"], "resources": {"cpu": cpu}}
    doc["scaling"] = {
        "mode": "auto",
        "minReplicas": 1,
        "maxReplicas": 3,
        "windowSeconds": WINDOW,
        "cooldownSeconds": 3,
        **OUT_OF_REACH,
        **policy,
    }
    return doc


async def start_app(engine: Engine, doc: dict[str, Any]) -> str:
    name = str(doc["metadata"]["name"])
    _started_apps.append(name)
    await engine.register(doc)
    await engine.up(name)
    await wait_for(lambda: ready_count(engine, name), timeout=30, what=f"{name}: first replica ready")
    # The scaler wants half a window of data before it decides anything.
    await wait_for(
        lambda: engine.metrics.window(name, WINDOW).covered_seconds >= WINDOW / 2 + 1,
        timeout=WINDOW * 2,
        what=f"{name}: half a metrics window",
    )
    return name


async def desired(engine: Engine, name: str) -> int:
    return (await engine.get_app(name)).desired_replicas


async def history(engine: Engine, name: str) -> list[ScalingRecord]:
    """Oldest first."""
    return sorted(await engine.scaling_history(name), key=lambda r: r.id)


async def scaled_out(engine: Engine, name: str) -> ScalingRecord | None:
    rows = [r for r in await history(engine, name) if r.to_replicas > r.from_replicas]
    return rows[0] if rows else None


async def scaled_in(engine: Engine, name: str) -> ScalingRecord | None:
    rows = [r for r in await history(engine, name) if r.to_replicas < r.from_replicas]
    return rows[0] if rows else None


def assert_reason_explains(reason: str, metric: str) -> None:
    """A person reading the reason learns the metric, its value, the threshold and the result."""
    assert re.search(r"scale (out|in) \d+ → \d+", reason), reason
    assert metric in reason, f"the reason should name {metric!r}: {reason}"
    assert re.search(rf"{metric} \d+(\.\d+)?%", reason), f"the reason should give the value: {reason}"
    assert re.search(r"the \d+(\.\d+)?% threshold", reason), f"the reason should give the threshold: {reason}"


async def assert_every_decision_explained(engine: Engine, name: str, out_metric: str) -> None:
    rows = await history(engine, name)
    assert rows, f"{name} never scaled"
    for row in rows:
        metric = out_metric if row.to_replicas > row.from_replicas else "cpu"
        assert_reason_explains(row.reason, metric)
        assert row.metrics["window"]["covered_seconds"] > 0
        assert row.metrics["deciding_metric"] is not None
    events = [e for e in await engine.events(app=name, category="scaling") if e.kind == "scaled_auto"]
    assert len(events) == len(rows)
    for event in events:
        assert event.details["auto"] is True
        assert event.details["reason"] in event.message
        assert_reason_explains(
            event.details["reason"], "cpu" if event.details["to"] < event.details["from"] else out_metric
        )


async def load_step_scales_out_then_in(
    engine: Engine, name: str, url: str, concurrency: int, out_metric: str, deciding: str
) -> None:
    """Load until the first scale-out and check its reason; then a lighter load goes on (GET and POST
    to the app's root) while the scaler scales in, and none of its requests fails."""
    async with TrafficClient(url, concurrency=concurrency, label=f"{out_metric} load") as client:
        first = await wait_for(
            lambda: scaled_out(engine, name),
            timeout=WINDOW + 1 + 10,  # window + one evaluation period + slack for a shared 2-core host
            what=f"{name}: scale-out on {out_metric}",
        )
        print(f"\n{name}: {first.reason}")
        assert first.metrics["deciding_metric"] == deciding, first.reason
        assert_reason_explains(first.reason, out_metric)
        await wait_for(
            lambda: _ready_at_least(engine, name, first.to_replicas),
            timeout=30,
            what=f"{name}: {first.to_replicas} ready replicas",
        )
        await wait_for(lambda: client.sent["POST"] > 0, what="a POST of the heavy load sent too")
    client.assert_none_failed()
    # The heavy load gone, a light one stays: once the cooldown is over and the window holds only
    # light seconds, replicas go, under that traffic.
    light = TrafficClient(lb(engine, name), concurrency=1, pause=0.5, label=f"{out_metric} light load")
    async with light:
        first_in = await wait_for(
            lambda: scaled_in(engine, name),
            timeout=WINDOW * 2 + 3 + 15,
            what=f"{name}: scale-in under a light load",
        )
        await wait_for(
            lambda: _live_is(engine, name, first_in.to_replicas), timeout=30, what=f"{name}: scaled in"
        )
        await asyncio.sleep(1.0)
    light.assert_none_failed(at_least=5)
    assert first_in.to_replicas == first_in.from_replicas - 1, "scale-in goes one step at a time"
    assert "all below the 30% threshold" in first_in.reason, first_in.reason
    await assert_every_decision_explained(engine, name, out_metric)


async def _live_is(engine: Engine, name: str, count: int) -> bool:
    containers = await engine.runtime.list_managed(name)
    return len(containers) == count and await ready_count(engine, name) == count


async def _ready_at_least(engine: Engine, name: str, count: int) -> bool:
    return await ready_count(engine, name) >= count


async def test_cpu_load_over_the_limit_scales_out_then_in(engine: Engine) -> None:
    # 200m: a burning request uses the whole quota, so CPU % of the limit reaches 100.
    name = await start_app(engine, auto_app(unique_name("cpu"), cpu="200m", maxCPUPercent=50))
    await load_step_scales_out_then_in(
        engine, name, lb(engine, name, "cgi-bin/burn?s=1"), concurrency=2, out_metric="cpu", deciding="cpu"
    )


async def test_slow_answers_scale_out_on_p95_latency_then_in(engine: Engine) -> None:
    name = await start_app(engine, auto_app(unique_name("lat"), maxP95LatencyMs=150))
    await load_step_scales_out_then_in(
        engine,
        name,
        lb(engine, name, "cgi-bin/sleep?ms=400"),
        concurrency=2,
        out_metric="p95 latency",
        deciding="latency",
    )


async def test_request_flood_scales_out_on_rps_then_in(engine: Engine) -> None:
    name = await start_app(engine, auto_app(unique_name("rps"), targetRPSPerReplica=10))
    await load_step_scales_out_then_in(
        engine, name, lb(engine, name), concurrency=4, out_metric="rps", deciding="rps"
    )


async def test_load_on_one_app_never_scales_the_other(engine: Engine) -> None:
    policy = {"targetRPSPerReplica": 10, "maxReplicas": 2}
    busy = await start_app(engine, auto_app(unique_name("busy"), **policy))
    idle = await start_app(engine, auto_app(unique_name("idle"), **policy))
    async with TrafficClient(lb(engine, busy), concurrency=4):
        await wait_for(lambda: scaled_out(engine, busy), timeout=WINDOW + 11, what="busy app scales out")
        # Keep the flood on for a whole window more: any leak of traffic into the idle app shows by now.
        await asyncio.sleep(WINDOW)
        idle_window = engine.metrics.window(idle, WINDOW)
        busy_window = engine.metrics.window(busy, WINDOW)
    assert await history(engine, idle) == []
    assert await desired(engine, idle) == 1
    assert (await engine.get_app(idle)).last_scaled_at is None
    assert idle_window.rps is not None and idle_window.rps < 1, idle_window
    assert busy_window.rps is not None and busy_window.rps > 10, busy_window
    idle_events = [e for e in await engine.events(app=idle, category="scaling") if e.kind.startswith("scale")]
    assert idle_events == []


async def test_simulated_metrics_drive_a_decision_and_its_action(engine: Engine) -> None:
    name = await start_app(engine, auto_app(unique_name("sim"), maxCPUPercent=50, cooldownSeconds=60))
    result = await engine.simulate_metrics(name, {"cpuPercent": 90}, evaluate=True)
    # 90 % vs 50 % is 180 % of target; at an 80 % threshold one replica becomes ceil(180 / 80) = 3.
    assert result["metrics_added"] == {"cpuPercent": 90.0}
    assert result["evaluation"]["should_scale"] is True
    assert result["evaluation"]["target_replicas"] == 3
    assert result["evaluation"]["scale_factors"]["cpu"] == 180.0
    assert result["action"] == {"scaled": True, "from_replicas": 1, "to_replicas": 3}
    assert_reason_explains(result["evaluation"]["reason"], "cpu")
    await wait_for(lambda: _ready_at_least(engine, name, 3), timeout=30, what="3 ready replicas")
    [row] = await history(engine, name)
    assert (row.from_replicas, row.to_replicas) == (1, 3)
    assert row.reason == result["evaluation"]["reason"]
    assert row.metrics["window"]["cpu_percent"] == 90.0
    # In cooldown the same pressure is evaluated but not acted on, and the answer says why.
    again = await engine.simulate_metrics(name, {"cpuPercent": 90}, evaluate=True)
    assert again["evaluation"]["should_scale"] is False
    assert "in cooldown" in again["evaluation"]["reason"]
    assert again["action"] is None
    assert len(await history(engine, name)) == 1


async def test_a_new_leader_waits_out_the_cooldown_of_the_old_one(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path / "state")
    cooldown = 12
    first = Engine(settings)
    await first.start()
    second: Engine | None = None
    name = unique_name("cool")
    pressure = {"rps": 1000}  # 1000 req/s against a target of 50: far above any threshold
    try:
        doc = auto_app(name, targetRPSPerReplica=50, maxScaleOutStep=1, cooldownSeconds=cooldown)
        name = await start_app(first, doc)
        result = await first.simulate_metrics(name, pressure, evaluate=True)
        assert result["action"] == {"scaled": True, "from_replicas": 1, "to_replicas": 2}
        scaled_at = (await first.get_app(name)).last_scaled_at
        assert scaled_at is not None
        await first.stop()  # replicas keep running; the lease is released for the next leader

        second = Engine(settings)
        second_started = time.time()
        await second.start()
        assert second.cluster.is_leader()
        await second.simulate_metrics(name, pressure, evaluate=False)  # the pressure continues
        cooldown_ends = scaled_at + cooldown
        while time.time() < cooldown_ends - 0.5:
            assert len(await history(second, name)) == 1, "scaled again inside the cooldown"
            assert await desired(second, name) == 2
            await asyncio.sleep(0.2)
        deferred = [
            e
            for e in await second.events(app=name, category="scaling")
            if e.kind == "scale_deferred" and e.timestamp >= second_started
        ]
        assert deferred and "in cooldown" in deferred[0].message, "the new leader should say why it waits"
        await second.simulate_metrics(name, pressure, evaluate=False)
        rows = await wait_for(
            lambda: _rows_at_least(second, name, 2), timeout=15, what="a scale-out after the cooldown"
        )
        assert (rows[1].from_replicas, rows[1].to_replicas) == (2, 3)
        assert rows[1].timestamp >= cooldown_ends
        assert_reason_explains(rows[1].reason, "rps")
    finally:
        if second is not None:
            await second.stop(stop_apps=True)
        else:
            await first.stop(stop_apps=True)


async def _rows_at_least(engine: Engine, name: str, count: int) -> list[ScalingRecord] | None:
    rows = await history(engine, name)
    return rows if len(rows) >= count else None


async def _remove_leftovers(name: str) -> None:
    ids = (await docker("ps", "-aq", "--filter", f"label=orchestry.app={name}")).split()
    if ids:
        await docker("rm", "-f", *ids)


async def test_simultaneous_evaluations_scale_once_and_respect_the_cooldown(engine: Engine) -> None:
    # Two simulateMetrics calls at once (or one racing the scaling loop) must not both act on the
    # same stale desired count: the second decision sees the first one's cooldown.
    name = await start_app(engine, auto_app(unique_name("race"), maxCPUPercent=50, cooldownSeconds=60))
    results = await asyncio.gather(
        *(engine.simulate_metrics(name, {"cpuPercent": 90}, evaluate=True) for _ in range(3))
    )
    actions = [r["action"] for r in results if r["action"] is not None]
    assert actions == [{"scaled": True, "from_replicas": 1, "to_replicas": 3}], results
    assert len(await history(engine, name)) == 1


async def test_memory_held_by_requests_scales_out_on_memory_then_in(engine: Engine) -> None:
    # A 64 MiB limit; each request holds 40 MiB for 3 s in the replica (demo /cgi-bin/memory), so one
    # request at a time keeps the replica at about 60 % of its limit.
    doc = auto_app(unique_name("mem"), maxMemoryPercent=30)
    doc["spec"] = {**doc["spec"], "resources": {"memory": "64Mi"}}
    name = await start_app(engine, doc)
    await load_step_scales_out_then_in(
        engine,
        name,
        lb(engine, name, "cgi-bin/memory?mb=40&s=3"),
        concurrency=1,
        out_metric="memory",
        deciding="memory",
    )


async def test_held_connections_scale_out_on_connections_then_in(engine: Engine) -> None:
    # Six clients each hold a connection for 3 s (demo /cgi-bin/hold): about 6 live nginx → replica
    # connections against a target of 2 per replica, with a request rate far below any other target.
    name = await start_app(engine, auto_app(unique_name("conn"), maxConnPerReplica=2))
    await load_step_scales_out_then_in(
        engine,
        name,
        lb(engine, name, "cgi-bin/hold?s=3"),
        concurrency=6,
        out_metric="connections",
        deciding="connections",
    )
