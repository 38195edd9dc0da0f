"""Stopping one Swarm task: how long Swarm gives it, stopping it sooner, and knowing when it ended.

Swarm stops a task with the stop grace period copied into the task when it was created (the node's
agent calls ``ContainerStop`` with the task's own ``StopGracePeriod``); no manager call changes that for
a task that already runs: ``docker service update --stop-grace-period`` only reaches the tasks it
creates, and removing the service just sets the old task's desired state, which reached the lab's
nodes ~1.4 s later.  The engine of the node that runs the task can do both: ``docker stop -t N`` there
signals the container at once and kills it after N seconds, and returns when it has exited (the
agent's own stop then finds it stopped).  That engine is the one the metrics already use (the node's
``orchestry.docker-url`` label, or ORCHESTRY_SWARM_NODE_DOCKER_URLS).  A node without one cannot be
asked: its task ends when Swarm stops it, with its own grace period.

A removed service's task is no longer listed by service (the manager answers 404 for the service) but
still is by its own id, with desired state ``remove``, until its node reports it ended: that is what a
stop without a node engine waits for.
"""

from __future__ import annotations

import math
from typing import Any

import docker.errors
import requests.exceptions
from docker import APIClient

from core.runtime.docker_calls import _root_cause
from core.runtime.swarm_nodes import api_unreachable
from core.runtime.swarm_spec import ENDED_STATES, SwarmNode, task_container, task_state

# Docker's own default when a container names none (Swarm leaves StopGracePeriod unset then).
DEFAULT_GRACE_SECONDS = 10.0
# Beyond the grace period, how long a stop waits for the task's node to report it ended.
REPORT_MARGIN_SECONDS = 10.0


def task_by_id(api: APIClient, task_id: str) -> dict[str, Any] | None:
    """The task as the manager lists it now (also after its service was removed); None once gone."""
    try:
        tasks = api.tasks(filters={"id": task_id})
    except docker.errors.NotFound:
        return None
    return next((t for t in tasks if t.get("ID") == task_id), None)


def grace_seconds(task: dict[str, Any]) -> float:
    """The stop grace period Swarm gives this task (fixed when Swarm created it)."""
    spec = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("StopGracePeriod")
    return spec / 1e9 if isinstance(spec, int | float) else DEFAULT_GRACE_SECONDS


def stop_outcome(task: dict[str, Any] | None, node_ready: bool, grace: float) -> str | None:
    """How a stop that did not go through the node's engine ended, in the operator's words; None
    while it has not (the task still runs on a node that answers)."""
    if task is None or task_state(task) in ENDED_STATES:
        return f"Swarm stopped it with its own {grace:g} s grace"
    if not node_ready:
        # Nothing reports on a node that is down; Swarm has already replaced or dropped the task.
        return "its node is down: Swarm stops it once the node is back"
    return None


def stop_on_node(
    client: APIClient | None, url: str | None, node: SwarmNode, task: dict[str, Any], timeout: float
) -> str | None:
    """Stop the task's container through its node's own engine with ``timeout``; None when done, else
    why it could not be (the task then ends with its own grace period)."""
    where = task_container(task)
    if where is None:
        return None  # no container yet: removing the service is all it takes
    if client is None or url is None:
        return (
            f"node {node.hostname} has no Docker API address for Orchestry (label it: docker node update "
            f"--label-add orchestry.docker-url=tcp://ADDR:2376 {node.hostname})"
        )
    try:
        client.stop(where[1], timeout=max(0, math.ceil(timeout)))
    except docker.errors.NotFound:
        return None  # it ended (and was removed) meanwhile
    except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
        return api_unreachable(node.hostname, url, exc, _root_cause(exc))
    return None
