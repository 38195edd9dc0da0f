"""Blocking calls of the Swarm runtime on a manager's Docker API (each runs in a worker thread)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker.errors
import requests.exceptions
import urllib3.exceptions
from docker import APIClient

from core.errors import Conflict, ContainerStartError, ForeignContainer, ImageNotFound, OrchestryError
from core.runtime.base import LABEL_CLUSTER, LABEL_MANAGED, ContainerInfo, ContainerRequest, LogLine
from core.runtime.docker_calls import _explanation
from core.runtime.docker_tls import tls_for as tls_for  # the runtime's manager client uses it
from core.runtime.docker_wire import split_log_line
from core.runtime.swarm_spec import (
    SwarmNode,
    replica_info,
    replica_task,
    service_spec,
    swarm_node,
    task_error,
    task_state,
    unplaceable_fix,
    unplaceable_reason,
    wants_running,
)

log = logging.getLogger(__name__)

# Whether a service's labels say it belongs to this installation.
Ours = Callable[[dict[str, str]], bool]


def remove_service_quietly(api: APIClient, service_id: str) -> None:
    try:
        api.remove_service(service_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        log.warning("removing Swarm service %s failed: %s", service_id[:12], _explanation(exc))


def start_failure(api: APIClient, task: dict[str, Any], request: ContainerRequest) -> Exception:
    error = task_error(task) or str((task.get("Status") or {}).get("Message") or "")
    lowered = error.lower()
    if any(
        word in lowered
        for word in ("no such image", "pull access denied", "manifest unknown", "not found: manifest")
    ):
        return ImageNotFound(
            f"image '{request.image}' could not be pulled on a Swarm node for replica '{request.name}' "
            f"({error}): push it to a registry every node can reach, or fix spec.image"
        )
    exit_code = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode")
    output = ""
    try:
        output = " / ".join(
            line.message.strip() for line in task_logs(api, task["ID"], request.name, 5, None)
        )
    except Exception:  # the logs are a courtesy; the failure is reported either way
        log.debug("reading the logs of failed task %s failed", task.get("ID"), exc_info=True)
    detail = "; ".join(part for part in (error, output) if part) or "no output"
    return ContainerStartError(
        f"replica '{request.name}' of app '{request.app}' failed to start on the Swarm"
        + (f" with code {exit_code}" if exit_code else "")
        + f": {detail}. Fix spec.command (or the image's entrypoint)"
    )


# The manager fetches a task's logs from the node that runs it; for a node cut off it waits out the
# client's whole timeout (60 s measured on the lab), and a crash report that wants the last log line
# held its app's reconciler pass that long: nothing else of the app was adopted or replaced meanwhile.
TASK_LOGS_TIMEOUT_SECONDS = 5.0


class TaskLogsUnavailable(OrchestryError):
    """The manager did not hand over a task's logs in time (its node is unreachable or overloaded)."""

    http_status = 504


def task_logs(
    api: APIClient,
    task_id: str,
    name: str,
    tail: int | None,
    since: float | None,
    timeout: float = TASK_LOGS_TIMEOUT_SECONDS,
) -> list[LogLine]:
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "timestamps": 1,
        "tail": tail if tail is not None else "all",
    }
    if since:
        params["since"] = int(since)
    try:
        response = api._get(
            api._url("/tasks/{0}/logs", task_id), params=params, stream=False, timeout=timeout
        )
        api._raise_for_status(response)
        raw = api._multiplexed_buffer_helper(response)
    except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
        # A stall while the body streams in surfaces as a ConnectionError wrapping urllib3's read timeout.
        if not isinstance(exc, requests.exceptions.Timeout) and not _read_timed_out(exc):
            raise
        raise TaskLogsUnavailable(
            f"the Swarm manager did not hand over the logs of {name} (task {task_id[:12]}) within "
            f"{timeout:g} s: the node running it is unreachable or overloaded (docker node ls); try again "
            f"once it is Ready"
        ) from None
    text = (
        b"".join(raw).decode(errors="replace") if not isinstance(raw, bytes) else raw.decode(errors="replace")
    )
    lines = []
    for entry in text.splitlines():
        if entry:
            stamp, message = split_log_line(entry)
            lines.append(LogLine(stamp, task_id, name, message))
    lines.sort(key=lambda line: line.timestamp)
    return lines[-tail:] if tail else lines


def _read_timed_out(exc: BaseException) -> bool:
    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args)


def task_summary(api: APIClient, service_id: str) -> str:
    """How far the slot's task got, in Swarm's words (for a start that timed out)."""
    try:
        tasks = api.tasks(filters={"service": service_id})
    except docker.errors.APIError:
        return "no task"
    task, _state = replica_task(tasks)
    if task is None:
        return "Swarm made no task for it"
    error = task_error(task)
    return f"its task is {task_state(task)}" + (f": {error}" if error else "")


