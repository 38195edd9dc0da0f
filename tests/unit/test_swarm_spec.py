"""Pure Swarm translation: replica request → service spec, service + tasks → replica, task changes →
runtime events, and spec.placement validation."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import SpecError
from core.runtime.base import EVENT_CHANGED, STATE_PENDING, ContainerRequest
from core.runtime.swarm_events import Snapshot, task_changes, task_views
from core.runtime.swarm_spec import (
    SwarmNode,
    published_ports,
    replaced_failures,
    replica_info,
    service_spec,
    spread_value,
    unpinned,
    unplaceable_fix,
    unplaceable_reason,
)
from core.spec import parse_app_spec

NODES = {
    "n1": SwarmNode("n1", "host1", "10.0.0.11", "tcp://10.0.0.11:2375"),
    "n2": SwarmNode("n2", "host2", "10.0.0.12", None),
}


def request(**changes: Any) -> ContainerRequest:
    values: dict[str, Any] = {
        "app": "web",
        "slot": 3,
        "name": "web-3",
        "image": "reg:5000/demo:1",
        "command": ["httpd", "-f", "-p", "8080"],
        "environment": {"PORT": "8080", "B": "2"},
        "labels": {"orchestry.spec-hash": "abc", "orchestry.term": "4"},
        "host_port": 0,
        "container_port": 8080,
        "network_mode": "bridge",
        "stop_grace_seconds": 7,
    }
    values.update(changes)
    return ContainerRequest(**values)


def service(slot: int = 3, labels: dict[str, str] | None = None) -> dict[str, Any]:
    base = {
        "orchestry.managed": "true",
        "orchestry.app": "web",
        "orchestry.slot": str(slot),
        "orchestry.spec-hash": "abc",
        "orchestry.port": "8080",
    }
    return {"ID": f"svc{slot}", "Spec": {"Name": f"web-{slot}", "Labels": {**base, **(labels or {})}}}


def task(
    task_id: str,
    state: str,
    desired: str = "running",
    node: str = "n2",
    ports: list[tuple[int, int]] | None = None,
    err: str = "",
    index: int = 1,
    exit_code: int | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Timestamp": "2026-11-29T10:00:00.5Z"}
    if err:
        status["Err"] = err
    if ports:
        # Docker lists each host-mode binding twice (0.0.0.0 and ::).
        status["PortStatus"] = {
            "Ports": [
                {"Protocol": "tcp", "TargetPort": t, "PublishedPort": p, "PublishMode": "host"}
                for t, p in ports
                for _ in range(2)
            ]
        }
    status["ContainerStatus"] = {"ContainerID": f"c-{task_id}", "ExitCode": exit_code or 0}
    return {
        "ID": task_id,
        "ServiceID": "svc3",
        "NodeID": node,
        "DesiredState": desired,
        "Status": status,
        "Version": {"Index": index},
    }


# --- request → service spec ---------------------------------------------------------------------


def test_service_spec_is_one_host_published_replica_with_the_same_labels() -> None:
    spec = service_spec(request(), cluster_id="cluster-1")
    assert spec["Name"] == "web-3"
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    assert spec["Labels"]["orchestry.cluster"] == "cluster-1"
    assert spec["Labels"]["orchestry.managed"] == "true"
    assert spec["Labels"]["orchestry.slot"] == "3"
    assert spec["Labels"]["orchestry.spec-hash"] == "abc"
    # No routing mesh, no VIP: DNS round robin and a per-task port on the task's own node.
    assert spec["EndpointSpec"] == {
        "Mode": "dnsrr",
        "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"}],
    }
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Init"] is True
    assert container["Args"] == ["httpd", "-f", "-p", "8080"] and "Command" not in container
    assert container["Env"] == ["B=2", "PORT=8080"]
    assert container["StopGracePeriod"] == 7_000_000_000
    # A single-host Orchestry on a node's engine must never adopt a task's container.
    assert "orchestry.managed" not in container["Labels"]
    assert container["Labels"]["orchestry.app"] == "web"
    assert spec["TaskTemplate"]["RestartPolicy"]["Delay"] == 0
    assert "Placement" not in spec["TaskTemplate"] and "Resources" not in spec["TaskTemplate"]


def test_resources_are_reserved_and_limited_and_placement_is_swarms() -> None:
    spec = service_spec(
        request(
            cpu_millis=500,
            memory_bytes=256 * 1024**2,
            placement_constraints=("node.role==worker",),
            placement_spread=("node.labels.zone",),
        ),
        cluster_id=None,
    )
    amounts = {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 1024**2}
    assert spec["TaskTemplate"]["Resources"] == {"Limits": amounts, "Reservations": amounts}
    assert spec["TaskTemplate"]["Placement"] == {
        "Constraints": ["node.role==worker"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
    }
    assert "orchestry.cluster" not in spec["Labels"]


def test_a_separate_health_port_is_published_too() -> None:
    spec = service_spec(request(health_container_port=9090, health_host_port=1), cluster_id=None)
    assert [p["TargetPort"] for p in spec["EndpointSpec"]["Ports"]] == [8080, 9090]
    assert spec["Labels"]["orchestry.health-port"] == "9090"


def test_a_replica_without_a_container_port_is_refused() -> None:
    with pytest.raises(ValueError, match="container port"):
        service_spec(request(container_port=None), cluster_id=None)


# --- service + tasks → replica -------------------------------------------------------------------


def test_a_running_task_is_reached_at_its_node_address_and_published_port() -> None:
    info = replica_info(service(), [task("t1", "running", ports=[(8080, 30001)])], NODES)
    assert (info.id, info.state, info.host, info.port) == ("t1", "running", "10.0.0.12", 30001)
    assert (info.app, info.slot, info.name, info.spec_hash) == ("web", 3, "web-3", "abc")
    assert info.container_port == 8080
    assert info.started_at is not None


def test_a_task_swarm_shut_down_is_never_the_replica_even_if_its_lost_node_says_running() -> None:
    # Node n2 was lost: Swarm wants the old task shut down (its node cannot say so) and runs a new one.
    old = task("old", "running", desired="shutdown", ports=[(8080, 30001)], index=5)
    new = task("new", "running", node="n1", ports=[(8080, 30002)], index=9)
    info = replica_info(service(), [old, new], NODES)
    assert (info.id, info.host, info.port) == ("new", "10.0.0.11", 30002)


def test_a_replacement_still_starting_is_pending_not_dead() -> None:
    old = task("old", "running", desired="shutdown", ports=[(8080, 30001)])
    new = task("new", "preparing", node="n1")
    info = replica_info(service(), [old, new], NODES)
    assert (info.id, info.state, info.port) == ("new", STATE_PENDING, 0)
    assert not info.running


def test_a_failed_task_swarm_is_about_to_restart_is_pending() -> None:
    info = replica_info(service(), [task("t1", "failed", exit_code=1)], NODES)
    assert info.state == STATE_PENDING


def test_a_slot_swarm_gave_up_on_is_dead_with_its_exit_code() -> None:
    tasks = [
        task("t1", "failed", desired="shutdown", exit_code=1, index=1),
        task("t2", "failed", desired="shutdown", exit_code=2, err="task: non-zero exit (2)", index=4),
    ]
    info = replica_info(service(), tasks, NODES)
    assert (info.id, info.state, info.exit_code) == ("t2", "exited", 2)
    assert "non-zero exit" in info.error


# 2026-11-29T10:00:00.5Z, when every task() ended
ENDED_AT = 1795946400.5


def test_a_failed_task_swarm_restarted_in_its_slot_is_a_crash_with_its_exit_code() -> None:
    failed = task("t1", "failed", desired="shutdown", exit_code=137, err="task: non-zero exit (137)", index=1)
    restarted = task("t2", "running", ports=[(8080, 30002)], index=4)
    (crash,) = replaced_failures(service(), [failed, restarted], NODES, since=ENDED_AT - 1)
    assert (crash.id, crash.state, crash.exit_code, crash.slot) == ("t1", "exited", 137, 3)
    assert replica_info(service(), [failed, restarted], NODES).id == "t2"
    # Ended before the runtime began (a previous controller's to report), or being restarted right now
    # (it still stands for the slot), or shut down by Orchestry: no crash.
    assert replaced_failures(service(), [failed, restarted], NODES, since=ENDED_AT + 1) == []
    assert replaced_failures(service(), [task("t1", "failed", exit_code=1)], NODES, since=0) == []
    stopped = task("t1", "shutdown", desired="shutdown", index=1)
    assert replaced_failures(service(), [stopped, restarted], NODES, since=0) == []


def test_the_task_of_a_slot_swarm_gave_up_on_is_the_replica_not_an_extra_crash() -> None:
    tasks = [task("t1", "failed", desired="shutdown", exit_code=1, index=1)]
    assert replaced_failures(service(), tasks, NODES, since=0) == []


def test_a_service_without_any_task_yet_is_pending_under_its_own_id() -> None:
    info = replica_info(service(), [], NODES)
    assert (info.id, info.state) == ("svc3", STATE_PENDING)


def test_a_running_task_on_an_unknown_node_or_without_its_port_is_not_reachable_yet() -> None:
    assert replica_info(service(), [task("t1", "running", node="gone", ports=[(8080, 1)])], NODES).state == (
        STATE_PENDING
    )
    assert replica_info(service(), [task("t1", "running")], NODES).state == STATE_PENDING


def test_published_ports_ignore_the_duplicate_listing_and_other_modes() -> None:
    raw = task("t", "running", ports=[(8080, 30001), (9090, 30002)])
    raw["Status"]["PortStatus"]["Ports"].append(
        {"Protocol": "tcp", "TargetPort": 7070, "PublishedPort": 30000, "PublishMode": "ingress"}
    )
    assert published_ports(raw) == {8080: 30001, 9090: 30002}


def test_the_health_port_is_its_own_published_port() -> None:
    svc = service(labels={"orchestry.health-port": "9090"})
    info = replica_info(svc, [task("t", "running", ports=[(8080, 30001), (9090, 30002)])], NODES)
    assert (info.port, info.health_port, info.health_container_port) == (30001, 30002, 9090)


# --- unplaceable tasks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "fix"),
    [
        ("no suitable node (scheduling constraints not satisfied on 3 nodes)", "spec.placement.constraints"),
        ("no suitable node (insufficient resources on 3 nodes)", "lower spec.resources"),
    ],
)
def test_an_unplaceable_task_names_swarms_reason_and_the_fix(err: str, fix: str) -> None:
    reason = unplaceable_reason(task("t", "pending", err=err))
    assert reason == err
    assert fix in unplaceable_fix(reason)


def test_a_pending_task_without_a_scheduler_error_is_not_unplaceable() -> None:
    assert unplaceable_reason(task("t", "pending")) is None
    assert unplaceable_reason(task("t", "running", err="no suitable node")) is None


# --- task changes → runtime events ---------------------------------------------------------------


def _views(*tasks: dict[str, Any]) -> dict[str, Any]:
    snapshot = Snapshot(services=[service()], tasks={"svc3": list(tasks)}, nodes=NODES)
    return task_views(snapshot)


def test_a_live_task_that_swarm_shuts_down_is_a_death_and_its_replacement_a_change() -> None:
    before = _views(task("old", "running", ports=[(8080, 1)]))
    after = _views(task("old", "running", desired="shutdown", ports=[(8080, 1)]), task("new", "pending"))
    events = task_changes(before, after, now=1.0)
    assert [(e.action, e.container_id, e.app, e.slot) for e in events] == [
        ("die", "old", "web", 3),
        (EVENT_CHANGED, "", "web", 3),
    ]


def test_a_replacement_that_starts_running_is_a_change_and_nothing_is_said_twice() -> None:
    pending = _views(task("new", "starting"))
    running = _views(task("new", "running", ports=[(8080, 1)]))
    assert [e.action for e in task_changes(pending, running, now=1.0)] == [EVENT_CHANGED]
    assert task_changes(running, running, now=2.0) == []


def test_a_task_that_vanished_with_its_service_is_a_death() -> None:
    before = _views(task("t", "running", ports=[(8080, 1)]))
    assert [e.action for e in task_changes(before, {}, now=1.0)] == ["die"]


# --- spec.placement ------------------------------------------------------------------------------


def _document(placement: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "spec": {"image": "demo", "placement": placement}}


def test_placement_in_swarms_syntax_is_accepted_and_normalised() -> None:
    spec = parse_app_spec(
        _document(
            {
                "constraints": ["node.role == worker", "node.labels.zone!=b"],
                "preferences": [{"spread": "node.labels.zone"}],
            }
        )
    )
    placement = spec.container.placement
    assert placement is not None
    assert placement.constraints == ["node.role==worker", "node.labels.zone!=b"]
    assert [p.spread for p in placement.preferences] == ["node.labels.zone"]


def test_a_spec_without_placement_keeps_its_container_hash() -> None:
    plain = parse_app_spec({"metadata": {"name": "web"}, "spec": {"image": "demo"}})
    assert "placement" not in plain.to_document()["spec"]


@pytest.mark.parametrize(
    ("placement", "field", "words"),
    [
        ({"constraints": ["node.rol==worker"]}, "spec.placement.constraints[0]", "is not a Swarm constraint"),
        ({"constraints": ["node.role==boss"]}, "spec.placement.constraints[0]", "use manager or worker"),
        ({"constraints": ["node.labels.zone"]}, "spec.placement.constraints[0]", "ATTRIBUTE==VALUE"),
        ({"preferences": [{"spread": "zone"}]}, "spec.placement.preferences[0].spread", "node.labels.KEY"),
        ({"constraint": ["node.role==worker"]}, "spec.placement.constraint", "constraints"),
    ],
)
def test_bad_placement_names_the_field_and_the_fix(placement: Any, field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_app_spec(_document(placement))
    assert field in str(caught.value)
    assert words in str(caught.value)


def test_a_replacement_swarm_cannot_place_carries_swarms_reason_and_the_fix() -> None:
    old = task("old", "running", desired="shutdown", ports=[(8080, 30001)])
    stuck = task("new", "pending", node="", err="no suitable node (insufficient resources on 2 nodes)")
    info = replica_info(service(), [old, stuck], NODES)
    assert info.state == STATE_PENDING
    assert "Swarm cannot place it: no suitable node (insufficient resources on 2 nodes)" in info.error
    assert "lower spec.resources" in info.error


# --- spread over a label across an app's slots ----------------------------------------------------


def _node(
    node_id: str, zone: str | None, state: str = "ready", availability: str = "active"
) -> dict[str, Any]:
    labels = {"zone": zone} if zone is not None else {}
    return {
        "ID": node_id,
        "Spec": {"Availability": availability, "Labels": labels},
        "Status": {"State": state},
    }


def test_spread_picks_the_value_holding_the_fewest_of_the_apps_replicas() -> None:
    nodes = [_node("a1", "a"), _node("a2", "a"), _node("b1", "b"), _node("x", None)]
    assert spread_value("node.labels.zone", nodes, []) == "a"  # tie: the value with more nodes
    tasks = [task("t1", "running", node="a1"), task("t2", "running", node="a2")]
    assert spread_value("node.labels.zone", nodes, tasks) == "b"
    # Replicas being created right now count: a scale-out creating several at once spreads them too.
    assert spread_value("node.labels.zone", nodes, tasks, starting=["b", "b"]) == "a"
    # A task on its way out does not hold its zone.
    gone = [task("t1", "running", desired="shutdown", node="b1"), *tasks]
    assert spread_value("node.labels.zone", nodes, gone) == "b"


def test_spread_ignores_nodes_that_take_no_new_tasks_and_labels_nobody_has() -> None:
    nodes = [_node("a1", "a"), _node("b1", "b", state="down"), _node("c1", "c", availability="drain")]
    assert spread_value("node.labels.zone", nodes, [task("t", "running", node="a1")]) == "a"
    assert spread_value("node.labels.rack", nodes, []) is None


def test_unpinning_takes_off_only_the_constraint_orchestry_added() -> None:
    pinned = {
        "ID": "s",
        "Spec": {
            "Name": "web-3",
            "Labels": {"orchestry.app": "web", "orchestry.spread-pin": "node.labels.zone==b"},
            "TaskTemplate": {"Placement": {"Constraints": ["node.role==worker", "node.labels.zone==b"]}},
        },
    }
    spec = unpinned(pinned)
    assert spec is not None
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.role==worker"]
    assert spec["Labels"] == {"orchestry.app": "web"}
    assert unpinned({"ID": "s", "Spec": {"Labels": {"orchestry.app": "web"}}}) is None


def test_spread_only_counts_nodes_that_meet_the_apps_constraints() -> None:
    manager = {**_node("m", "a"), "Spec": {"Role": "manager", "Labels": {"zone": "a"}}}
    workers = [
        {**_node(f"w{i}", zone), "Spec": {"Role": "worker", "Labels": {"zone": zone}}}
        for i, zone in ((1, "b"), (2, "c"))
    ]
    nodes = [manager, *workers]
    assert spread_value("node.labels.zone", nodes, [], constraints=["node.role==worker"]) == "b"
    taken = [task("t", "running", node="w1")]
    assert spread_value("node.labels.zone", nodes, taken, constraints=["node.role==worker"]) == "c"
    assert (
        spread_value("node.labels.zone", nodes, [], constraints=["node.labels.zone!=b", "node.role!=manager"])
        == "c"
    )
