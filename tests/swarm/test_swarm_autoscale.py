"""Auto-scaling on the Swarm lab: requests per second measured by nginx for ONE app scale it out
across nodes, while an idle app beside it stays where it is."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.integration.harness import TrafficClient, lb, wait_for
from tests.swarm.engine_support import app_name, ready_hosts, swarm_app, swarm_engine

# Every metric but RPS out of reach, so the scale-out can only come from the load on the one app.
POLICY: dict[str, Any] = {
    "mode": "auto",
    "minReplicas": 1,
    "maxReplicas": 4,
    "windowSeconds": 5,
    "cooldownSeconds": 2,
    "targetRPSPerReplica": 10,
    "maxP95LatencyMs": 600_000,
    "maxConnPerReplica": 100_000,
    "maxCPUPercent": 100,
    "maxMemoryPercent": 100,
}


async def test_rps_on_one_app_scales_it_across_nodes_and_the_idle_app_stays(
    swarm_lab: Any, tmp_path: Path
) -> None:
    busy, idle = app_name("busy"), app_name("idle")
    async with swarm_engine(
        swarm_lab, tmp_path / "state", scaler_interval=1.0, metrics_interval=1.0
    ) as engine:
        for name in (busy, idle):
            await engine.register(swarm_app(swarm_lab, name, scaling=dict(POLICY)))
            await engine.up(name)
        await wait_for(lambda: _all_ready(engine, (busy, idle), 1), timeout=60, what="one replica each")
        idle_seen: set[int] = set()
        started = time.monotonic()
        async with TrafficClient(lb(engine, busy), concurrency=4, methods=("GET",), label="busy load"):
            while time.monotonic() - started < 90:
                idle_seen.add(len((await engine.get_app(idle)).replicas))
                view = await engine.get_app(busy)
                hosts = await ready_hosts(engine, busy)
                if view.ready_replicas >= 3 and len(set(hosts)) >= 2:
                    break
                await asyncio.sleep(0.5)
        print(
            f"\nbusy app scaled to {view.ready_replicas} replicas on {len(set(hosts))} nodes "
            f"{time.monotonic() - started:.1f} s after the load began; "
            f"idle app replicas seen: {sorted(idle_seen)}"
        )
        assert view.ready_replicas >= 3, view.status_reason
        assert len(set(hosts)) >= 2, hosts
        assert idle_seen == {1}
        assert len((await engine.get_app(idle)).replicas) == 1
        decisions = [e for e in await engine.events(app=busy) if e.category == "scaling"]
        assert any("rps" in e.message.lower() for e in decisions), [e.message for e in decisions]


async def _all_ready(engine: Any, names: tuple[str, ...], n: int) -> bool:
    for name in names:
        if (await engine.get_app(name)).ready_replicas != n:
            return False
    return True
