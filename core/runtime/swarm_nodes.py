"""Swarm nodes as the operator sees them: listing (with capacity, reservations and this installation's
tasks), finding one by id or hostname, and changing its availability.

Pure functions turn the manager's JSON into ``NodeInfo``; two thin blocking helpers (``list_nodes``,
``set_availability``) take a docker ``APIClient`` and are run by the Swarm runtime in its thread pool.
``NodeApiProbe`` remembers whether each node's own Docker API (label ``orchestry.docker-url``) answers,
so a node whose API is unreachable shows ``null`` figures with the reason instead of a wrong number.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import docker.errors
import requests.exceptions
from docker import APIClient

from core.errors import BadRequest, Conflict, NotFound, RuntimeUnavailable
from core.runtime.base import (
    LABEL_CLUSTER,
    LABEL_MANAGED,
    NODE_AVAILABILITIES,
    NODE_DRAINING,
    NODE_PAUSE,
    NodeInfo,
)
from core.runtime.docker_calls import _explanation
from core.runtime.docker_tls import TLS_FIX, tls_failure, tls_for

NODE_LABEL_DOCKER_URL = "orchestry.docker-url"
NODE_LABEL_ADDRESS = "orchestry.address"
# On a node Orchestry is draining: the id of the installation that drains it ("" for none).
NODE_LABEL_DRAINING = "orchestry.draining"
PROBE_TIMEOUT_SECONDS = 2.0
# An answer (or a failure) is trusted this long: the nodes view refreshes every few seconds and must
# not wait a timeout per unreachable node each time.
PROBE_TTL_SECONDS = 10.0
NANO = 1_000_000_000

Raw = dict[str, Any]


def node_address(raw: Raw) -> str:
    """Where replicas published on the node are reached: its ``orchestry.address`` label, else the
    address it reports, else (a manager reporting 0.0.0.0) the host part of its manager address."""
    labels = (raw.get("Spec") or {}).get("Labels") or {}
    if labels.get(NODE_LABEL_ADDRESS):
        return str(labels[NODE_LABEL_ADDRESS])
    reported = str((raw.get("Status") or {}).get("Addr") or "")
    if reported and not _unspecified(reported):
        return reported
    manager = str((raw.get("ManagerStatus") or {}).get("Addr") or "")
    host = manager.rpartition(":")[0].strip("[]") if ":" in manager else manager
    return host or reported


def _unspecified(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def node_docker_url(raw: Raw) -> str | None:
    labels = (raw.get("Spec") or {}).get("Labels") or {}
    return labels.get(NODE_LABEL_DOCKER_URL) or None


def running_tasks_by_node(services: Iterable[Raw], tasks: Iterable[Raw]) -> dict[str, list[Raw]]:
    """The running tasks of ``services`` (this installation's), grouped by the node they run on."""
    ours = {service.get("ID") for service in services}
    found: dict[str, list[Raw]] = {}
    for task in tasks:
        status = task.get("Status") or {}
        if task.get("ServiceID") not in ours or task.get("DesiredState") != "running":
            continue
        if status.get("State") != "running" or not task.get("NodeID"):
            continue
        found.setdefault(task["NodeID"], []).append(task)
    return found


def _reserved(tasks: list[Raw]) -> tuple[float, int]:
    cpus = memory = 0
    for task in tasks:
        reservations = ((task.get("Spec") or {}).get("Resources") or {}).get("Reservations") or {}
        cpus += int(reservations.get("NanoCPUs") or 0)
        memory += int(reservations.get("MemoryBytes") or 0)
    return cpus / NANO, memory


def availability_of(raw: Raw, cluster_id: str | None) -> str:
    """Swarm's availability, or ``draining`` for a node this installation is draining (paused and
    labelled by it; another installation's drain shows as the pause it is)."""
    spec = raw.get("Spec") or {}
    availability = str(spec.get("Availability") or "active")
    drained_by = (spec.get("Labels") or {}).get(NODE_LABEL_DRAINING)
    if availability == NODE_PAUSE and drained_by is not None and drained_by == (cluster_id or ""):
        return NODE_DRAINING
    return availability


def node_info(raw: Raw, tasks: list[Raw], unreachable: str = "", cluster_id: str | None = None) -> NodeInfo:
    """One node of ``GET /nodes`` plus this installation's running tasks on it → NodeInfo.

    ``unreachable``: why the node's own Docker API cannot be asked (then use figures stay unknown).
    """
    spec = raw.get("Spec") or {}
    status = raw.get("Status") or {}
    description = raw.get("Description") or {}
    resources = description.get("Resources") or {}
    nano_cpus = resources.get("NanoCPUs")
    memory = resources.get("MemoryBytes")
    cpu_reserved, memory_reserved = _reserved(tasks)
    state = str(status.get("State") or "unknown")
    reason = unreachable
    if state != "ready" and not reason:
        message = status.get("Message") or ""
        reason = f"Swarm reports the node {state}" + (f": {message}" if message else "")
    return NodeInfo(
        id=str(raw.get("ID") or ""),
        hostname=str(description.get("Hostname") or ""),
        address=node_address(raw),
        role=str(spec.get("Role") or "worker"),
        state=state,
        availability=availability_of(raw, cluster_id),
        tasks=len(tasks),
        leader=bool((raw.get("ManagerStatus") or {}).get("Leader")),
        engine_version=str((description.get("Engine") or {}).get("EngineVersion") or ""),
        cpu_cores=nano_cpus / NANO if isinstance(nano_cpus, int) else None,
        memory_bytes=memory if isinstance(memory, int) else None,
        cpu_reserved_cores=cpu_reserved,
        memory_reserved_bytes=memory_reserved,
        unavailable_reason=reason,
    )


def find_node(nodes: list[Raw], key: str) -> Raw:
    """The node named by ``key``: its id, a unique id prefix, or its hostname."""
    key = key.strip()
    if not key:
        raise BadRequest("node: give a node id or hostname (see `orchestry nodes`)")
    exact = [n for n in nodes if n.get("ID") == key or (n.get("Description") or {}).get("Hostname") == key]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [n for n in nodes if str(n.get("ID") or "").startswith(key)]
    if not matches:
        known = ", ".join(sorted((n.get("Description") or {}).get("Hostname", "?") for n in nodes)) or "none"
        raise NotFound(f"no node '{key}' in the Swarm: its nodes are {known} (see `orchestry nodes`)")
    if len(matches) > 1:
        ids = ", ".join(sorted(str(n.get("ID"))[:12] for n in matches))
        raise Conflict(f"node '{key}' is ambiguous ({ids}): give the full node id")
    return matches[0]


def check_availability(availability: str) -> str:
    if availability not in NODE_AVAILABILITIES:
        raise BadRequest(
            f"availability '{availability}' is not valid: use one of {', '.join(NODE_AVAILABILITIES)}"
        )
    return availability


class NodeApiProbe:
    """Whether each node's own Docker API answers, asked at most once per ``ttl`` per URL."""

    def __init__(
        self,
        timeout: float = PROBE_TIMEOUT_SECONDS,
        ttl: float = PROBE_TTL_SECONDS,
        ping: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.ttl = ttl
        self._ping = ping or _ping_docker
        self._clock = clock
        self._known: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def reason(self, raw: Raw) -> str:
        """'' when the node's API answers; else why its figures are unknown."""
        hostname = (raw.get("Description") or {}).get("Hostname") or raw.get("ID", "?")
        url = node_docker_url(raw)
        if url is None:
            return (
                f"node {hostname} has no Docker API address: label it "
                f"(docker node update --label-add {NODE_LABEL_DOCKER_URL}=tcp://ADDR:2376 {hostname})"
            )
        now = self._clock()
        with self._lock:
            known = self._known.get(url)
        if known is not None and now - known[0] < self.ttl:
            return known[1]
        try:
            self._ping(url, self.timeout)
            reason = ""
        except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
            reason = api_unreachable(hostname, url, exc, type(exc).__name__)
        with self._lock:
            self._known[url] = (now, reason)
        return reason


def api_unreachable(hostname: str, url: str, exc: BaseException, detail: str) -> str:
    """Why a node's Docker API gives no figures: TLS named with its fix when TLS is the trouble (a
    wrong CA, no client certificate, plain HTTP to a TLS port), else ``detail`` of the failure."""
    tls = tls_failure(exc)
    if tls is not None:
        return f"node {hostname}'s Docker API at {url} cannot be asked over TLS: {tls}. Fix: {TLS_FIX}"
    return f"node {hostname}'s Docker API at {url} does not answer: {detail}"


def _ping_docker(url: str, timeout: float) -> None:
    client = APIClient(base_url=url, version="auto", timeout=timeout, tls=tls_for(url))
    try:
        client.ping()
    finally:
        client.close()


@contextlib.contextmanager
def _manager_errors(what: str) -> Iterator[None]:
    """The manager's refusals as typed errors: a node that is gone is unknown (404); anything else (not
    a manager, no quorum) makes the runtime unavailable for this request (503), with Docker's words."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise NotFound(f"the Swarm has no such node ({_explanation(exc)}): see `orchestry nodes`") from None
    except docker.errors.APIError as exc:
        raise RuntimeUnavailable(f"the Swarm manager refused to {what}: {_explanation(exc)}") from None


def _our_services(api: APIClient, cluster_id: str | None) -> list[Raw]:
    labels = [f"{LABEL_MANAGED}=true"]
    if cluster_id is not None:
        labels.append(f"{LABEL_CLUSTER}={cluster_id}")
    return list(api.services(filters={"label": labels}))


def list_nodes(api: APIClient, cluster_id: str | None, probe: NodeApiProbe) -> list[NodeInfo]:
    """Every Swarm node with this installation's running tasks on it (blocking: run in a thread)."""
    with _manager_errors("list its nodes"):
        raw_nodes = api.nodes()
        tasks = api.tasks(filters={"desired-state": "running"})
        by_node = running_tasks_by_node(_our_services(api, cluster_id), tasks)
    found = []
    for raw in raw_nodes:
        ready = (raw.get("Status") or {}).get("State") == "ready"
        reason = probe.reason(raw) if ready else ""
        found.append(node_info(raw, by_node.get(raw.get("ID", ""), []), reason, cluster_id))
    return sorted(found, key=lambda n: (n.role != "manager", n.hostname))


def set_availability(api: APIClient, key: str, availability: str, cluster_id: str | None = None) -> NodeInfo:
    """Set the node's availability through the manager (blocking: run in a thread)."""
    check_availability(availability)
    with _manager_errors(f"set a node to {availability}"):
        return _set_availability(api, key, availability, cluster_id)


def _set_availability(api: APIClient, key: str, availability: str, cluster_id: str | None) -> NodeInfo:
    raw = find_node(api.nodes(), key)
    for attempt in range(3):
        spec = _wanted_spec(raw, availability, cluster_id)
        if spec == raw.get("Spec"):
            break
        try:
            api.update_node(raw["ID"], (raw.get("Version") or {}).get("Index"), spec)
            break
        except docker.errors.APIError as exc:
            # Another writer updated the node between our read and write: read it again and retry.
            if "out of sequence" not in str(exc) or attempt == 2:
                raise
            raw = api.inspect_node(raw["ID"])
    raw = api.inspect_node(raw["ID"])
    tasks = running_tasks_by_node(_our_services(api, cluster_id), api.tasks(filters={"node": raw["ID"]}))
    return node_info(raw, tasks.get(raw["ID"], []), cluster_id=cluster_id)


def _wanted_spec(raw: Raw, availability: str, cluster_id: str | None) -> Raw:
    """The node's spec with ``availability`` (draining: pause plus our label; else without it)."""
    spec = dict(raw.get("Spec") or {})
    labels = dict(spec.get("Labels") or {})
    if availability == NODE_DRAINING:
        spec["Availability"] = NODE_PAUSE
        labels[NODE_LABEL_DRAINING] = cluster_id or ""
    else:
        spec["Availability"] = availability
        labels.pop(NODE_LABEL_DRAINING, None)
    spec["Labels"] = labels
    return spec
