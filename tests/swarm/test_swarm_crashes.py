"""A replica that dies on its node while Swarm restarts it in place (its restart policy): the operator
is told it crashed, with its exit code, and its restarts count, as under the Docker runtime."""

from __future__ import annotations

from pathlib import Path

from core.engine import Engine
from tests.integration.harness import wait_for
from tests.swarm.engine_support import app_name, services_of, swarm_app, swarm_engine
from tests.swarm.lab import SwarmLab


async def _ready(engine: Engine, name: str, n: int) -> bool:
    view = await engine.get_app(name)
    return view.ready_replicas == n == len(view.replicas)


async def test_a_replica_killed_on_its_node_is_reported_as_a_crash_and_counted(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    name = app_name("crash")
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(swarm_app(swarm_lab, name))
        await engine.up(name)
        await engine.scale(name, 3)
        await wait_for(lambda: _ready(engine, name, 3), timeout=90, what="3 replicas ready")
        view = await engine.get_app(name)
        victim = next(
            (r for r in view.replicas if r.node in {n.netns for n in swarm_lab.workers}), view.replicas[0]
        )
        node = next(n for n in swarm_lab.nodes if n.netns == victim.node)
        container = next(
            c
            for c in swarm_lab.docker(node).containers.list(filters={"label": f"orchestry.app={name}"})
            if c.name.startswith(f"{victim.name}.")
        )

        container.kill()  # SIGKILL: exit code 137

        async def crash_reported() -> list[str]:
            events = await engine.events(app=name)
            return [e.message for e in events if e.kind == "replica_crashed"]

        crashes = await wait_for(crash_reported, timeout=60, what="the crash reported")
        assert len(crashes) == 1 and victim.name in crashes[0] and "code 137" in crashes[0], crashes
        # A first crash is replaced at once, which reads "in 0 s" (it read "in -0 s").
        assert crashes[0].endswith("replacing it in 0 s"), crashes
        await wait_for(lambda: _ready(engine, name, 3), timeout=60, what="3 replicas ready again")
        # Later passes find the same failed task in Swarm's task history: it is not a second crash.
        for _ in range(2):
            await engine.reconciler.reconcile_now(name)
        view = await engine.get_app(name)
        assert {r.slot: r.restarts for r in view.replicas} == {
            r.slot: (1 if r.slot == victim.slot else 0) for r in view.replicas
        }
        assert await crash_reported() == crashes
        # Swarm restarted it in its slot's service; the engine created nothing beside it.
        assert sorted(services_of(swarm_lab, name)) == sorted(r.name for r in view.replicas)
