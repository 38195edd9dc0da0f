"""Pure translation between Orchestry's replicas and Swarm's services and tasks (no Docker calls).

One Swarm service per slot (``<app>-<slot>``, one replica): the engine keeps choosing which replica is
drained and stopped, and scale-in removes exactly the chosen slot's service.  A replica is one task of
that service; its ``ContainerInfo.id`` is the TASK id, so a task Swarm starts in place of a lost one is
a new replica, probed before it is routed, while the lost task's address leaves the upstream.

Tasks are read the way ``docker service ps`` reads them: the desired state says what Swarm wants, the
current state what it has; a task whose desired state is no longer ``running`` is on its way out even
when its (unreachable) node still reports it running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.runtime.base import (
    LABEL_APP,
    LABEL_CLUSTER,
    LABEL_HEALTH_PORT,
    LABEL_MANAGED,
    LABEL_PORT,
    LABEL_SLOT,
    LABEL_SPEC_HASH,
    STATE_PENDING,
    ContainerInfo,
    ContainerRequest,
)
from core.runtime.docker import parse_docker_time
from core.runtime.swarm_nodes import node_address, node_docker_url

# On a service Orchestry pinned to a spread value: the constraint it added, taken off again when the
# task cannot be placed there (its zone's last node was lost), so Swarm can reschedule it elsewhere.
LABEL_SPREAD_PIN = "orchestry.spread-pin"

# Task states after which a task never runs again.
ENDED_STATES = frozenset({"complete", "shutdown", "failed", "rejected", "orphaned", "remove"})
# Swarm restarts a failed task itself (node loss included) at once, a few times a minute; beyond that
# the task stays failed and Orchestry's own crash back-off takes the slot over.
RESTART_MAX_ATTEMPTS = 3
RESTART_WINDOW_NS = 60 * 1_000_000_000

# The scheduler's words for a task it cannot place (Status.Err of a pending task).
_UNPLACEABLE = ("no suitable node", "insufficient resources")


@dataclass(frozen=True)
class SwarmNode:
    """What a replica needs of the node its task runs on (the operator's view is NodeInfo)."""

    id: str
    hostname: str
    address: str  # where the controller reaches tasks published on this node
    docker_url: str | None  # the node's own Docker Engine API, from its orchestry.docker-url label


def swarm_node(raw: dict[str, Any]) -> SwarmNode:
    return SwarmNode(
        id=raw.get("ID", ""),
        hostname=(raw.get("Description") or {}).get("Hostname", ""),
        address=node_address(raw),
        docker_url=node_docker_url(raw),
    )


# ---------------------------------------------------------------------------------------------------
# replica → service
# ---------------------------------------------------------------------------------------------------


def service_labels(request: ContainerRequest, cluster_id: str | None) -> dict[str, str]:
    labels = {LABEL_MANAGED: "true", LABEL_APP: request.app, LABEL_SLOT: str(request.slot)}
    labels.update(request.labels)
    if request.container_port is not None:
        labels[LABEL_PORT] = str(request.container_port)
    if request.health_container_port is not None:
        labels[LABEL_HEALTH_PORT] = str(request.health_container_port)
    if cluster_id is not None:
        labels[LABEL_CLUSTER] = cluster_id
    return labels


def service_spec(
    request: ContainerRequest, cluster_id: str | None, image: str | None = None
) -> dict[str, Any]:
    """The Engine API's ServiceSpec for one slot (POST /services/create body); ``image``: the request's
    image pinned to a digest (swarm_images), when known.

    Ports are published in host mode on a port Docker picks per task (no PublishedPort): the routing
    mesh and VIPs need IPVS, which many kernels lack, so nothing here depends on them.
    """
    if request.container_port is None:
        raise ValueError(f"replica '{request.name}': a Swarm replica needs a container port")
    labels = service_labels(request, cluster_id)
    # The task's containers carry the app's identity for operators, but not orchestry.managed: a
    # single-host Orchestry on a node's own engine must never mistake them for its containers.
    container_labels = {k: v for k, v in labels.items() if k != LABEL_MANAGED}
    container: dict[str, Any] = {
        "Image": image or request.image,
        "Env": [f"{key}={value}" for key, value in sorted(request.environment.items())],
        "Labels": container_labels,
        # Without an init, a shell as PID 1 ignores SIGTERM and every stop waits out the grace period.
        "Init": True,
        "StopGracePeriod": request.stop_grace_seconds * 1_000_000_000,
    }
    if request.command:
        # The Docker runtime's command replaces the image's CMD and keeps its ENTRYPOINT: in Swarm's
        # terms that is Args (Command would replace the entrypoint).
        container["Args"] = list(request.command)
    targets = [request.container_port]
    if request.health_container_port is not None and request.health_container_port != request.container_port:
        targets.append(request.health_container_port)
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "RestartPolicy": {
            "Condition": "on-failure",
            "Delay": 0,
            "MaxAttempts": RESTART_MAX_ATTEMPTS,
            "Window": RESTART_WINDOW_NS,
        },
    }
    resources = _resources(request)
    if resources:
        task["Resources"] = resources
    placement = _placement(request)
    if placement:
        task["Placement"] = placement
    return {
        "Name": request.name,
        "Labels": labels,
        "TaskTemplate": task,
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {
            "Mode": "dnsrr",
            "Ports": [{"Protocol": "tcp", "TargetPort": port, "PublishMode": "host"} for port in targets],
        },
    }


