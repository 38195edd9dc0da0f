"""Fidelity: the backtest of the policy that was in force, over the metric history a real run recorded,
takes the decisions the real scaler took (same direction and step, within one scaling period).

A real load step through nginx on the demo image drives the leader's scaling loop out and back in;
then the pure backtest replays what the engine recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.backtest import backtest
from core.engine import Engine
from core.spec import parse_app_spec
from tests.conftest import unique_name
from tests.integration.harness import TrafficClient, demo_app, engine_settings, lb, ready_count, wait_for

WINDOW = 6
POLICY = {
    "mode": "auto",
    "minReplicas": 1,
    "maxReplicas": 3,
    "windowSeconds": WINDOW,
    "cooldownSeconds": 3,
    "targetRPSPerReplica": 10,
    # One replica per step: which evaluation first sees the step may differ by one period between the
    # real window and the rebuilt one, and the step size must not depend on it.
    "maxScaleOutStep": 1,
    # Out of reach: only requests/s decides, as the load step is a request flood.
    "maxP95LatencyMs": 600_000,
    "maxConnPerReplica": 100_000,
    "maxCPUPercent": 100,
    "maxMemoryPercent": 100,
}


async def test_backtest_reproduces_the_decisions_of_a_real_load_step(tmp_path: Path) -> None:
    engine = Engine(engine_settings(tmp_path / "state"))
    await engine.start()
    name = unique_name("fid")
    try:
        await wait_for(engine.cluster.is_leader, timeout=20, what="the lone node to lead")
        doc = {**demo_app(name), "scaling": POLICY}
        await engine.register(doc)
        await engine.up(name)
        await wait_for(lambda: ready_count(engine, name), timeout=30, what="the first replica ready")
        await asyncio.sleep(WINDOW)  # a quiet window on record before the step

        async def scaled(direction: str) -> bool:
            rows = await engine.scaling_history(name)
            return any((r.to_replicas > r.from_replicas) == (direction == "out") for r in rows)

        async with TrafficClient(lb(engine, name), concurrency=4) as client:
            await wait_for(lambda: scaled("out"), timeout=WINDOW + 20, what="a scale-out on the load step")
            await wait_for(lambda: ready_count(engine, name), timeout=30, what="replicas ready")
            await asyncio.sleep(WINDOW)  # the step holds for a whole window at the new size
        assert client.total > 0 and client.failures == 0

        async def back_to_one() -> bool:
            return (await engine.get_app(name)).desired_replicas == 1

        await wait_for(back_to_one, timeout=WINDOW * 4 + 30, what="the scale-in back to one replica")
        await asyncio.sleep(2)
        samples = await engine.metric_history(name, 0)
        actual = sorted(await engine.scaling_history(name), key=lambda r: r.id)
    finally:
        await engine.stop(stop_apps=True)

    policy = parse_app_spec(doc).scaling
    replayed = backtest(samples, policy, initial_replicas=round(samples[0].desired_replicas))
    real = [(r.from_replicas, r.to_replicas) for r in actual]
    simulated = [(d.from_replicas, d.to_replicas) for d in replayed.decisions]
    detail = "\n".join(
        [f"real {r.timestamp:.2f} {r.from_replicas}→{r.to_replicas} {r.reason}" for r in actual]
        + [f"replay {d.at:.2f} {d.from_replicas}→{d.to_replicas} {d.reason}" for d in replayed.decisions]
    )
    assert len(real) >= 2 and real[0][1] > real[0][0] and real[-1][1] < real[-1][0], detail
    assert simulated == real, detail
    # Within one scaling period: the replayed decision is taken at the evaluation of the real one or at
    # the one just before or after it (records are written at each evaluation, so they mark periods).
    times = [s.at for s in samples]

    def evaluation(at: float) -> int:
        return min(range(len(times)), key=lambda i: abs(times[i] - at))

    for decision, record in zip(replayed.decisions, actual, strict=True):
        assert abs(evaluation(decision.at) - evaluation(record.timestamp)) <= 1, detail
