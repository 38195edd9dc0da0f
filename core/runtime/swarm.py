"""SwarmRuntime: the Runtime protocol on a Docker Swarm, through a manager's Docker Engine API.

Swarm places replicas on its nodes, pulls images there and replaces tasks lost with a node; Orchestry
keeps deciding how many replicas run, which one goes on scale-in, and who is routed.  The translation
between the two (one service per slot, a replica is a task) is in ``swarm_spec``; this module does the
I/O, every SDK call in a bounded thread pool as DockerRuntime does.

Events: Docker 20.10 emits no task events, only service and node ones.  A poller lists the managed
tasks every ``task_poll_seconds`` and at once whenever the manager reports a service or node change,
and turns what changed into RuntimeEvents: ``die`` for a task that stopped being a live replica (it
failed, was shut down, or its node went down and Swarm gave up on it), ``changed`` when the app has a
task the reconciler should look at (Swarm started a replacement).  Our own probes catch the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker import APIClient
from docker.utils import kwargs_from_env

from core.errors import Conflict, ContainerStartError, ForeignContainer, ImageNotFound, RuntimeUnavailable
from core.runtime.base import (
    EVENT_CHANGED,
    LABEL_APP,
    LABEL_CLUSTER,
    LABEL_MANAGED,
    LABEL_SLOT,
    STATE_PENDING,
    ContainerInfo,
    ContainerRequest,
    ContainerStats,
    LogLine,
    NodeInfo,
    RuntimeEvent,
)
from core.runtime.docker import (
    EVENTS_RECONNECTED,
    PING_TIMEOUT_SECONDS,
    RECONNECT_DELAYS,
    _close_quietly,
    _explanation,
    _lines,
    _root_cause,
    _sample_stats,
    _StreamBridge,
    resolve_docker_url,
    split_log_line,
)
from core.runtime.swarm_nodes import NodeApiProbe, list_nodes, set_availability
from core.runtime.swarm_spec import (
    ENDED_STATES,
    SwarmNode,
    replica_info,
    replica_task,
    service_spec,
    swarm_node,
    task_container,
    task_error,
    task_state,
    unplaceable_fix,
    unplaceable_reason,
    wants_running,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

START_TIMEOUT_SECONDS = 120.0  # placement + pull + start of one new task
TASK_POLL_SECONDS = 0.5
STARTING_POLL_SECONDS = 0.2
NODE_API_TIMEOUT_SECONDS = 5.0
# A node whose API did not answer is not asked again for this long (each try would wait a timeout).
NODE_RETRY_SECONDS = 10.0
NOT_A_MANAGER_FIX = (
    "point ORCHESTRY_DOCKER_URL (or DOCKER_HOST) at a Swarm manager, or run `docker swarm init` there"
)


def _tls_for(url: str) -> Any:
    """Docker's standard TLS environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) for tcp:// URLs."""
    if not url.startswith(("tcp://", "https://")):
        return None
    return kwargs_from_env(environment=dict(os.environ)).get("tls")


@dataclass
class _Snapshot:
    """One listing of this installation's services, their tasks and the nodes."""

    services: list[dict[str, Any]]
    tasks: dict[str, list[dict[str, Any]]]  # by service id
    nodes: dict[str, SwarmNode]
    taken_at: float = field(default_factory=time.time)

    def replicas(self) -> list[ContainerInfo]:
        return [replica_info(s, self.tasks.get(s["ID"], []), self.nodes) for s in self.services]


