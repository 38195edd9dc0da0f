"""Auto-scaling reaction time: a load step on one replica → the first scale-out decision → the new
replicas serving through nginx.  Median of N runs per metric; prints figures, asserts nothing.

Each run registers a fresh auto-mode demo app whose policy only reacts to the metric under test, waits
until the scaler has half a window of data (its minimum), starts the load, and times

* decision: until the scaling loop records the scale-out (scaling_history row),
* serving:  until every replica of the new count has answered a request through nginx.

    .venv/bin/python bench/autoscale.py [--runs 3] [--window 10] [--metrics rps,cpu,latency]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.engine import Engine  # noqa: E402
from testkit.harness import TrafficClient, demo_app, engine_settings  # noqa: E402

OUT_OF_REACH: dict[str, Any] = {
    "targetRPSPerReplica": 100_000,
    "maxP95LatencyMs": 600_000,
    "maxConnPerReplica": 100_000,
    "maxCPUPercent": 100,
    "maxMemoryPercent": 100,
}
# metric → (policy keys, CPU limit, load path, concurrency); each load is far above its target.
LOADS: dict[str, tuple[dict[str, Any], str | None, str, int]] = {
    "rps": ({"targetRPSPerReplica": 10}, None, "", 4),
    "cpu": ({"maxCPUPercent": 50}, "200m", "cgi-bin/burn?s=1", 2),
    "latency": ({"maxP95LatencyMs": 150}, None, "cgi-bin/sleep?ms=400", 2),
}


def app_document(name: str, metric: str, window: int) -> dict[str, Any]:
    policy, cpu, _, _ = LOADS[metric]
    doc = demo_app(name)
    if cpu is not None:
        doc["spec"] = {**doc["spec"], "resources": {"cpu": cpu}}
    doc["scaling"] = {
        "mode": "auto",
        "minReplicas": 1,
        "maxReplicas": 4,
        "windowSeconds": window,
        "cooldownSeconds": 600,  # one decision per run: the first one is what is measured
        **OUT_OF_REACH,
        **policy,
    }
    return doc


async def poll(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


async def replicas_answering(url: str, expected: int, timeout: float = 60.0) -> None:
    """Until ``expected`` distinct replicas have answered ``url`` through nginx."""
    seen: set[str] = set()

    async def one(session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                body = await resp.text()
                if resp.status == 200 and "replica=" in body:
                    seen.add(body.split("replica=")[1].split()[0])
        except (aiohttp.ClientError, TimeoutError):
            pass

    async def enough() -> bool:
        await asyncio.gather(*(one(session) for _ in range(2 * expected)))
        return len(seen) >= expected

    async with aiohttp.ClientSession() as session:
        await poll(enough, timeout, f"{expected} replicas answering through nginx", interval=0.01)


async def one_run(engine: Engine, metric: str, window: int) -> tuple[float, float, str]:
    name = f"as-{metric}-{uuid.uuid4().hex[:6]}"
    base = f"http://{engine.settings.lb_listen}/{name}/"
    await engine.register(app_document(name, metric, window))
    try:
        await engine.up(name)

        async def ready() -> bool:
            return (await engine.get_app(name)).ready_replicas >= 1

        async def enough_data() -> bool:
            return engine.metrics.window(name, window).covered_seconds >= window / 2 + 1

        await poll(ready, 30, "the first replica")
        await poll(enough_data, window * 2, "half a metrics window")

        async def decided() -> Any:
            rows = await engine.scaling_history(name)
            return rows[0] if rows else None

        _, _, path, concurrency = LOADS[metric]
        async with TrafficClient(base + path, concurrency=concurrency):
            started = time.monotonic()
            row = await poll(decided, window * 3 + 10, f"a scale-out on {metric}")
            decision = time.monotonic() - started
            await replicas_answering(base, row.to_replicas)
            serving = time.monotonic() - started
        return decision, serving, f"{row.from_replicas}→{row.to_replicas}: {row.reason}"
    finally:
        await engine.delete(name)


async def run(runs: int, window: int, metrics: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    results: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in metrics}
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state", drain_timeout=2.0))
        await engine.start()
        print(
            f"scaler every {engine.settings.scaler_interval:g} s, metrics every "
            f"{engine.settings.metrics_interval:g} s, windowSeconds {window}"
        )
        try:
            for metric in metrics:
                for index in range(runs):
                    decision, serving, what = await one_run(engine, metric, window)
                    results[metric][0].append(decision)
                    results[metric][1].append(serving)
                    figures = f"decision {decision:.2f} s, serving {serving:.2f} s"
                    print(f"  {metric} run {index + 1}: {figures} ({what})")
        finally:
            await engine.stop(stop_apps=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=10, help="the policy's windowSeconds (5-3600)")
    parser.add_argument("--metrics", default="rps,cpu,latency", help="comma-separated: rps, cpu, latency")
    args = parser.parse_args()
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in LOADS]
    if unknown:
        parser.error(f"unknown metric(s) {', '.join(unknown)}: use {', '.join(LOADS)}")
    results = asyncio.run(run(args.runs, args.window, metrics))
    print(f"\nload step → scale-out, median of {args.runs} runs (seconds), windowSeconds {args.window}")
    print(f"{'metric':<10}{'decision':>10}{'serving':>10}   goal: decision ≤ window + one scaler period")
    for metric, (decisions, servings) in results.items():
        print(f"{metric:<10}{statistics.median(decisions):>10.2f}{statistics.median(servings):>10.2f}")


if __name__ == "__main__":
    main()
