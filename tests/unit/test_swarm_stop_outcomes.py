"""The pure parts of stopping a Swarm task (core/runtime/swarm_stops.py): its grace period, what the
operator is told when the node's engine could not stop it, and when there is no engine to ask."""

from __future__ import annotations

from typing import Any

from core.runtime.swarm_spec import SwarmNode
from core.runtime.swarm_stops import DEFAULT_GRACE_SECONDS, grace_seconds, stop_on_node, stop_outcome

NODE = SwarmNode(id="n2", hostname="node-2", address="10.0.0.12", docker_url=None)


def _task(state: str = "running", grace_ns: int | None = 30_000_000_000) -> dict[str, Any]:
    spec: dict[str, Any] = {"ContainerSpec": {"Image": "demo"}}
    if grace_ns is not None:
        spec["ContainerSpec"]["StopGracePeriod"] = grace_ns
    return {
        "ID": "t1",
        "NodeID": "n2",
        "Spec": spec,
        "Status": {"State": state, "ContainerStatus": {"ContainerID": "c1"}},
    }


def test_the_grace_period_is_the_tasks_own_or_dockers_default() -> None:
    assert grace_seconds(_task()) == 30.0
    assert grace_seconds(_task(grace_ns=None)) == DEFAULT_GRACE_SECONDS


def test_a_stop_is_over_when_the_task_ended_or_went_and_says_so_when_its_node_is_down() -> None:
    assert stop_outcome(_task(), node_ready=True, grace=30) is None
    assert stop_outcome(_task("shutdown"), node_ready=True, grace=30) == (
        "Swarm stopped it with its own 30 s grace"
    )
    assert stop_outcome(None, node_ready=True, grace=30) == "Swarm stopped it with its own 30 s grace"
    assert stop_outcome(_task(), node_ready=False, grace=30) == (
        "its node is down: Swarm stops it once the node is back"
    )


def test_a_node_without_a_docker_api_address_is_named_with_the_label_that_fixes_it() -> None:
    why = stop_on_node(None, None, NODE, _task(), timeout=2)
    assert why is not None
    assert "node node-2 has no Docker API address" in why
    assert "docker node update --label-add orchestry.docker-url=tcp://ADDR:2376 node-2" in why


def test_a_task_without_a_container_needs_no_engine() -> None:
    task = _task()
    task["Status"].pop("ContainerStatus")
    assert stop_on_node(None, None, NODE, task, timeout=2) is None
