"""CPU and memory of every replica come from the Docker API of the node that runs it; a node whose API
cannot be reached gives null figures with the reason, never a wrong number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.harness import wait_for
from tests.swarm.engine_support import app_name, swarm_app, swarm_engine

DOCKER_URL_LABEL = "orchestry.docker-url"


async def _replicas(engine: Any, name: str) -> list[Any]:
    return list((await engine.get_app(name)).replicas)


async def _all_measured(engine: Any, name: str, n: int) -> list[Any] | None:
    replicas = await _replicas(engine, name)
    measured = [r for r in replicas if r.ready and r.cpu_percent is not None and r.memory_percent is not None]
    return replicas if len(measured) == n else None


def _label_docker_url(lab: Any, node: Any, url: str) -> None:
    client = lab.docker()
    swarm_node = client.nodes.get(node.swarm_node_id)
    spec = swarm_node.attrs["Spec"]
    spec["Labels"] = {**(spec.get("Labels") or {}), DOCKER_URL_LABEL: url}
    swarm_node.update(spec)


async def test_figures_come_from_each_node_and_an_unreachable_node_gives_null_with_a_reason(
    swarm_lab: Any, tmp_path: Path
) -> None:
    name = app_name("mx")
    doc = swarm_app(swarm_lab, name)
    doc["spec"]["resources"] = {"cpu": "250m", "memory": "64Mi"}
    async with swarm_engine(swarm_lab, tmp_path / "state", metrics_interval=1.0) as engine:
        await engine.register(doc)
        await engine.up(name)
        await engine.scale(name, 3)
        replicas = await wait_for(
            lambda: _all_measured(engine, name, 3), timeout=90, what="cpu and memory of 3 replicas"
        )
        assert len({r.host for r in replicas}) >= 2, [r.host for r in replicas]
        for replica in replicas:
            assert 0 < replica.memory_percent < 100, replica  # of its 64Mi limit
            assert 0 <= replica.cpu_percent < 100, replica
            assert replica.figures_reason == ""

        # One node's API goes away (here: its label points where nothing answers).
        victim = next(n for n in swarm_lab.nodes if n.address in {r.host for r in replicas})
        away = f"tcp://{swarm_lab.controller_address}:1"
        _label_docker_url(swarm_lab, victim, away)
        try:
            gone = await wait_for(
                lambda: _unmeasured_on(engine, name, victim.address),
                timeout=60,
                what="null figures on the node",
            )
            for replica in gone:
                assert replica.cpu_percent is None and replica.memory_percent is None
                assert away in replica.figures_reason and "does not answer" in replica.figures_reason
            others = [r for r in await _replicas(engine, name) if r.host != victim.address]
            assert all(r.memory_percent is not None for r in others), others
            print(f"\nnode {victim.name} away: {gone[0].name} figures null because: {gone[0].figures_reason}")
        finally:
            _label_docker_url(swarm_lab, victim, victim.tcp_url)


async def _unmeasured_on(engine: Any, name: str, address: str) -> list[Any] | None:
    on_node = [r for r in await _replicas(engine, name) if r.host == address]
    if on_node and all(r.cpu_percent is None and r.figures_reason for r in on_node):
        return on_node
    return None
