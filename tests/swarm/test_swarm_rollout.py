"""Rolling changes on the Swarm lab under traffic: a restart and a spec update replace every replica
(one slot service each) without a failed request."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.engine import Engine
from tests.integration.harness import TrafficClient, lb, wait_for
from tests.swarm.engine_support import app_name, services_of, swarm_app, swarm_engine
from tests.swarm.lab import SwarmLab


async def _replaced(engine: Engine, name: str, before: set[str], n: int) -> bool:
    view = await engine.get_app(name)
    ids = {r.container_id for r in view.replicas}
    return view.ready_replicas == n == len(view.replicas) and not ids & before


async def test_a_restart_and_a_spec_update_roll_every_replica_without_a_failed_request(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    name = app_name("roll")
    doc = swarm_app(swarm_lab, name)
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(doc)
        await engine.up(name)
        await engine.scale(name, 3)
        await wait_for(lambda: _replaced(engine, name, set(), 3), timeout=90, what="3 replicas ready")
        async with TrafficClient(lb(engine, name), label="swarm restart and update") as traffic:
            await asyncio.sleep(1.0)
            before = {r.container_id for r in (await engine.get_app(name)).replicas}
            await engine.restart(name)
            await wait_for(lambda: _replaced(engine, name, before, 3), timeout=120, what="restarted")

            before = {r.container_id for r in (await engine.get_app(name)).replicas}
            doc["spec"]["env"] = {"GREETING": "v2"}
            await engine.register(doc)
            await wait_for(lambda: _replaced(engine, name, before, 3), timeout=120, what="updated")
            await asyncio.sleep(1.0)
        traffic.assert_none_failed(at_least=50)
        assert len(services_of(swarm_lab, name)) == 3