class SwarmRuntime:
    """Runtime protocol on a Docker Swarm (core/runtime/base.py); one service per slot."""

    kind = "swarm"

    def __init__(
        self,
        docker_url: str | None = None,
        max_workers: int = 10,
        node_docker_urls: dict[str, str] | None = None,
        task_poll_seconds: float = TASK_POLL_SECONDS,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        """``node_docker_urls``: node hostname or id → its Docker API URL, for nodes without the
        ``orchestry.docker-url`` label (the label wins when both exist)."""
        self.docker_url = resolve_docker_url(docker_url)
        self.max_workers = max_workers
        self.node_docker_urls = dict(node_docker_urls or {})
        self.task_poll_seconds = task_poll_seconds
        self.start_timeout = start_timeout
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="swarm")
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._node_clients: dict[str, APIClient] = {}
        self._node_failed: dict[str, tuple[float, str]] = {}  # docker url → (when, why)
        self._bridges: set[_StreamBridge] = set()
        self._closed = False
        self._last: _Snapshot | None = None
        # Why the CPU and memory of a replica (task id) are unknown in the last stats sample.
        self.stats_gaps: dict[str, str] = {}
        self._node_probe = NodeApiProbe()
        self.cluster_id: str | None = None

    def _ours(self, labels: dict[str, str]) -> bool:
        owner = labels.get(LABEL_CLUSTER)
        return owner is None or self.cluster_id is None or owner == self.cluster_id

    # -- plumbing ---------------------------------------------------------------------------------

    def _unavailable(self, reason: object) -> RuntimeUnavailable:
        return RuntimeUnavailable(
            f"Swarm manager at {self.docker_url} does not answer ({reason}): start it, or {NOT_A_MANAGER_FIX}"
        )

    def _api(self) -> APIClient:
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = docker.DockerClient(
                        base_url=self.docker_url,
                        version="auto",
                        max_pool_size=self.max_workers,
                        tls=_tls_for(self.docker_url),
                    )
                except docker.errors.DockerException as exc:
                    raise self._unavailable(_root_cause(exc)) from exc
                if self._client.api.base_url.startswith("http+docker://"):
                    self._client.api.trust_env = False  # see DockerRuntime._api
            return self._client.api

    def _stream_client(self) -> APIClient:
        version = self._api().api_version
        return APIClient(
            base_url=self.docker_url,
            version=version,
            timeout=None,
            max_pool_size=2,
            tls=_tls_for(self.docker_url),
        )

    def _guarded(self, work: Callable[[APIClient], T]) -> T:
        try:
            return work(self._api())
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise self._unavailable(_root_cause(exc)) from exc

    async def _run(self, work: Callable[[APIClient], T]) -> T:
        if self._closed:
            raise RuntimeUnavailable("the Swarm runtime was closed: create a new SwarmRuntime")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, work)

    def _snapshot(self, api: APIClient, app: str | None = None) -> _Snapshot:
        filters = [f"{LABEL_MANAGED}=true"] + ([f"{LABEL_APP}={app}"] if app is not None else [])
        services = [
            s
            for s in api.services(filters={"label": filters})
            if self._ours((s.get("Spec") or {}).get("Labels") or {})
        ]
        tasks: dict[str, list[dict[str, Any]]] = {s["ID"]: [] for s in services}
        if services:
            for task in api.tasks(filters={"service": [s["ID"] for s in services]}):
                if task.get("ServiceID") in tasks:
                    tasks[task["ServiceID"]].append(task)
        nodes = {raw["ID"]: swarm_node(raw) for raw in api.nodes()}
        snapshot = _Snapshot(services, tasks, nodes)
        if app is None:
            self._last = snapshot
        elif self._last is not None:
            self._merge(snapshot, app)
        return snapshot

    def _merge(self, partial: _Snapshot, app: str) -> None:
        """Keep the cached full listing current for one app (stats and ids resolve through it)."""
        last = self._last
        assert last is not None
        kept = [s for s in last.services if ((s.get("Spec") or {}).get("Labels") or {}).get(LABEL_APP) != app]
        tasks = {sid: t for sid, t in last.tasks.items() if any(s["ID"] == sid for s in kept)}
        tasks.update(partial.tasks)
        self._last = _Snapshot(kept + partial.services, tasks, partial.nodes)

    def _find(self, api: APIClient, replica_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The service (and its tasks) a replica id names: a task id, or the id of a service that has no
        task yet."""
        for attempt in range(2):
            snapshot = self._last if attempt == 0 and self._last is not None else self._snapshot(api)
            for service in snapshot.services:
                tasks = snapshot.tasks.get(service["ID"], [])
                if service["ID"] == replica_id or any(t.get("ID") == replica_id for t in tasks):
                    return service, tasks
        return None

    # -- Runtime protocol -------------------------------------------------------------------------

    async def ping(self) -> None:
        def work(api: APIClient) -> None:
            api.ping()
            swarm = api.info().get("Swarm") or {}
            if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
                raise RuntimeUnavailable(
                    f"Docker engine at {self.docker_url} is not a Swarm manager (swarm state "
                    f"{swarm.get('LocalNodeState') or 'inactive'}): {NOT_A_MANAGER_FIX}"
                )

        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                await self._run(work)
        except TimeoutError:
            raise self._unavailable(
                f"no answer to a ping within {PING_TIMEOUT_SECONDS:g} s: the manager is hung or overloaded"
            ) from None

    async def image_exists(self, image: str) -> bool:
        def work(api: APIClient) -> bool:
            try:
                api.inspect_distribution(image)
                return True
            except docker.errors.APIError:
                try:
                    api.inspect_image(image)
                    return True
                except docker.errors.APIError:
                    return False

        return await self._run(work)

    async def list_managed(self, app: str | None = None) -> list[ContainerInfo]:
        snapshot = await self._run(lambda api: self._snapshot(api, app))
        return sorted(snapshot.replicas(), key=lambda i: (i.app, i.slot, i.name))

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        def work(api: APIClient) -> ContainerInfo | None:
            found = self._find(api, container_id)
            if found is None:
                return None
            service, tasks = found
            nodes = self._last.nodes if self._last is not None else {}
            info = replica_info(service, tasks, nodes)
            return info if info.id == container_id else replace(info, id=container_id, state="exited")

        return await self._run(work)

    async def create_and_start(self, request: ContainerRequest) -> ContainerInfo:
        service_id = await self._run(lambda api: self._create(api, request))
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                info = await self._run(lambda api: self._started(api, service_id, request))
            except (ContainerStartError, ImageNotFound):
                await self._remove_service(service_id)  # nothing half-created
                raise
            if info is not None:
                return info
            if time.monotonic() >= deadline:
                state = await self._run(lambda api: self._task_summary(api, service_id))
                await self._remove_service(service_id)
                raise ContainerStartError(
                    f"replica '{request.name}' of app '{request.app}' did not start on the Swarm within "
                    f"{self.start_timeout:g} s ({state}): check the image can be pulled on every node "
                    f"(docker service ps {request.name})"
                )
            await asyncio.sleep(0.1)

    async def stop(self, container_id: str, timeout: float) -> None:
        """Remove the slot's service (Swarm stops its task with the grace period set at creation) and
        wait, at most ``timeout`` + 2 s, until the task no longer runs."""
        found = await self._run(lambda api: self._find(api, container_id))
        if found is None:
            return
        service_id = found[0]["ID"]
        await self._remove_service(service_id)
        deadline = time.monotonic() + max(0.0, timeout) + 2.0
        while time.monotonic() < deadline:
            if not await self._run(lambda api: self._still_running(api, service_id)):
                return
            await asyncio.sleep(0.1)

    async def unpause(self, container_id: str) -> None:
        """Orchestry never pauses a Swarm task (and Swarm has no pause): nothing to thaw."""
        return None

    async def remove(self, container_id: str, force: bool = False) -> None:
        found = await self._run(lambda api: self._find(api, container_id))
        if found is not None:
            await self._remove_service(found[0]["ID"])

    async def logs(
        self, container_id: str, tail: int | None, since: float | None, until: float | None
    ) -> list[LogLine]:
        def work(api: APIClient) -> list[LogLine]:
            found = self._find(api, container_id)
            if found is None or not any(t.get("ID") == container_id for t in found[1]):
                return []  # a service without a task has written nothing
            name = (found[0].get("Spec") or {}).get("Name", "")
            return _task_logs(api, container_id, name, tail, since)

        lines = await self._run(work)
        if until:
            lines = [line for line in lines if line.timestamp <= until]
        return lines

    def follow_logs(self, container_id: str, since: float | None) -> AsyncIterator[LogLine]:
        return self._follow_logs(container_id, since)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return self._events()

    async def stats(self, container_ids: list[str]) -> dict[str, ContainerStats]:
        """CPU and memory of each task, from the Docker API of the node that runs it.

        A task whose node API is unknown or does not answer is left out (its figures are null), and
        ``stats_gaps`` says why: a wrong number would be worse than none.
        """
        snapshot = self._last
        if snapshot is None:
            try:
                snapshot = await self._run(self._snapshot)
            except RuntimeUnavailable:
                return {}
        located: dict[str, tuple[SwarmNode | None, str]] = {}
        gaps: dict[str, str] = {}
        by_task = {t["ID"]: t for tasks in snapshot.tasks.values() for t in tasks}
        for task_id in container_ids:
            task = by_task.get(task_id)
            where = task_container(task) if task is not None else None
            if where is None:
                gaps[task_id] = "its task has no container yet"
                continue
            located[task_id] = (snapshot.nodes.get(where[0]), where[1])
        results = await asyncio.gather(
            *(self._node_stats(node, container) for node, container in located.values()),
            return_exceptions=True,
        )
        found: dict[str, ContainerStats] = {}
        for task_id, result in zip(located, results, strict=True):
            if isinstance(result, ContainerStats):
                found[task_id] = replace(result, container_id=task_id)
            elif isinstance(result, str):
                gaps[task_id] = result
            elif isinstance(result, BaseException):
                gaps[task_id] = f"stats failed: {_root_cause(result)}"
            else:
                gaps[task_id] = "the task's container is not running"
        self.stats_gaps = gaps
        return found

    async def nodes(self) -> list[NodeInfo]:
        return await self._run(lambda api: list_nodes(api, self.cluster_id, self._node_probe))

    async def set_node_availability(self, node_id: str, availability: str) -> NodeInfo:
        return await self._run(lambda api: set_availability(api, node_id, availability, self.cluster_id))

    async def close(self) -> None:
        self._closed = True
        for bridge in list(self._bridges):
            bridge.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            client, self._client = self._client, None
        clients = list(self._node_clients.values())
        self._node_clients.clear()
        for closable in [client, *clients]:
            if closable is not None:
                await asyncio.to_thread(closable.close)

    # -- create and start -------------------------------------------------------------------------

    def _create(self, api: APIClient, request: ContainerRequest) -> str:
        self._clear_leftover(api, request)
        spec = service_spec(request, self.cluster_id)
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
                    f"Swarm service '{request.name}' was created by someone else meanwhile: "
                    f"{_explanation(exc)}"
                ) from exc
            raise ContainerStartError(
                f"Swarm refused the service of replica '{request.name}' of app '{request.app}': "
                f"{_explanation(exc)}. Fix spec.placement or spec.resources"
            ) from exc
        return str(created["ID"])

    def _clear_leftover(self, api: APIClient, request: ContainerRequest) -> None:
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
            if not self._ours(labels):
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
            _remove_service_quietly(api, service["ID"])

    def _started(self, api: APIClient, service_id: str, request: ContainerRequest) -> ContainerInfo | None:
        """The replica once its task runs and is reachable; None while Swarm is still at it.  Raises
        when Swarm cannot place the task, or the task failed to start."""
        try:
            service = api.inspect_service(service_id)
        except docker.errors.NotFound:
            raise ContainerStartError(
                f"Swarm service '{request.name}' vanished right after it was created: "
                "another program removed it"
            ) from None
        tasks = api.tasks(filters={"service": service_id})
        for task in tasks:
            reason = unplaceable_reason(task)
            if reason is not None:
                raise ContainerStartError(
                    f"Swarm cannot place replica '{request.name}' of app '{request.app}': {reason}. "
                    f"Fix: {unplaceable_fix(reason)}"
                )
            if task_state(task) in ("failed", "rejected"):
                raise _start_failure(api, task, request)
        if not any(wants_running(t) and task_state(t) == "running" for t in tasks):
            return None
        nodes = {raw["ID"]: swarm_node(raw) for raw in api.nodes()}
        info = replica_info(service, tasks, nodes)
        return info if info.state == "running" else None

    def _task_summary(self, api: APIClient, service_id: str) -> str:
        try:
            tasks = api.tasks(filters={"service": service_id})
        except docker.errors.APIError:
            return "no task"
        task, _state = replica_task(tasks)
        if task is None:
            return "Swarm made no task for it"
        error = task_error(task)
        return f"its task is {task_state(task)}" + (f": {error}" if error else "")

    async def _remove_service(self, service_id: str) -> None:
        await self._run(lambda api: _remove_service_quietly(api, service_id))

    def _still_running(self, api: APIClient, service_id: str) -> bool:
        try:
            tasks = api.tasks(filters={"service": service_id})
        except docker.errors.APIError:
            return False
        return any(task_state(t) not in ENDED_STATES for t in tasks)

    # -- stats from each node ---------------------------------------------------------------------

    def _node_url(self, node: SwarmNode | None) -> str | None:
        if node is None:
            return None
        return (
            node.docker_url or self.node_docker_urls.get(node.hostname) or self.node_docker_urls.get(node.id)
        )

    async def _node_stats(self, node: SwarmNode | None, container_id: str) -> ContainerStats | str | None:
        url = self._node_url(node)
        name = node.hostname if node is not None else "unknown"
        if url is None:
            return (
                f"node {name} has no Docker API address: label it "
                f"(docker node update --label-add orchestry.docker-url=tcp://ADDR:2376 {name})"
            )
        failed = self._node_failed.get(url)
        if failed is not None and time.monotonic() - failed[0] < NODE_RETRY_SECONDS:
            return failed[1]
        loop = asyncio.get_running_loop()
        try:
            sample = await loop.run_in_executor(
                self._executor, lambda: _sample_stats(self._node_client(url), container_id)
            )
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            reason = f"node {name}'s Docker API at {url} does not answer: {_root_cause(exc)}"
            self._node_failed[url] = (time.monotonic(), reason)
            return reason
        self._node_failed.pop(url, None)
        return sample

    def _node_client(self, url: str) -> APIClient:
        version = self._api().api_version  # outside the lock: _api takes it too
        with self._client_lock:
            client = self._node_clients.get(url)
            if client is None:
                client = APIClient(
                    base_url=url,
                    version=version,
                    timeout=NODE_API_TIMEOUT_SECONDS,
                    max_pool_size=self.max_workers,
                    tls=_tls_for(url),
                )
                self._node_clients[url] = client
            return client

    # -- streams ----------------------------------------------------------------------------------

    async def _follow_logs(self, container_id: str, since: float | None) -> AsyncIterator[LogLine]:
        found = await self._run(lambda api: self._find(api, container_id))
        if found is None:
            return
        name = (found[0].get("Spec") or {}).get("Name", "")
        bridge = _StreamBridge(asyncio.get_running_loop())
        self._bridges.add(bridge)
        threading.Thread(
            target=self._follow_reader,
            args=(bridge, container_id, name, since),
            name=f"swarm-logs-{name}",
            daemon=True,
        ).start()
        try:
            async for line in bridge.items():
                yield line
        finally:
            self._bridges.discard(bridge)

    def _follow_reader(self, bridge: _StreamBridge, task_id: str, name: str, since: float | None) -> None:
        client: APIClient | None = None
        try:
            client = self._stream_client()
            params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1, "tail": 0}
            if since:
                params.update(since=int(since), tail="all")
            response = client._get(client._url("/tasks/{0}/logs", task_id), params=params, stream=True)
            client._raise_for_status(response)
            stream = client._multiplexed_response_stream_helper(response)
            bridge.track(response)
            try:
                for text in _lines(stream):
                    stamp, message = split_log_line(text)
                    if not bridge.put(LogLine(stamp, task_id, name, message)):
                        return
            finally:
                bridge.untrack(response)
        except Exception:
            if not bridge.stopped.is_set():
                log.warning("following logs of %s broke off", name, exc_info=True)
        finally:
            if client is not None:
                _close_quietly(client)
            bridge.reader_done()

    async def _events(self) -> AsyncIterator[RuntimeEvent]:
        """Task changes found by polling the manager, polled at once when it reports a change."""
        loop = asyncio.get_running_loop()
        poke = asyncio.Event()
        bridge = _StreamBridge(loop)
        self._bridges.add(bridge)
        threading.Thread(
            target=self._manager_events_reader, args=(bridge, loop, poke), name="swarm-events", daemon=True
        ).start()
        previous: dict[str, _TaskView] | None = None
        failing = False
        wait = self.task_poll_seconds
        try:
            while not self._closed:
                try:
                    await asyncio.wait_for(poke.wait(), wait)
                except TimeoutError:
                    pass
                poke.clear()
                try:
                    snapshot = await self._run(self._snapshot)
                except RuntimeUnavailable:
                    failing = True
                    continue
                except docker.errors.APIError as exc:
                    log.warning("listing Swarm tasks failed: %s", _explanation(exc))
                    continue
                current = _task_views(snapshot)
                if failing:
                    failing = False
                    yield RuntimeEvent(
                        EVENTS_RECONNECTED, container_id="", app="", slot=None, time=time.time()
                    )
                if previous is not None:
                    for event in task_changes(previous, current, time.time()):
                        yield event
                previous = current
                # A task on its way to running (Swarm replacing a lost one) has no event of its own
                # to say it runs: look again soon, so it is probed and routed within moments.
                starting = any(
                    v.desired == "running" and not v.live and not v.unplaceable for v in current.values()
                )
                wait = (
                    min(self.task_poll_seconds, STARTING_POLL_SECONDS) if starting else self.task_poll_seconds
                )
        finally:
            bridge.stop()
            self._bridges.discard(bridge)

    def _manager_events_reader(
        self, bridge: _StreamBridge, loop: asyncio.AbstractEventLoop, poke: asyncio.Event
    ) -> None:
        """Wakes the poller on every service or node event the manager emits; reconnects with backoff."""
        filters = {"type": ["service", "node"]}
        failures = 0
        while not bridge.stopped.is_set():
            client: APIClient | None = None
            try:
                client = self._stream_client()
                stream = client.events(filters=filters, decode=True)
                bridge.track(stream)
                failures = 0
                loop.call_soon_threadsafe(poke.set)  # events may have been missed while away
                try:
                    for _raw in stream:
                        loop.call_soon_threadsafe(poke.set)
                finally:
                    bridge.untrack(stream)
            except Exception as exc:
                if not bridge.stopped.is_set() and failures == 0:
                    log.warning(
                        "Swarm manager events at %s broke: %s; reconnecting",
                        self.docker_url,
                        _root_cause(exc),
                    )
            finally:
                if client is not None:
                    _close_quietly(client)
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            bridge.stopped.wait(delay)


# ---------------------------------------------------------------------------------------------------
# task changes → runtime events (pure)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TaskView:
    app: str
    slot: int | None
    live: bool  # Swarm wants it running and it runs
    state: str
    desired: str
    exit_code: int | None
    unplaceable: bool = False  # pending because no node fits: nothing will change soon


def _task_views(snapshot: _Snapshot) -> dict[str, _TaskView]:
    views: dict[str, _TaskView] = {}
    for service in snapshot.services:
        labels = (service.get("Spec") or {}).get("Labels") or {}
        slot = labels.get(LABEL_SLOT, "")
        for task in snapshot.tasks.get(service["ID"], []):
            exit_code = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode")
            views[task["ID"]] = _TaskView(
                app=labels.get(LABEL_APP, ""),
                slot=int(slot) if slot.isdigit() else None,
                live=wants_running(task) and task_state(task) == "running",
                state=task_state(task),
                desired=str(task.get("DesiredState", "")),
                exit_code=exit_code if isinstance(exit_code, int) else None,
                unplaceable=unplaceable_reason(task) is not None,
            )
    return views


def task_changes(
    previous: dict[str, _TaskView], current: dict[str, _TaskView], now: float
) -> list[RuntimeEvent]:
    """``die`` for each task that was a live replica and no longer is; one ``changed`` per app whose
    other tasks changed (a new task, or one that started or ended)."""
    events: list[RuntimeEvent] = []
    changed_apps: dict[str, int | None] = {}
    for task_id, before in previous.items():
        after = current.get(task_id)
        if before.live and (after is None or not after.live):
            events.append(
                RuntimeEvent(
                    "die",
                    container_id=task_id,
                    app=before.app,
                    slot=before.slot,
                    time=now,
                    exit_code=after.exit_code if after is not None else None,
                )
            )
        elif after is None or (after.state, after.desired) != (before.state, before.desired):
            changed_apps.setdefault(before.app, before.slot)
    for task_id, after in current.items():
        if task_id not in previous:
            changed_apps.setdefault(after.app, after.slot)
    for app, slot in changed_apps.items():
        events.append(RuntimeEvent(EVENT_CHANGED, container_id="", app=app, slot=slot, time=now))
    return events


# ---------------------------------------------------------------------------------------------------
# blocking helpers (run in worker threads)
# ---------------------------------------------------------------------------------------------------


def _remove_service_quietly(api: APIClient, service_id: str) -> None:
    try:
        api.remove_service(service_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        log.warning("removing Swarm service %s failed: %s", service_id[:12], _explanation(exc))


def _start_failure(api: APIClient, task: dict[str, Any], request: ContainerRequest) -> Exception:
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
            line.message.strip() for line in _task_logs(api, task["ID"], request.name, 5, None)
        )
    except Exception:  # the logs are a courtesy; the failure is reported either way
        log.debug("reading the logs of failed task %s failed", task.get("ID"), exc_info=True)
    detail = "; ".join(part for part in (error, output) if part) or "no output"
    return ContainerStartError(
        f"replica '{request.name}' of app '{request.app}' failed to start on the Swarm"
        + (f" with code {exit_code}" if exit_code else "")
        + f": {detail}. Fix spec.command (or the image's entrypoint)"
    )


def _task_logs(
    api: APIClient, task_id: str, name: str, tail: int | None, since: float | None
) -> list[LogLine]:
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "timestamps": 1,
        "tail": tail if tail is not None else "all",
    }
    if since:
        params["since"] = int(since)
    response = api._get(api._url("/tasks/{0}/logs", task_id), params=params, stream=False)
    api._raise_for_status(response)
    raw = api._multiplexed_buffer_helper(response)
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


__all__ = ["STATE_PENDING", "SwarmRuntime", "task_changes"]
