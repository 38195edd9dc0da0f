"""Swarm nodes from the manager's JSON: finding one, counting our tasks, reachability of node APIs."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest
import requests

from core.errors import BadRequest, Conflict, NotFound, RuntimeUnavailable
from core.runtime.swarm_nodes import (
    NodeApiProbe,
    check_availability,
    find_node,
    list_nodes,
    node_info,
    running_tasks_by_node,
    set_availability,
)


def raw_node(node_id: str, hostname: str, state: str = "ready", **extra: Any) -> dict[str, Any]:
    return {
        "ID": node_id,
        "Version": {"Index": 7},
        "Spec": {"Role": "worker", "Availability": "active", "Labels": extra.pop("labels", {})},
        "Description": {
            "Hostname": hostname,
            "Resources": {"NanoCPUs": 2_000_000_000, "MemoryBytes": 4 * 2**30},
            "Engine": {"EngineVersion": "20.10.24"},
        },
        "Status": {
            "State": state,
            "Addr": extra.pop("addr", "10.0.0.2"),
            "Message": extra.pop("message", ""),
        },
        **extra,
    }


def task(service: str, node: str, state: str = "running", desired: str = "running", cpus: int = 0) -> dict:
    resources = {"Reservations": {"NanoCPUs": cpus, "MemoryBytes": 64 * 2**20}} if cpus else {}
    return {
        "ServiceID": service,
        "NodeID": node,
        "DesiredState": desired,
        "Status": {"State": state},
        "Spec": {"Resources": resources},
    }


NODES = [raw_node("abc123", "n1"), raw_node("abd456", "n2"), raw_node("xyz789", "n3")]


def test_find_node_by_id_hostname_or_unique_prefix() -> None:
    assert find_node(NODES, "abd456")["ID"] == "abd456"
    assert find_node(NODES, "n3")["ID"] == "xyz789"
    assert find_node(NODES, "xy")["ID"] == "xyz789"
    with pytest.raises(Conflict, match="ambiguous"):
        find_node(NODES, "ab")
    with pytest.raises(NotFound, match="no node 'n9' in the Swarm: its nodes are n1, n2, n3"):
        find_node(NODES, "n9")
    with pytest.raises(BadRequest):
        find_node(NODES, " ")


def test_only_our_running_tasks_count_and_their_reservations_add_up() -> None:
    tasks = [
        task("ours", "abc123", cpus=500_000_000),
        task("ours", "abc123", cpus=250_000_000),
        task("ours", "abd456", state="preparing"),  # not running yet
        task("ours", "abd456", desired="shutdown"),  # being stopped
        task("theirs", "abd456"),  # another installation's service
    ]
    by_node = running_tasks_by_node([{"ID": "ours"}], tasks)
    assert {k: len(v) for k, v in by_node.items()} == {"abc123": 2}
    info = node_info(NODES[0], by_node["abc123"])
    assert (info.hostname, info.address, info.tasks, info.state) == ("n1", "10.0.0.2", 2, "ready")
    assert info.cpu_cores == 2.0 and info.memory_bytes == 4 * 2**30
    assert info.cpu_reserved_cores == 0.75 and info.memory_reserved_bytes == 128 * 2**20
    assert info.unavailable_reason == ""


def test_a_down_node_says_why_and_a_manager_on_0000_is_reached_at_its_manager_address() -> None:
    down = node_info(raw_node("a", "n1", state="down", message="heartbeat failure"), [])
    assert down.unavailable_reason == "Swarm reports the node down: heartbeat failure"
    manager = raw_node("m", "n0", addr="0.0.0.0", ManagerStatus={"Leader": True, "Addr": "10.9.0.11:2377"})
    info = node_info(manager, [])
    assert info.address == "10.9.0.11" and info.leader is True
    labelled = node_info(raw_node("l", "n5", labels={"orchestry.address": "192.0.2.5"}), [])
    assert labelled.address == "192.0.2.5"


def test_availability_must_be_one_swarm_knows() -> None:
    assert check_availability("pause") == "pause"
    with pytest.raises(BadRequest, match="use one of active, pause, drain"):
        check_availability("off")


def test_node_api_probe_names_the_fix_or_the_failure_and_asks_once_per_ttl() -> None:
    calls: list[str] = []
    now = [100.0]

    def ping(url: str, timeout: float) -> None:
        calls.append(url)
        if "bad" in url:
            raise requests.exceptions.ConnectionError("refused")

    probe = NodeApiProbe(ttl=10.0, ping=ping, clock=lambda: now[0])
    unlabelled = raw_node("a", "n1")
    assert "label it (docker node update --label-add orchestry.docker-url=" in probe.reason(unlabelled)
    good = raw_node("b", "n2", labels={"orchestry.docker-url": "tcp://good:2375"})
    bad = raw_node("c", "n3", labels={"orchestry.docker-url": "tcp://bad:2375"})
    assert probe.reason(good) == ""
    assert probe.reason(bad) == "node n3's Docker API at tcp://bad:2375 does not answer: ConnectionError"
    probe.reason(bad)
    assert calls == ["tcp://good:2375", "tcp://bad:2375"]  # the second ask came from the cache
    now[0] += 11
    probe.reason(bad)
    assert calls[-1] == "tcp://bad:2375" and len(calls) == 3


class RefusingManager:
    """The answers of an engine that is not a Swarm manager, and of a node removed meanwhile."""

    def nodes(self) -> list[dict[str, Any]]:
        response = requests.Response()
        response.status_code = 503
        raise docker.errors.APIError("503", response, explanation="This node is not a swarm manager.")

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return []


def test_a_manager_refusal_is_a_clear_unavailable_error_not_a_crash() -> None:
    with pytest.raises(
        RuntimeUnavailable, match="refused to list its nodes: This node is not a swarm manager"
    ):
        list_nodes(RefusingManager(), None, NodeApiProbe())  # type: ignore[arg-type]
    with pytest.raises(RuntimeUnavailable, match="refused to set a node to drain"):
        set_availability(RefusingManager(), "n1", "drain")  # type: ignore[arg-type]


def test_our_drain_in_progress_is_kept_on_the_node_and_shown_as_draining() -> None:
    from core.runtime.swarm_nodes import NODE_LABEL_DRAINING, _wanted_spec, availability_of

    node = raw_node("a", "n1")
    draining = {**node, "Spec": _wanted_spec(node, "draining", "cluster-1")}
    assert draining["Spec"]["Availability"] == "pause"
    assert draining["Spec"]["Labels"] == {NODE_LABEL_DRAINING: "cluster-1"}
    assert availability_of(draining, "cluster-1") == "draining"
    assert availability_of(draining, "cluster-2") == "pause"  # another installation's drain
    assert node_info(draining, [], cluster_id="cluster-1").availability == "draining"
    drained = _wanted_spec(draining, "drain", "cluster-1")
    assert drained["Availability"] == "drain" and NODE_LABEL_DRAINING not in drained["Labels"]
