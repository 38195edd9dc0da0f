"""The engine on the Swarm lab: scale-out across nodes routed through nginx, zero-drop scale-in, a lost
node's replicas rerouted after Swarm replaces them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.integration.harness import TrafficClient, lb, wait_for
from tests.swarm.engine_support import (
    app_name,
    ready_hosts,
    replicas_answering,
    swarm_app,
    swarm_engine,
)


async def _ready(engine: Any, name: str, n: int) -> bool:
    view = await engine.get_app(name)
    return view.ready_replicas == n and len(view.replicas) == n


async def test_scale_1_to_6_spreads_over_nodes_and_every_replica_answers(
    swarm_lab: Any, tmp_path: Path
) -> None:
    name = app_name()
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(swarm_app(swarm_lab, name))
        await engine.up(name)
        await wait_for(lambda: _ready(engine, name, 1), timeout=60, what="1 replica ready")
        started = time.monotonic()
        await engine.scale(name, 6)
        await wait_for(lambda: _ready(engine, name, 6), timeout=90, what="6 replicas ready and routed")
        print(f"\nSwarm scale 1→6 until every replica is routed: {time.monotonic() - started:.2f} s")

        hosts = await ready_hosts(engine, name)
        assert len(set(hosts)) >= 2, f"all replicas on one node: {hosts}"
        assert set(hosts) <= {n.address for n in swarm_lab.nodes}
        view = await engine.get_app(name)
        answered = await replicas_answering(engine, name)
        assert answered == {r.name for r in view.replicas}, answered

        # 6 → 2 under constant GET and POST traffic, no client retries: nothing fails.
        async with TrafficClient(lb(engine, name), label="swarm scale 6→2") as traffic:
            await asyncio.sleep(1.0)
            await engine.scale(name, 2)
            await wait_for(lambda: _ready(engine, name, 2), timeout=60, what="2 replicas")
            await asyncio.sleep(1.0)
        traffic.assert_none_failed(at_least=50)


async def test_a_lost_worker_node_is_unrouted_and_its_replicas_routed_again_on_survivors(
    swarm_lab: Any, tmp_path: Path
) -> None:
    name = app_name()
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(swarm_app(swarm_lab, name))
        await engine.up(name)
        await engine.scale(name, 6)
        await wait_for(lambda: _ready(engine, name, 6), timeout=90, what="6 replicas ready")
        hosts = await ready_hosts(engine, name)
        before = {r.container_id for r in (await engine.get_app(name)).replicas}
        workers = [n for n in swarm_lab.workers if n.address in hosts]
        assert workers, f"no replica on a worker: {hosts}"
        lost = workers[0]
        lost_address = lost.address
        on_lost = hosts.count(lost_address)
        concurrency = 4
        async with TrafficClient(lb(engine, name), concurrency=concurrency, label="node loss") as traffic:
            await asyncio.sleep(1.0)
            cut_at = time.monotonic()
            swarm_lab.cut_link(lost)
            try:
                await wait_for(
                    lambda: _none_routed_on(engine, name, lost_address), timeout=30, what="lost node unrouted"
                )
                unrouted_after = time.monotonic() - cut_at
                await wait_for(
                    lambda: _all_ready_elsewhere(engine, name, 6, lost_address),
                    timeout=90,
                    what="6 replicas ready on the surviving nodes",
                )
                rerouted_after = time.monotonic() - cut_at
                routed_wall = time.time()
                view = await engine.get_app(name)
                await asyncio.sleep(1.0)
            finally:
                swarm_lab.restore_link(lost)
        print(
            f"\nnode {lost.name} lost with {on_lost} of 6 replicas: unrouted after {unrouted_after:.2f} s, "
            f"all 6 routed on survivors after {rerouted_after:.2f} s; {traffic.failures} failed requests "
            f"(at most {concurrency} were in flight at the loss)"
        )
        # Swarm's replacements: how long after their task ran were they routed (polled every 0.1 s).
        replaced = [r for r in view.replicas if r.container_id not in before and r.started_at]
        if replaced:
            lag = routed_wall - max(r.started_at for r in replaced)
            print(
                f"{len(replaced)} replacement(s) routed at most {lag:.2f} s after Swarm started the last one"
            )
        assert traffic.failures <= concurrency, (traffic.figures(), traffic.errors[-5:])
        assert lost_address not in await ready_hosts(engine, name)


async def _none_routed_on(engine: Any, name: str, address: str) -> bool:
    return address not in await ready_hosts(engine, name)


async def _all_ready_elsewhere(engine: Any, name: str, n: int, address: str) -> bool:
    hosts = await ready_hosts(engine, name)
    return len(hosts) == n and address not in hosts