def create_service(
    api: APIClient, request: ContainerRequest, cluster_id: str | None, ours: Ours, image: str | None = None
) -> str:
    """Create the slot's service (after clearing a dead one of ours under its name); its id.  ``image``:
    the request's image pinned to a digest, when known."""
    clear_leftover(api, request, ours)
    spec = service_spec(request, cluster_id, image)
    try:
        created = api.create_service(
            spec["TaskTemplate"],
            name=spec["Name"],
            labels=spec["Labels"],
            mode=spec["Mode"],
            endpoint_spec=spec["EndpointSpec"],
        )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise Conflict(
                f"Swarm service '{request.name}' was created by someone else meanwhile: {_explanation(exc)}"
            ) from exc
        raise ContainerStartError(
            f"Swarm refused the service of replica '{request.name}' of app '{request.app}': "
            f"{_explanation(exc)}. Fix spec.placement or spec.resources"
        ) from exc
    return str(created["ID"])


def clear_leftover(api: APIClient, request: ContainerRequest, ours: Ours) -> None:
    existing = [
        s
        for s in api.services(filters={"name": request.name})
        if (s.get("Spec") or {}).get("Name") == request.name
    ]
    for service in existing:
        labels = (service.get("Spec") or {}).get("Labels") or {}
        if labels.get(LABEL_MANAGED) != "true":
            raise Conflict(
                f"a Swarm service named '{request.name}' exists and is not managed by Orchestry: "
                f"rename or remove it (docker service rm {request.name}), or choose another app name"
            )
        if not ours(labels):
            raise ForeignContainer(
                f"a Swarm service named '{request.name}' belongs to another Orchestry installation "
                f"(cluster {labels.get(LABEL_CLUSTER, '')[:12]}) on this Swarm: delete the app there, "
                f"or choose another app name here"
            )
        tasks = api.tasks(filters={"service": service["ID"]})
        _task, state = replica_task(tasks)
        if state != "exited":
            raise Conflict(
                f"Swarm service '{request.name}' already exists ({state}): the next relist adopts it"
            )
        remove_service_quietly(api, service["ID"])


@dataclass(frozen=True)
class Starting:
    """A slot service just created: the request, and the service as created (id, name, labels)."""

    request: ContainerRequest
    service: dict[str, Any]


def started_replicas(
    api: APIClient, waiting: dict[str, Starting], nodes: dict[str, SwarmNode]
) -> dict[str, ContainerInfo | Exception | None]:
    """For each newly created slot service (by id): the replica once its task runs and is reachable,
    the error when Swarm cannot place the task, the task failed to start or the service is gone, or None
    while Swarm is still at it.

    One task listing covers every service (a scale-out by nine asks the manager once, not nine times).
    ``nodes`` caches the node listing across calls; it is listed again when a task runs on a node it
    does not hold."""
    tasks_of: dict[str, list[dict[str, Any]]] = {service_id: [] for service_id in waiting}
    outcome: dict[str, ContainerInfo | Exception | None] = {}
    try:
        listed = api.tasks(filters={"service": list(waiting)})
    except docker.errors.NotFound:
        # One of them was removed meanwhile (the manager refuses the whole listing): that one alone fails.
        present = {s["ID"] for s in api.services(filters={"id": list(waiting)})}
        for service_id in [sid for sid in tasks_of if sid not in present]:
            del tasks_of[service_id]
            outcome[service_id] = _vanished(waiting[service_id].request)
        listed = api.tasks(filters={"service": list(tasks_of)}) if tasks_of else []
    for task in listed:
        if task.get("ServiceID") in tasks_of:
            tasks_of[task["ServiceID"]].append(task)
    for service_id, tasks in tasks_of.items():
        starting = waiting[service_id]
        outcome[service_id] = _start_error(api, tasks, starting.request)
        running = [t for t in tasks if wants_running(t) and task_state(t) == "running"]
        if outcome[service_id] is not None or not running:
            continue
        if any(t.get("NodeID") not in nodes for t in running):
            nodes.update({raw["ID"]: swarm_node(raw) for raw in api.nodes()})
        info = replica_info(starting.service, tasks, nodes)
        outcome[service_id] = info if info.state == "running" else None
    return outcome


def _vanished(request: ContainerRequest) -> ContainerStartError:
    return ContainerStartError(
        f"Swarm service '{request.name}' vanished right after it was created: another program removed it"
    )


def _start_error(api: APIClient, tasks: list[dict[str, Any]], request: ContainerRequest) -> Exception | None:
    for task in tasks:
        reason = unplaceable_reason(task)
        if reason is not None:
            return ContainerStartError(
                f"Swarm cannot place replica '{request.name}' of app '{request.app}': {reason}. "
                f"Fix: {unplaceable_fix(reason)}"
            )
        if task_state(task) in ("failed", "rejected"):
            return start_failure(api, task, request)
    return None


def update_spec(api: APIClient, service: dict[str, Any], spec: dict[str, Any]) -> None:
    """Replace a service's spec (Swarm replaces its task when the task template changed)."""
    api.update_service(
        service["ID"],
        (service.get("Version") or {}).get("Index"),
        task_template=spec.get("TaskTemplate"),
        name=spec.get("Name"),
        labels=spec.get("Labels"),
        mode=spec.get("Mode"),
        endpoint_spec=spec.get("EndpointSpec"),
    )