def _resources(request: ContainerRequest) -> dict[str, Any]:
    """spec.resources are both the reservation (Swarm places a task only where it fits) and the limit."""
    amounts: dict[str, int] = {}
    if request.cpu_millis:
        amounts["NanoCPUs"] = request.cpu_millis * 1_000_000
    if request.memory_bytes:
        amounts["MemoryBytes"] = request.memory_bytes
    return {"Limits": dict(amounts), "Reservations": dict(amounts)} if amounts else {}


def _placement(request: ContainerRequest) -> dict[str, Any]:
    placement: dict[str, Any] = {}
    if request.placement_constraints:
        placement["Constraints"] = list(request.placement_constraints)
    if request.placement_spread:
        placement["Preferences"] = [
            {"Spread": {"SpreadDescriptor": descriptor}} for descriptor in request.placement_spread
        ]
    return placement


# ---------------------------------------------------------------------------------------------------
# service + tasks → replica
# ---------------------------------------------------------------------------------------------------


def published_ports(task: dict[str, Any]) -> dict[int, int]:
    """Target port → the port published for it on the task's node (host mode, TCP).

    Docker lists each binding twice (0.0.0.0 and ::) with the same numbers.
    """
    ports: dict[int, int] = {}
    for entry in ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []:
        if entry.get("Protocol", "tcp") != "tcp" or entry.get("PublishMode", "host") != "host":
            continue
        target, published = entry.get("TargetPort"), entry.get("PublishedPort")
        if target and published:
            ports.setdefault(int(target), int(published))
    return ports


def wants_running(task: dict[str, Any]) -> bool:
    return task.get("DesiredState") in ("running", "ready")


