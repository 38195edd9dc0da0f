"""SwarmRuntime: the Runtime protocol on a Docker Swarm, through a manager's Docker Engine API.

Swarm places replicas on its nodes, pulls images there and replaces tasks lost with a node; Orchestry
keeps deciding how many replicas run, which one goes on scale-in, and who is routed.  The translation
between the two (one service per slot, a replica is a task) is in ``swarm_spec``, the blocking manager
calls in ``swarm_calls``, task snapshots and their changes in ``swarm_events``, per-node CPU and memory
in ``swarm_stats``, nodes in ``swarm_nodes``; this class runs them, every SDK call in a bounded thread
pool as DockerRuntime does.

Events: Docker 20.10 emits no task events, only service and node ones.  A poller lists the managed
tasks every ``task_poll_seconds`` and at once whenever the manager reports a service or node change,
and turns what changed into RuntimeEvents: ``die`` for a task that stopped being a live replica (it
failed, was shut down, or its node went down and Swarm gave up on it), ``changed`` when the app has a
task the reconciler should look at (Swarm started a replacement).  Our own probes catch the rest.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import docker
import docker.errors
from docker import APIClient

from core.errors import ContainerStartError, ImageNotFound, RuntimeUnavailable
from core.runtime.base import (
    LABEL_APP,
    LABEL_MANAGED,
    STATE_PENDING,
    ContainerInfo,
    ContainerRequest,
    ContainerStats,
    LogLine,
    NodeInfo,
    RuntimeEvent,
)
from core.runtime.docker import PING_TIMEOUT_SECONDS
from core.runtime.docker_calls import _explanation, _root_cause
from core.runtime.docker_streams import EVENTS_RECONNECTED
from core.runtime.docker_wire import resolve_docker_url
from core.runtime.pooled_calls import PooledApiCalls
from core.runtime.streams import _StreamBridge, relay
from core.runtime.swarm_calls import (
    Starting,
    create_service,
    remove_service_quietly,
    task_logs,
    task_summary,
    tls_for,
    update_spec,
)
from core.runtime.swarm_events import (
    Snapshot,
    TaskView,
    follow_task_logs,
    manager_events_reader,
    task_changes,
    task_views,
)
from core.runtime.swarm_images import ImagePins
from core.runtime.swarm_nodes import NodeApiProbe, list_nodes, set_availability
from core.runtime.swarm_spec import (
    ENDED_STATES,
    LABEL_SPREAD_PIN,
    SwarmNode,
    replaced_failures,
    replica_info,
    replica_task,
    service_labels,
    spread_value,
    swarm_node,
    task_container,
    task_state,
    unpinned,
    unplaceable_reason,
)
from core.runtime.swarm_starts import WATCH_POLL_SECONDS, StartWatch
from core.runtime.swarm_stats import NodeStats
from core.runtime.swarm_stops import (
    REPORT_MARGIN_SECONDS,
    grace_seconds,
    stop_on_node,
    stop_outcome,
    task_by_id,
)

log = logging.getLogger(__name__)


START_TIMEOUT_SECONDS = 120.0  # placement + pull + start of one new task
TASK_POLL_SECONDS = 0.5
STARTING_POLL_SECONDS = 0.2
STOP_POLL_SECONDS = 0.1
STOP_WORKERS = 64  # replicas whose stops may wait on their nodes at once (threads, idle until then)
LISTING_ATTEMPTS = 3
NOT_A_MANAGER_FIX = (
    "point ORCHESTRY_DOCKER_URL (or DOCKER_HOST) at a Swarm manager, or run `docker swarm init` there"
)


class SwarmRuntime(PooledApiCalls):
    """Runtime protocol on a Docker Swarm (core/runtime/base.py); one service per slot."""

    _closed_message = "the Swarm runtime was closed: create a new SwarmRuntime"
    # A stop shorter than the task's own grace period (a forced down) is carried out by the engine of
    # the node that runs it, which a later, shorter stop can also ask: see swarm_stops.
    stop_cuts_short = True

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
        self.task_poll_seconds = task_poll_seconds
        self.start_timeout = start_timeout
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="swarm")
        # A stop waits on the node's engine for as long as the replica's grace period: in the pool above,
        # a scale-in of more replicas than it has threads held every one of them (task listing, node
        # events, stats: 21.5 s for a node listing behind twelve 20 s stops).  They wait here instead.
        self._stop_executor = ThreadPoolExecutor(max_workers=STOP_WORKERS, thread_name_prefix="swarm-stop")
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._node_stats = NodeStats(
            self._executor, lambda: self._api().api_version, node_docker_urls or {}, max_workers
        )
        self._bridges: set[_StreamBridge] = set()
        self._closed = False
        self._last: Snapshot | None = None
        # Listings run in the pool's threads and end in any order: each is numbered as it begins, and
        # ``_last`` keeps, for every app, the newest listing's entries (``_keep_newest``).
        self._last_lock = threading.Lock()
        self._listings = 0
        self._last_full = 0  # the listing of every app that ``_last`` was built from
        self._last_apps: dict[str, int] = {}  # app → its own listing, newer than that, merged into it
        # Why the CPU and memory of a replica (task id) are unknown in the last stats sample.
        self.stats_gaps: dict[str, str] = {}
        # Why a stop could not be as short as asked (task id → what happened instead), for the operator;
        # the engine takes each note when it reports the replica stopped.
        self.stop_notes: dict[str, str] = {}
        self._spreading: dict[str, list[str]] = {}  # app → spread values chosen for replicas starting now
        self._node_probe = NodeApiProbe()
        self.cluster_id: str | None = None
        # Every slot service being started is watched through one poll of the manager.
        self._starts = StartWatch(self._run, WATCH_POLL_SECONDS)
        self._images = ImagePins(self._run)
        # Tasks Swarm restarted are crashes from this moment on (older ones a previous controller saw).
        self._began = time.time()
        self._crashes_reported: set[str] = set()

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
                        tls=tls_for(self.docker_url),
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
            tls=tls_for(self.docker_url),
        )

    def _snapshot(self, api: APIClient, app: str | None = None) -> Snapshot:
        with self._last_lock:
            self._listings += 1
            began = self._listings
        services, tasks = self._services_and_tasks(api, app)
        nodes = {raw["ID"]: swarm_node(raw) for raw in api.nodes()}
        snapshot = Snapshot(services, tasks, nodes)
        with self._last_lock:
            self._keep_newest(snapshot, app, began)
        return snapshot

    def _keep_newest(self, snapshot: Snapshot, app: str | None, began: int) -> None:
        """Keep ``snapshot`` (of every app, or of ``app``) in ``_last`` where nothing newer is there.
        A listing of every app that began before an app's own listing and ended after it (a loaded
        host's threads finish in any order) put back what the manager said before: a replica just
        started had no figures ("its task has no container yet") until the next listing of every app,
        and a crash already counted could be forgotten and counted again."""
        if app is not None:
            if self._last is not None and began > max(self._last_full, self._last_apps.get(app, 0)):
                self._last = _with_app(self._last, snapshot, app)
                self._last_apps[app] = began
            return
        if began < self._last_full:
            return  # an older listing than the one kept
        newer = {name: at for name, at in self._last_apps.items() if at > began}
        kept = snapshot
        if self._last is not None:
            for name in newer:
                kept = _with_app(kept, self._last, name, nodes=snapshot.nodes)
        self._last, self._last_full, self._last_apps = kept, began, newer
        listed = {t.get("ID") for service_tasks in kept.tasks.values() for t in service_tasks}
        self._crashes_reported &= listed  # Swarm's task history let go of the others

    def _services_and_tasks(
        self, api: APIClient, app: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        filters = [f"{LABEL_MANAGED}=true"] + ([f"{LABEL_APP}={app}"] if app is not None else [])
        for attempt in range(LISTING_ATTEMPTS):
            services = [
                s
                for s in api.services(filters={"label": filters})
                if self._ours((s.get("Spec") or {}).get("Labels") or {})
            ]
            tasks: dict[str, list[dict[str, Any]]] = {s["ID"]: [] for s in services}
            if not services:
                return services, tasks
            try:
                listed = api.tasks(filters={"service": list(tasks)})
            except docker.errors.NotFound:
                # A service went between the two calls (a scale-in removing it): the manager refuses
                # the whole task listing, so list again rather than lose this round.
                if attempt + 1 == LISTING_ATTEMPTS:
                    raise
                continue
            for task in listed:
                if task.get("ServiceID") in tasks:
                    tasks[task["ServiceID"]].append(task)
            return services, tasks
        raise AssertionError("unreachable")

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

    async def image_available(self, image: str) -> bool:
        return await self.image_exists(image)  # already asks the registry first: nodes pull from it

    async def list_managed(self, app: str | None = None) -> list[ContainerInfo]:
        snapshot = await self._run(lambda api: self._snapshot(api, app))
        listed = snapshot.replicas() + self._unreported_crashes(snapshot)
        return sorted(listed, key=lambda i: (i.app, i.slot, i.name))

    def _unreported_crashes(self, snapshot: Snapshot) -> list[ContainerInfo]:
        """Tasks that failed since this runtime began and that Swarm restarted in their slot: listed as
        exited replicas until the reconciler, having counted the crash, removes them (``remove``)."""
        crashed = []
        for service in snapshot.services:
            tasks = snapshot.tasks.get(service["ID"], [])
            crashed += [
                info
                for info in replaced_failures(service, tasks, snapshot.nodes, self._began)
                if info.id not in self._crashes_reported
            ]
        return crashed

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
        spread, value = await self._run(lambda api: self._spread(api, request))
        if spread is None:
            return await self._create_and_start(request)
        try:
            return await self._create_and_start(spread)
        except ContainerStartError as exc:
            if "Swarm cannot place" not in str(exc):
                raise
            # The spread's choice has no room (or no longer exists): let Swarm place it anywhere.
            return await self._create_and_start(request)
        finally:
            with self._client_lock:
                self._spreading[request.app].remove(value)

    def _spread(self, api: APIClient, request: ContainerRequest) -> tuple[ContainerRequest | None, str]:
        """The request pinned (one more constraint) to the value of its first spread descriptor that
        holds the fewest of the app's replicas, counting those being created right now (a scale-out
        creates its slots at once); (None, "") when there is nothing to spread over."""
        if not request.placement_spread:
            return None, ""
        descriptor = request.placement_spread[0]
        snapshot = self._snapshot(api, request.app)
        tasks = [task for tasks in snapshot.tasks.values() for task in tasks]
        nodes = api.nodes()
        with self._client_lock:
            starting = self._spreading.setdefault(request.app, [])
            value = spread_value(descriptor, nodes, tasks, starting, request.placement_constraints)
            if value is None:
                return None, ""
            starting.append(value)
        pin = f"{descriptor}=={value}"
        pinned = replace(
            request,
            placement_constraints=(*request.placement_constraints, pin),
            labels={**request.labels, LABEL_SPREAD_PIN: pin},
        )
        return pinned, value

    async def _unpin_unplaceable(self, snapshot: Snapshot) -> None:
        """A pinned replica Swarm cannot place (its spread value's nodes are gone) loses the pin, so Swarm
        reschedules it wherever it fits: spreading must never keep a replica from running."""
        for service in snapshot.services:
            task, state = replica_task(snapshot.tasks.get(service["ID"], []))
            if state != STATE_PENDING or task is None or unplaceable_reason(task) is None:
                continue
            spec = unpinned(service)
            if spec is None:
                continue
            log.info("Swarm cannot place %s where it was spread; unpinning it", spec.get("Name"))
            try:
                await self._run(lambda api, s=service, new=spec: update_spec(api, s, new))
            except docker.errors.APIError as exc:
                log.warning("unpinning %s failed: %s", spec.get("Name"), _explanation(exc))

    async def _create_and_start(self, request: ContainerRequest) -> ContainerInfo:
        image = await self._images.pinned(request.image)
        service_id = await self._run(
            lambda api: create_service(api, request, self.cluster_id, self._ours, image)
        )
        # What the replica is built from once its task runs (the manager would only echo it back).
        labels = service_labels(request, self.cluster_id)
        service = {"ID": service_id, "Spec": {"Name": request.name, "Labels": labels}}
        try:
            async with asyncio.timeout(self.start_timeout):
                return await self._starts.started(service_id, Starting(request, service))
        except (ContainerStartError, ImageNotFound):
            await self._remove_service(service_id)  # nothing half-created
            raise
        except TimeoutError:
            state = await self._run(lambda api: task_summary(api, service_id))
            await self._remove_service(service_id)
            raise ContainerStartError(
                f"replica '{request.name}' of app '{request.app}' did not start on the Swarm within "
                f"{self.start_timeout:g} s ({state}): check the image can be pulled on every node "
                f"(docker service ps {request.name})"
            ) from None

    async def stop(self, container_id: str, timeout: float) -> None:
        """Remove the slot's service, then stop the task's container with ``timeout`` through the engine
        of the node that runs it, and return once it exited.  Left to itself, Swarm reaches the node
        ~1.4 s after the removal and stops the task with the grace period the task was created with,
        which nothing on the manager can shorten (see swarm_stops); the node's engine does both at once.
        Without a node engine to ask, this waits for the manager to report the task ended (or its node
        down), at most its grace period plus a margin, and ``stop_notes`` says why when that was longer
        than ``timeout``.  A second call with a shorter ``timeout`` (a forced down during a plain one)
        cuts the first one short."""
        found = await self._run(lambda api: self._find(api, container_id))
        if found is not None and _replaced(found[1], container_id):
            return  # ended, and Swarm runs its successor in the slot: that one is another replica
        if found is not None:
            # First: once the service is gone Swarm restarts nothing, however the container ends.
            await self._remove_service(found[0]["ID"])
        task = await self._run(lambda api: task_by_id(api, container_id))
        if task is None or task_state(task) in ENDED_STATES:
            return  # a service that had no task yet, or a task already gone or ended
        grace = grace_seconds(task)
        why_not = await self._stop_on_node(task, min(timeout, grace))
        if why_not is None:
            return
        deadline = time.monotonic() + max(0.0, grace) + REPORT_MARGIN_SECONDS
        outcome = f"it still ran {grace + REPORT_MARGIN_SECONDS:g} s later"
        while time.monotonic() < deadline:
            over = await self._run(lambda api: self._stop_over(api, container_id, grace))
            if over is not None:
                outcome = over
                break
            await asyncio.sleep(STOP_POLL_SECONDS)
        else:
            log.warning("task %s still runs %g s after it was told to stop", container_id[:12], grace)
        if timeout < grace:
            name = (found[0].get("Spec") or {}).get("Name", "?") if found else container_id[:12]
            note = f"not within {timeout:g} s: {why_not}; {outcome}"
            log.warning("stopping %s: %s", name, note)
            self.stop_notes[container_id] = note

    async def _stop_on_node(self, task: dict[str, Any], timeout: float) -> str | None:
        """Stop the task's container on its node (see swarm_stops.stop_on_node): None once it exited,
        or when there is nothing to wait for (never placed, or its node left the Swarm); else why not."""

        def work(api: APIClient) -> str | tuple[str, SwarmNode] | None:
            if not task.get("NodeID"):
                return None
            raw = api.inspect_node(task["NodeID"])
            node = swarm_node(raw)
            state = (raw.get("Status") or {}).get("State")
            if state != "ready":
                return f"node {node.hostname} is {state}"  # nothing reaches it until it is back
            url = self._node_stats.url_of(node)
            if url is None:
                return stop_on_node(None, None, node, task, timeout)
            failed = self._node_stats.recent_failure(url)
            if failed is not None:
                return failed  # it would wait out the same timeout again
            return url, node

        try:
            found = await self._run(work)
        except docker.errors.NotFound:
            return None
        if not isinstance(found, tuple):
            return found
        url, node = found
        if self._closed:
            raise RuntimeUnavailable(self._closed_message)
        loop = asyncio.get_running_loop()
        why_not = await loop.run_in_executor(
            self._stop_executor,
            lambda: stop_on_node(self._node_stats.client(url), url, node, task, timeout),
        )
        if why_not is not None:
            self._node_stats.note_failure(url, why_not)
        return why_not

    @staticmethod
    def _stop_over(api: APIClient, task_id: str, grace: float) -> str | None:
        task = task_by_id(api, task_id)
        node_ready = True
        if task is not None and task.get("NodeID"):
            try:
                node_ready = api.inspect_node(task["NodeID"])["Status"]["State"] == "ready"
            except docker.errors.NotFound:
                node_ready = False
        return stop_outcome(task, node_ready, grace)

    async def unpause(self, container_id: str) -> None:
        """Orchestry never pauses a Swarm task (and Swarm has no pause): nothing to thaw."""
        return None

    async def remove(self, container_id: str, force: bool = False) -> None:
        found = await self._run(lambda api: self._find(api, container_id))
        if found is None:
            return
        if _replaced(found[1], container_id):
            # A failed task Swarm already restarted: its slot's service runs the new one, and Swarm keeps
            # the old one as history. Removed means reported: it is not listed as a crash again.
            self._crashes_reported.add(container_id)
            return
        await self._remove_service(found[0]["ID"])

    async def logs(
        self, container_id: str, tail: int | None, since: float | None, until: float | None
    ) -> list[LogLine]:
        def work(api: APIClient) -> list[LogLine]:
            found = self._find(api, container_id)
            if found is None or not any(t.get("ID") == container_id for t in found[1]):
                return []  # a service without a task has written nothing
            name = (found[0].get("Spec") or {}).get("Name", "")
            return task_logs(api, container_id, name, tail, since)

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
            *(self._node_stats.sample(node, container) for node, container in located.values()),
            return_exceptions=True,
        )
        found: dict[str, ContainerStats] = {}
        for task_id, result in zip(located, results, strict=True):
            if isinstance(result, ContainerStats):
                found[task_id] = result._replace(container_id=task_id)
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
        await self._starts.close(RuntimeUnavailable(self._closed_message))
        for bridge in list(self._bridges):
            bridge.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._stop_executor.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            client, self._client = self._client, None
        await asyncio.to_thread(self._node_stats.close)
        if client is not None:
            await asyncio.to_thread(client.close)

    # -- create and start -------------------------------------------------------------------------

    async def _remove_service(self, service_id: str) -> None:
        await self._run(lambda api: remove_service_quietly(api, service_id))

    async def _follow_logs(self, container_id: str, since: float | None) -> AsyncIterator[LogLine]:
        found = await self._run(lambda api: self._find(api, container_id))
        if found is None:
            return
        name = (found[0].get("Spec") or {}).get("Name", "")
        bridge = _StreamBridge(asyncio.get_running_loop())
        reader = threading.Thread(
            target=follow_task_logs,
            args=(self._stream_client, bridge, container_id, name, since),
            name=f"swarm-logs-{name}",
            daemon=True,
        )
        async with aclosing(relay(self._bridges, bridge, [reader])) as items:
            async for line in items:
                yield line

    async def _events(self) -> AsyncIterator[RuntimeEvent]:
        """Task changes found by polling the manager, polled at once when it reports a change."""
        loop = asyncio.get_running_loop()
        poke = asyncio.Event()
        bridge = _StreamBridge(loop)
        self._bridges.add(bridge)
        threading.Thread(
            target=manager_events_reader,
            args=(self._stream_client, self.docker_url, bridge, lambda: loop.call_soon_threadsafe(poke.set)),
            name="swarm-events",
            daemon=True,
        ).start()
        previous: dict[str, TaskView] | None = None
        failing = False
        wait = self.task_poll_seconds
        try:
            while not self._closed:
                try:  # asyncio.timeout, not wait_for: on 3.11 that swallows a stop coming with a poke
                    async with asyncio.timeout(wait):
                        await poke.wait()
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
                current = task_views(snapshot)
                await self._unpin_unplaceable(snapshot)
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


def _with_app(
    base: Snapshot, source: Snapshot, app: str, nodes: dict[str, SwarmNode] | None = None
) -> Snapshot:
    """``base`` with ``app``'s services and tasks as ``source`` lists them (and ``source``'s nodes,
    unless ``nodes`` are given)."""

    def of_app(service: dict[str, Any]) -> bool:
        return ((service.get("Spec") or {}).get("Labels") or {}).get(LABEL_APP) == app

    others = [s for s in base.services if not of_app(s)]
    mine = [s for s in source.services if of_app(s)]
    tasks = {s["ID"]: base.tasks.get(s["ID"], []) for s in others}
    tasks.update({s["ID"]: source.tasks.get(s["ID"], []) for s in mine})
    return Snapshot(others + mine, tasks, source.nodes if nodes is None else nodes)


def _replaced(tasks: list[dict[str, Any]], task_id: str) -> bool:
    """Whether ``task_id`` is one of the slot's tasks but no longer the one that stands for it."""
    current, _state = replica_task(tasks)
    return current is not None and current.get("ID") != task_id and any(t.get("ID") == task_id for t in tasks)


__all__ = ["SwarmRuntime"]
