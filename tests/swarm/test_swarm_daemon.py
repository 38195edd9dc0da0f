"""End to end as an operator runs it: a real ``orchestry daemon --runtime swarm`` process pointed at the
lab's manager with DOCKER_HOST, driven over its REST API and with the real CLI."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Daemon, start_daemon, stop_daemon
from tests.integration.harness import TrafficClient, wait_for
from tests.swarm.daemon_support import api, cli
from tests.swarm.engine_support import REPLICA, app_name, services_of, swarm_app
from tests.swarm.lab import SwarmLab


def _operator_env(lab: SwarmLab) -> dict[str, str]:
    """What the README tells an operator to set for a daemon on a Swarm (the flag sets the runtime)."""
    return {"DOCKER_HOST": lab.manager_url}


@pytest.fixture
def swarm_daemon(swarm_lab: SwarmLab, tmp_path: Path) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path, "--runtime", "swarm", env_extra=_operator_env(swarm_lab))
    try:
        yield daemon
    finally:
        stop_daemon(daemon)


async def _routed(daemon: Daemon, name: str, n: int) -> list[dict[str, Any]] | None:
    replicas = (await api(daemon, "GET", f"/api/v1/apps/{name}"))["replicas"]
    ready = [r for r in replicas if r["ready"]]
    return ready if len(ready) == n and len(replicas) == n else None


async def _answering(daemon: Daemon, name: str, wanted: set[str]) -> set[str]:
    """The replica names seen answering through the daemon's nginx (stops once all of ``wanted`` did)."""
    seen: set[str] = set()
    for _ in range(200):
        status, body = await asyncio.to_thread(_get, f"http://{daemon.lb}/{name}/")
        match = REPLICA.search(body) if status == 200 else None
        if match:
            seen.add(match.group(1))
        if wanted <= seen:
            break
    return seen


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except OSError:
        return 0, ""


async def test_daemon_on_swarm_scale_nodes_drain_and_delete(
    swarm_lab: SwarmLab, swarm_daemon: Daemon
) -> None:
    daemon = swarm_daemon
    name = app_name("e2e")
    operator = {**_operator_env(swarm_lab), "ORCHESTRY_RUNTIME": "swarm"}

    # `orchestry config` in the operator's environment names the Swarm runtime and its manager; the
    # daemon itself says it runs on Swarm (what the console's header shows).
    config = json.loads(await cli(daemon, "config", "--format", "json", **operator))
    assert (config["runtime"], config["docker_url"]) == ("swarm", swarm_lab.manager_url)
    assert (await api(daemon, "GET", "/api/v1/overview"))["runtime"] == "swarm"

    # Register and scale 1→4 over the REST API.
    created = await api(daemon, "POST", "/api/v1/apps", swarm_app(swarm_lab, name))
    assert created["created"] is True
    await api(daemon, "POST", f"/api/v1/apps/{name}/up")
    await wait_for(lambda: _routed(daemon, name, 1), timeout=90, what="1 replica routed")
    scaled = await api(daemon, "POST", f"/api/v1/apps/{name}/scale", {"replicas": 4})
    assert scaled["replicas"] == 4
    replicas = await wait_for(lambda: _routed(daemon, name, 4), timeout=90, what="4 replicas routed")
    assert len(services_of(swarm_lab, name)) == 4

    # Tasks on at least two nodes, as GET /api/v1/nodes counts them, agreeing with the replicas.
    nodes = (await api(daemon, "GET", "/api/v1/nodes"))["nodes"]
    tasks = {n["hostname"]: n["tasks"] for n in nodes}
    assert sum(tasks.values()) == 4 and sum(1 for t in tasks.values() if t) >= 2, tasks
    assert {r["node"] for r in replicas} == {h for h, t in tasks.items() if t}
    assert {n["address"] for n in nodes} == {node.address for node in swarm_lab.nodes}
    # Every replica answers through the daemon's nginx.
    names = {r["name"] for r in replicas}
    assert await _answering(daemon, name, names) == names

    # `orchestry nodes` lists every lab node with its tasks.
    listed = await cli(daemon, "nodes")
    for node in swarm_lab.nodes:
        assert node.netns in listed and node.address in listed

    # Drain a node that runs replicas, with the real CLI, under constant GET+POST traffic.
    victim = next(n for n in nodes if n["tasks"])
    async with TrafficClient(f"http://{daemon.lb}/{name}/", label="drain through the daemon") as traffic:
        await asyncio.sleep(1.0)
        drained = await cli(daemon, "node", "drain", victim["hostname"], "--timeout", "120")
        await asyncio.sleep(1.0)
    traffic.assert_none_failed(at_least=50)
    assert f"node {victim['hostname']} drained" in drained
    after = await wait_for(lambda: _routed(daemon, name, 4), timeout=60, what="4 replicas after the drain")
    assert victim["hostname"] not in {r["node"] for r in after}
    nodes = {n["hostname"]: n for n in (await api(daemon, "GET", "/api/v1/nodes"))["nodes"]}
    assert (nodes[victim["hostname"]]["availability"], nodes[victim["hostname"]]["tasks"]) == ("drain", 0)
    print(f"drained {victim['hostname']}: {drained.strip().splitlines()[-1]}")

    activated = await cli(daemon, "node", "activate", victim["hostname"])
    assert "active" in activated
    nodes = {n["hostname"]: n for n in (await api(daemon, "GET", "/api/v1/nodes"))["nodes"]}
    assert nodes[victim["hostname"]]["availability"] == "active"

    # Delete: no service of the app is left on the manager.
    await api(daemon, "DELETE", f"/api/v1/apps/{name}")
    await wait_for(
        lambda: asyncio.to_thread(lambda: not services_of(swarm_lab, name)),
        timeout=30,
        what="no Swarm service of the app left",
    )