def task_state(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State", "new"))


def task_error(task: dict[str, Any]) -> str:
    status = task.get("Status") or {}
    return str(status.get("Err") or "")


def unplaceable_reason(task: dict[str, Any]) -> str | None:
    """Swarm's own words when the scheduler found no node for a task (it then stays pending)."""
    if not wants_running(task) or task_state(task) != "pending":
        return None
    error = task_error(task)
    return error if any(word in error.lower() for word in _UNPLACEABLE) else None


def unplaceable_fix(reason: str) -> str:
    lowered = reason.lower()
    fixes = []
    if "insufficient resources" in lowered:
        fixes.append(
            "lower spec.resources (cpu and memory are reserved on the node that runs each replica) or add "
            "nodes with that much free"
        )
    if "constraints not satisfied" in lowered or not fixes:
        fixes.append(
            "change spec.placement.constraints, or label a node to match (docker node update "
            "--label-add KEY=VALUE NODE; docker node ls / inspect show what the nodes have)"
        )
    if "not available for new tasks" in lowered:
        fixes.append(
            "bring back the nodes that are down, drained or paused "
            "(docker node ls; orchestry node activate NODE)"
        )
    return "; or ".join(fixes)


def _newest(tasks: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    ordered = sorted(
        tasks,
        key=lambda t: (
            (t.get("Version") or {}).get("Index", 0),
            parse_docker_time(t.get("CreatedAt")) or 0.0,
        ),
    )
    return ordered[-1] if ordered else None


def replica_task(tasks: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The task that stands for a slot's service now, and its replica state.

    ``running``: a task Swarm wants running that runs; ``pending``: one Swarm wants running that is
    still being placed, pulled or started (or being replaced by Swarm right now); ``exited``: none
    wants running any more (the last one ended and Swarm gave up restarting it).  A task whose
    desired state left ``running`` never counts as running, even if its node, cut off, still says so.
    """
    wanted = [t for t in tasks if wants_running(t)]
    running = [t for t in wanted if task_state(t) == "running"]
    if running:
        return _newest(running), "running"
    if wanted or not tasks:
        # Still starting, or ended a moment ago with Swarm about to replace it (it marks a task it gives
        # up on as desired-shutdown first, so "wanted but ended" is never final).
        return _newest(wanted), STATE_PENDING
    return _newest(tasks), "exited"


def replica_info(
    service: dict[str, Any], tasks: list[dict[str, Any]], nodes: dict[str, SwarmNode]
) -> ContainerInfo:
    """One slot's service and its tasks → the ContainerInfo the reconciler sees."""
    spec = service.get("Spec") or {}
    labels = dict(spec.get("Labels") or {})
    name = spec.get("Name", "")
    task, state = replica_task(tasks)
    serving = _int_label(labels, LABEL_PORT)
    health = _int_label(labels, LABEL_HEALTH_PORT)
    base = {
        "name": name,
        "app": labels.get(LABEL_APP, ""),
        "slot": _int_label(labels, LABEL_SLOT) or 0,
        "spec_hash": labels.get(LABEL_SPEC_HASH, ""),
        "labels": labels,
        "container_port": serving,
    }
    if task is None:  # a service Swarm has not made a task for yet
        return ContainerInfo(id=service.get("ID", ""), state=STATE_PENDING, host="", port=0, **base)
    status = task.get("Status") or {}
    node = nodes.get(task.get("NodeID", ""))
    published = published_ports(task)
    port = published.get(serving or 0, 0)
    if state == "running" and (node is None or not port):
        state = STATE_PENDING  # running but not reachable yet: no node address or no published port
    has_health = health is not None and health != serving and health in published
    unplaceable = unplaceable_reason(task)
    error = task_error(task) or (str(status.get("Message") or "") if state == "exited" else "")
    if unplaceable is not None:
        error = f"Swarm cannot place it: {unplaceable}. Fix: {unplaceable_fix(unplaceable)}"
    container_status = status.get("ContainerStatus") or {}
    exit_code = container_status.get("ExitCode") if state == "exited" else None
    return ContainerInfo(
        id=task.get("ID", ""),
        state=state,
        host=node.address if node is not None else "",
        port=port,
        health_port=published[health] if has_health and health is not None else None,
        health_container_port=health if has_health else None,
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        started_at=parse_docker_time(status.get("Timestamp")) if state == "running" else None,
        finished_at=parse_docker_time(status.get("Timestamp")) if state == "exited" else None,
        error=error,
        **base,
    )


def replaced_failures(
    service: dict[str, Any], tasks: list[dict[str, Any]], nodes: dict[str, SwarmNode], since: float
) -> list[ContainerInfo]:
    """The slot's tasks that failed after ``since`` (a time) and that Swarm has already replaced with a
    newer one (its restart policy restarts a failed task at once): each is a crash of the replica, as an
    exited container is under Docker, reported with its exit code and error.  Without them the
    reconciler saw the replica vanish and a new one appear, and counted no restart."""
    current, _state = replica_task(tasks)
    crashed = []
    for task in tasks:
        if task is current or task_state(task) != "failed" or wants_running(task):
            continue
        finished = parse_docker_time((task.get("Status") or {}).get("Timestamp"))
        if finished is None or finished < since:
            continue
        crashed.append(replica_info(service, [task], nodes))
    return crashed


def _int_label(labels: dict[str, str], key: str) -> int | None:
    try:
        return int(labels[key])
    except (KeyError, ValueError):
        return None


def task_container(task: dict[str, Any]) -> tuple[str, str] | None:
    """(node id, container id) of a task that has a container, for its node's stats."""
    container = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
    node = task.get("NodeID")
    return (node, container) if container and node else None


# ---------------------------------------------------------------------------------------------------
# spread across slots
# ---------------------------------------------------------------------------------------------------


def _label_value(node: dict[str, Any], descriptor: str) -> str | None:
    kind, _, key = descriptor.partition(".labels.")
    if kind == "node":
        labels = (node.get("Spec") or {}).get("Labels") or {}
    else:
        labels = ((node.get("Description") or {}).get("Engine") or {}).get("Labels") or {}
    value = labels.get(key)
    return str(value) if value is not None else None


def _node_attribute(node: dict[str, Any], attribute: str) -> str | None:
    if ".labels." in attribute:
        return _label_value(node, attribute)
    spec = node.get("Spec") or {}
    description = node.get("Description") or {}
    platform = description.get("Platform") or {}
    values = {
        "node.id": node.get("ID"),
        "node.hostname": description.get("Hostname"),
        "node.role": spec.get("Role"),
        "node.platform.os": platform.get("OS"),
        "node.platform.arch": platform.get("Architecture"),
    }
    value = values.get(attribute)
    return str(value) if value is not None else None


def satisfies(node: dict[str, Any], constraints: Iterable[str]) -> bool:
    """Whether a node meets Swarm constraints (spec.placement's normalised ATTRIBUTE==VALUE / != form)."""
    for constraint in constraints:
        equal = "==" in constraint
        attribute, _, wanted = constraint.partition("==" if equal else "!=")
        actual = _node_attribute(node, attribute)
        # Swarm compares case-insensitively; a missing attribute only satisfies "!=".
        same = actual is not None and actual.lower() == wanted.lower()
        if same != equal:
            return False
    return True


def spread_value(
    descriptor: str,
    nodes: list[dict[str, Any]],
    app_tasks: list[dict[str, Any]],
    starting: Iterable[str] = (),
    constraints: Iterable[str] = (),
) -> str | None:
    """The value of ``descriptor`` (node.labels.KEY / engine.labels.KEY) the app's next replica should go to.

    Swarm spreads the tasks of ONE service; each slot is its own service, so Swarm alone would not
    spread an app.  The value held by the fewest of the app's live tasks (plus ``starting``: values
    chosen for replicas being created right now), among ready, active nodes that carry the label, is
    chosen (ties: the value with more such nodes, then by name); None when no node carries it.
    """
    constraints = list(constraints)  # only nodes that meet the app's own constraints count
    eligible = [
        n
        for n in nodes
        if satisfies(n, constraints)
        and (n.get("Status") or {}).get("State") == "ready"
        and (n.get("Spec") or {}).get("Availability", "active") == "active"
        and _label_value(n, descriptor) is not None
    ]
    if not eligible:
        return None
    value_of = {n.get("ID", ""): _label_value(n, descriptor) for n in eligible}
    nodes_per_value: dict[str, int] = {}
    for value in value_of.values():
        if value is not None:
            nodes_per_value[value] = nodes_per_value.get(value, 0) + 1
    load = dict.fromkeys(nodes_per_value, 0)
    for task in app_tasks:
        value = value_of.get(task.get("NodeID", ""))
        if value is not None and wants_running(task) and task_state(task) not in ENDED_STATES:
            load[value] += 1
    for value in starting:
        if value in load:
            load[value] += 1
    return min(load, key=lambda value: (load[value], -nodes_per_value[value], value))


def unpinned(service: dict[str, Any]) -> dict[str, Any] | None:
    """The service's spec without the spread pin Orchestry added (None when it has none)."""
    spec = service.get("Spec") or {}
    labels = dict(spec.get("Labels") or {})
    pin = labels.pop(LABEL_SPREAD_PIN, None)
    if pin is None:
        return None
    template = dict(spec.get("TaskTemplate") or {})
    placement = dict(template.get("Placement") or {})
    placement["Constraints"] = [c for c in placement.get("Constraints") or [] if c != pin]
    template["Placement"] = placement
    return {**spec, "Labels": labels, "TaskTemplate": template}
