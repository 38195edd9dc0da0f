"""Placement and resources on the Swarm lab: constraints Swarm honours, and a spec Swarm cannot place
gives the app a status naming Swarm's reason and the fix, with nothing left half-created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.errors import AppBlocked
from core.models import APP_ERROR
from tests.integration.harness import wait_for
from tests.swarm.engine_support import app_name, ready_hosts, services_of, swarm_app, swarm_engine


async def test_a_constraint_keeps_every_replica_on_the_nodes_it_names(swarm_lab: Any, tmp_path: Path) -> None:
    name = app_name("pl")
    doc = swarm_app(swarm_lab, name)
    doc["spec"]["placement"] = {
        "constraints": ["node.role==worker"],
        "preferences": [{"spread": "node.labels.orchestry.docker-url"}],
    }
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(doc)
        await engine.up(name)
        await engine.scale(name, 4)
        await wait_for(lambda: _ready_count(engine, name, 4), timeout=90, what="4 replicas ready")
        hosts = await ready_hosts(engine, name)
    workers = {n.address for n in swarm_lab.workers}
    assert set(hosts) <= workers, f"a replica ran on the manager: {hosts}"
    # Spread over the label every node has a different value of: the workers get two each (Swarm spreads
    # one service's tasks; each slot is its own service, so Orchestry picks the value for each slot).
    assert sorted(hosts.count(address) for address in workers) == [2, 2], hosts


@pytest.mark.parametrize(
    ("change", "swarm_words", "fix_words"),
    [
        (
            {"placement": {"constraints": ["node.labels.zone==nowhere"]}},
            "scheduling constraints not satisfied",
            "spec.placement.constraints",
        ),
        ({"resources": {"memory": "200Gi"}}, "insufficient resources", "lower spec.resources"),
    ],
    ids=["constraint-no-node-meets", "reservation-larger-than-any-node"],
)
async def test_an_unplaceable_spec_says_why_and_creates_nothing(
    swarm_lab: Any, tmp_path: Path, change: dict[str, Any], swarm_words: str, fix_words: str
) -> None:
    name = app_name("un")
    doc = swarm_app(swarm_lab, name)
    doc["spec"].update(change)
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(doc)
        with pytest.raises(AppBlocked) as refused:
            await engine.up(name)
        assert swarm_words in str(refused.value)
        view = await wait_for(lambda: _errored(engine, name), timeout=60, what="the app's error status")
        print(f"\n{name}: {view.status}: {view.status_reason}")
        assert "Swarm cannot place" in view.status_reason
        assert swarm_words in view.status_reason
        assert fix_words in view.status_reason
        assert view.ready_replicas == 0
        # Nothing half-created: no service of the app is left on the Swarm.
        await wait_for(lambda: not services_of(swarm_lab, name), timeout=10, what="no service left")


async def _ready_count(engine: Any, name: str, n: int) -> bool:
    return (await engine.get_app(name)).ready_replicas == n


async def _errored(engine: Any, name: str) -> Any:
    view = await engine.get_app(name)
    return view if view.status == APP_ERROR else None


async def test_a_lost_replica_swarm_cannot_place_elsewhere_shows_swarms_reason(
    swarm_lab: Any, tmp_path: Path
) -> None:
    worker = swarm_lab.workers[0]
    hostname = swarm_lab.docker().nodes.get(worker.swarm_node_id).attrs["Description"]["Hostname"]
    name = app_name("pin")
    doc = swarm_app(swarm_lab, name)
    doc["spec"]["placement"] = {"constraints": [f"node.hostname=={hostname}"]}
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(doc)
        await engine.up(name)
        await wait_for(lambda: _ready_count(engine, name, 1), timeout=60, what="1 replica ready")
        swarm_lab.cut_link(worker)
        seen: list[str] = []  # the statuses on the way, for the message when Swarm's reason never comes
        try:
            try:
                view = await wait_for(
                    lambda: _says_no_node(engine, name, seen), timeout=60, what="Swarm's reason in the status"
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}; statuses seen: {seen}") from None
            print(f"\n{name}: {view.status}: {view.status_reason}")
            assert "Fix:" in view.status_reason
        finally:
            swarm_lab.restore_link(worker)
        # Back on the network, the node takes the pending task: the app is served again.
        await wait_for(lambda: _ready_count(engine, name, 1), timeout=90, what="the replica back on its node")


async def _says_no_node(engine: Any, name: str, seen: list[str]) -> Any:
    view = await engine.get_app(name)
    status = f"{view.status}: {view.status_reason}"
    if not seen or seen[-1] != status:
        seen.append(status)
    return view if view.status != APP_ERROR and "no suitable node" in view.status_reason else None


def _set_zone(lab: Any, node: Any, zone: str | None) -> None:
    swarm_node = lab.docker().nodes.get(node.swarm_node_id)
    spec = swarm_node.attrs["Spec"]
    labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k != "zone"}
    if zone is not None:
        labels["zone"] = zone
    swarm_node.update({**spec, "Labels": labels})


async def test_a_spread_preference_spreads_the_apps_replicas_over_the_labels_values(
    swarm_lab: Any, tmp_path: Path
) -> None:
    """Two nodes in zone a, one in zone b that already runs another app's three replicas: six replicas
    go three and three.  (Swarm spreads the tasks of one service, and balances all tasks per node: on
    its own it would put most of them in zone a.)"""
    zones = {
        node.name: ("b" if index == len(swarm_lab.nodes) - 1 else "a")
        for index, node in enumerate(swarm_lab.nodes)
    }
    alone = next(node for node in swarm_lab.nodes if zones[node.name] == "b")
    name = app_name("zn")
    doc = swarm_app(swarm_lab, name)
    doc["spec"]["placement"] = {"preferences": [{"spread": "node.labels.zone"}]}
    for node in swarm_lab.nodes:
        _set_zone(swarm_lab, node, zones[node.name])
    try:
        async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
            ballast = app_name("zb")
            weight = swarm_app(swarm_lab, ballast)
            weight["spec"]["placement"] = {"constraints": ["node.labels.zone==b"]}
            await engine.register(weight)
            await engine.up(ballast)
            await engine.scale(ballast, 3)
            await wait_for(lambda: _ready_count(engine, ballast, 3), timeout=90, what="3 ballast replicas")
            await engine.register(doc)
            await engine.up(name)
            await engine.scale(name, 6)
            await wait_for(lambda: _ready_count(engine, name, 6), timeout=90, what="6 replicas ready")
            hosts = await ready_hosts(engine, name)
    finally:
        for node in swarm_lab.nodes:
            _set_zone(swarm_lab, node, None)
    assert hosts.count(alone.address) == 3, hosts


async def test_a_replica_spread_to_a_lost_zone_is_rescheduled_in_another(
    swarm_lab: Any, tmp_path: Path
) -> None:
    """Spreading never keeps a replica from running: the one pinned to zone b, whose only node is lost,
    is unpinned and Swarm places it in zone a."""
    alone = swarm_lab.workers[-1]
    name = app_name("zl")
    doc = swarm_app(swarm_lab, name)
    doc["spec"]["placement"] = {"preferences": [{"spread": "node.labels.zone"}]}
    for node in swarm_lab.nodes:
        _set_zone(swarm_lab, node, "b" if node.name == alone.name else "a")
    try:
        async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
            await engine.register(doc)
            await engine.up(name)
            await engine.scale(name, 2)
            await wait_for(lambda: _ready_count(engine, name, 2), timeout=90, what="2 replicas ready")
            assert alone.address in await ready_hosts(engine, name)
            swarm_lab.cut_link(alone)
            try:
                await wait_for(
                    lambda: _ready_elsewhere(engine, name, 2, alone.address),
                    timeout=90,
                    what="both replicas ready outside the lost zone",
                )
            finally:
                swarm_lab.restore_link(alone)
    finally:
        for node in swarm_lab.nodes:
            _set_zone(swarm_lab, node, None)


async def _ready_elsewhere(engine: Any, name: str, n: int, address: str) -> bool:
    hosts = await ready_hosts(engine, name)
    return len(hosts) == n and address not in hosts
