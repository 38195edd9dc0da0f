"""DockerRuntime: the Runtime protocol on a Docker engine, through the docker SDK.

Every SDK call is blocking, so each runs in a bounded thread pool sized to the SDK's connection pool
(a bigger pool would only queue inside urllib3).  Long-lived streams (events, followed logs) get their
own clients and threads: they hold a connection for as long as they run and must not starve the pool.
Nothing here blocks the event loop, and constructing the runtime does not touch Docker at all.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import replace
from functools import partial
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker import APIClient

from core.errors import (
    Conflict,
    ContainerStartError,
    ForeignContainer,
    ImageNotFound,
    NotFound,
    RuntimeUnavailable,
)
from core.runtime.base import (
    LABEL_APP,
    LABEL_CLUSTER,
    LABEL_HEALTH_PORT,
    LABEL_MANAGED,
    LABEL_PORT,
    LABEL_SLOT,
    LABEL_SPEC_HASH,
    LABEL_WARM,
    NODE_ACTIVE,
    STATE_CREATED,
    ContainerInfo,
    ContainerRequest,
    ContainerStats,
    LogLine,
    NodeInfo,
    PublishedPortInUse,
    RuntimeEvent,
    in_warm_pool,
)
from core.runtime.docker_calls import (
    _PORT_TAKEN,
    _explanation,
    _image_present,
    _inspect_or_none,
    _inspect_raw_or_none,
    _NetworkChanged,
    _read_logs,
    _remove_quietly,
    _root_cause,
    _sample_stats,
    _tail_text,
    _taken_port,
    find_or_create_network,
)
from core.runtime.docker_streams import EVENTS_RECONNECTED, RECONNECT_DELAYS, events_reader, follow_reader
from core.runtime.docker_wire import (
    DEFAULT_DOCKER_URL,
    REPLICA_HOST,
    WATCHED_EVENTS,
    container_info_from_inspect,
    container_info_from_summary,
    container_stats_from_docker,
    parse_docker_time,
    resolve_docker_url,
    runtime_event_from_docker,
    split_log_line,
)
from core.runtime.pooled_calls import PooledApiCalls
from core.runtime.streams import _END, _close_quietly, _lines, _StreamBridge, relay
from core.timeline import CREATED, STARTED, ReplicaTimeline

# Names other runtimes (core.runtime.swarm) import from here.
__all__ = [
    "BRIDGE_NETWORK",
    "DEFAULT_DOCKER_URL",
    "EVENTS_RECONNECTED",
    "PING_TIMEOUT_SECONDS",
    "RECONNECT_DELAYS",
    "REPLICA_HOST",
    "WATCHED_EVENTS",
    "_END",
    "DockerRuntime",
    "_StreamBridge",
    "_close_quietly",
    "_explanation",
    "_lines",
    "_root_cause",
    "_sample_stats",
    "container_info_from_inspect",
    "container_info_from_summary",
    "container_stats_from_docker",
    "parse_docker_time",
    "resolve_docker_url",
    "runtime_event_from_docker",
    "split_log_line",
]

log = logging.getLogger(__name__)


BRIDGE_NETWORK = "orchestry"
PULL_TIMEOUT_SECONDS = 15
# A dry run asking a registry whether it has an image waits no longer than a pull's first answer would.
REGISTRY_CHECK_TIMEOUT_SECONDS = 10
PING_TIMEOUT_SECONDS = 5.0
# The node poll's engine facts (id, name, version, CPUs, memory) change only when dockerd restarts, so
# /info is asked again at most this often (and after any failed poll: a restarted daemon may be
# another version).  /info is Docker's dearest read: 7-9 ms of dockerd's and containerd's CPU per call
# where the list of running containers costs 0.8 ms (measured, 50 calls each), and during a scale's
# burst of starts it answers late, holding a thread of the Docker pool meanwhile.
INFO_REFRESH_SECONDS = 60.0
# The single Docker host as a node: its replicas are reached on loopback.
LOCAL_NODE_ID = "local"
LOCAL_NODE_ADDRESS = REPLICA_HOST
LOCAL_NODE_ROLE = "standalone"
START_FIX = "start it: `sudo dockerd &` or `systemctl start docker`; or set ORCHESTRY_DOCKER_URL"


# ---------------------------------------------------------------------------------------------------
# The runtime
# ---------------------------------------------------------------------------------------------------


class DockerRuntime(PooledApiCalls):
    """Runtime protocol on a Docker engine (core/runtime/base.py)."""

    _closed_message = "the Docker runtime was closed: create a new DockerRuntime"
    timeline: ReplicaTimeline | None = None  # set by Reconciler.record_timeline
    # Each list call is an HTTP round trip through the thread pool: passes asking at once share one
    # (core/shared_listing.py).
    shares_listing = True
    # A second stop with a shorter timeout ends one under way sooner: Docker signals again and kills the
    # container when the shorter one runs out (a forced down during a plain one, core/replica_stops.py).
    stop_cuts_short = True

    def __init__(
        self,
        docker_url: str | None = None,
        max_workers: int = 10,
        start_check_seconds: float = 0.25,
        bridge_network: str = BRIDGE_NETWORK,
    ) -> None:
        """``start_check_seconds``: how long after start a replica is watched for an immediate exit
        (a command that does not exist exits 127 at once under init); such a start raises
        ContainerStartError instead of returning a replica that is already dead.
        ``bridge_network``: the Docker network of bridge-mode replicas (DESIGN.md: ``orchestry``)."""
        self.docker_url = resolve_docker_url(docker_url)
        self.max_workers = max_workers
        self.start_check_seconds = start_check_seconds
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="docker")
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self.bridge_network = bridge_network
        self._network_lock = threading.Lock()
        self._network_id: str | None = None  # the managed bridge network, once found or created
        self._bridges: set[_StreamBridge] = set()
        self._closed = False
        self.cluster_id: str | None = None
        self._engine_identity: tuple[str, str] = (LOCAL_NODE_ID, "")  # engine id and name, once known
        self._info: dict[str, Any] | None = None  # the last /info answer (see INFO_REFRESH_SECONDS)
        self._info_at = 0.0  # time.monotonic() of that answer

    def _labels(self, request: ContainerRequest) -> dict[str, str]:
        labels = {LABEL_MANAGED: "true", LABEL_APP: request.app, LABEL_SLOT: str(request.slot)}
        labels.update(request.labels)
        labels[LABEL_PORT] = str(request.host_port)
        if request.health_container_port is not None:
            labels[LABEL_HEALTH_PORT] = str(request.health_container_port)
        if self.cluster_id is not None:
            labels[LABEL_CLUSTER] = self.cluster_id
        return labels

    # -- plumbing ---------------------------------------------------------------------------------

    def _unavailable(self, reason: object) -> RuntimeUnavailable:
        return RuntimeUnavailable(
            f"Docker engine at {self.docker_url} does not answer ({reason}): {START_FIX}"
        )

    def _api(self) -> APIClient:
        """The shared low-level client, created on first use (in a worker thread: it asks the daemon
        for its API version)."""
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = docker.DockerClient(
                        base_url=self.docker_url, version="auto", max_pool_size=self.max_workers
                    )
                except docker.errors.DockerException as exc:
                    raise self._unavailable(_root_cause(exc)) from exc
                if self._client.api.base_url.startswith("http+docker://"):
                    # A unix socket never goes through a proxy, and requests re-reads the proxy
                    # environment on every call: a third of each idle Docker call's CPU.
                    self._client.api.trust_env = False
            return self._client.api

    def _stream_client(self) -> APIClient:
        """A private client for one long-lived stream; no read timeout, as streams idle for long."""
        version = self._api().api_version
        return APIClient(base_url=self.docker_url, version=version, timeout=None, max_pool_size=2)

    # -- Runtime protocol -------------------------------------------------------------------------

    async def ping(self) -> None:
        """RuntimeUnavailable unless the daemon answers within PING_TIMEOUT_SECONDS.

        A hung (not stopped) daemon accepts connections and never answers: without a deadline of its
        own the watchdog would wait out the client's 60 s timeout before saying anything.  A stopping
        one no longer accepts them but answers on those it has: the ping first connects afresh
        (``_connects``), so it never says "Docker answers" over a connection kept from before.
        """

        def work(api: APIClient) -> None:
            self._connects()
            api.ping()

        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                await self._run(work)
        except TimeoutError:
            raise self._unavailable(
                f"no answer to a ping within {PING_TIMEOUT_SECONDS:g} s: the daemon is hung or overloaded"
            ) from None

    async def version(self) -> dict[str, str]:
        """The engine's version (support bundle): server version, API version, OS, kernel."""
        found = await self._run(lambda api: api.version())
        keys = ("Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "KernelVersion", "GoVersion")
        return {key: str(found.get(key, "")) for key in keys}

    async def image_exists(self, image: str) -> bool:
        return await self._run(lambda api: _image_present(api, image))

    async def image_available(self, image: str) -> bool:
        """Here, or known to its registry (asked through the engine, as a pull would; nothing pulled)."""
        if await self.image_exists(image):
            return True

        def work(api: APIClient) -> bool:
            # Its own client: a registry that does not answer holds this call, not the shared pool's
            # connections, and for REGISTRY_CHECK_TIMEOUT_SECONDS at most.
            asker = APIClient(
                base_url=self.docker_url, version=api.api_version, timeout=REGISTRY_CHECK_TIMEOUT_SECONDS
            )
            try:
                asker.inspect_distribution(image)
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                return False  # unknown to the registry, or no registry reachable: a pull would fail
            finally:
                asker.close()
            return True

        return await self._run(work)

    async def list_managed(self, app: str | None = None) -> list[ContainerInfo]:
        filters = [f"{LABEL_MANAGED}=true"]
        if app is not None:
            filters.append(f"{LABEL_APP}={app}")
        summaries = await self._run(lambda api: api.containers(all=True, filters={"label": filters}))
        summaries = [
            s
            for s in summaries
            if self._ours(s.get("Labels") or {})
            and not in_warm_pool(s.get("State") or "", s.get("Labels") or {})
        ]
        # One list call covers running containers (the relist of every app runs often); only those that
        # stopped need an inspect for their exit code, OOM flag and error.
        running = [container_info_from_summary(s) for s in summaries if s.get("State") == "running"]
        stopped = await asyncio.gather(
            *(self.inspect(s["Id"]) for s in summaries if s.get("State") != "running")
        )
        found = running + [info for info in stopped if info is not None]
        return sorted(found, key=lambda i: (i.app, i.slot, i.name))

    async def _running_count(self) -> int:
        """How many of this installation's replicas run: one list call.  Not ``list_managed``, which
        inspects every container not running, and a container being started is one of them: its
        inspect waits on Docker's lock of that container until the start ends (0.2-0.3 s in a scale's
        burst), holding a thread of the pool and adding to the daemon's work during the starts."""
        running = await self._run(
            lambda api: api.containers(filters={"label": [f"{LABEL_MANAGED}=true"], "status": "running"})
        )
        return sum(1 for s in running if self._ours(s.get("Labels") or {}))

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        return await self._run(lambda api: _inspect_or_none(api, container_id))

    async def create_and_start(self, request: ContainerRequest) -> ContainerInfo:
        # A spec that already ran here has its image; a missing one still fails clearly in create.
        if request.verify_start and not await self.image_exists(request.image):
            await self._pull_once(request.image)
        return await self._run(lambda api: self._create_and_start(api, request))

    # -- warm pool (spec scaling.warmPool; core/warm_pool.py) -----------------------------------------

    async def list_warm(self, app: str | None = None) -> list[ContainerInfo]:
        filters = [f"{LABEL_MANAGED}=true", f"{LABEL_WARM}=true"]
        if app is not None:
            filters.append(f"{LABEL_APP}={app}")
        summaries = await self._run(
            lambda api: api.containers(all=True, filters={"label": filters, "status": STATE_CREATED})
        )
        members = [
            s
            for s in summaries
            if self._ours(s.get("Labels") or {}) and in_warm_pool(s.get("State") or "", s.get("Labels") or {})
        ]
        # Docker publishes a container's ports when it starts: the list answer of one never started has
        # none, so a bridge-mode member would read as a host-mode one (and be replaced by a restarted
        # controller as made for the other network mode).  Its inspect has the bindings it was created
        # with; host-mode members are read from the list answer alone.
        found = [container_info_from_summary(s) for s in members if _host_networked(s)]
        bridged = await asyncio.gather(*(self.inspect(s["Id"]) for s in members if not _host_networked(s)))
        found += [info for info in bridged if info is not None and info.state == STATE_CREATED]
        return sorted(found, key=lambda i: (i.app, i.slot, i.name))

    async def create_warm(self, request: ContainerRequest) -> ContainerInfo:
        if not await self.image_exists(request.image):
            await self._pull_once(request.image)

        def work(api: APIClient) -> ContainerInfo:
            container_id = self._in_free_slot(
                api, request, partial(self._on_current_network, once=self._create)
            )
            return replace(self._started_info(container_id, request), state=STATE_CREATED, started_at=None)

        return await self._run(work)

    async def start_warm(self, container_id: str, request: ContainerRequest) -> ContainerInfo | None:
        def work(api: APIClient) -> ContainerInfo | None:
            if self.timeline is not None:
                self.timeline.mark(request.name, CREATED)  # long ago: nothing left to wait for
            try:
                api.start(container_id)
            except docker.errors.APIError as exc:
                if request.network_mode == "bridge" and _network_changed(exc):
                    # Its network was removed (or doubled) after it was created: it goes too, and the
                    # caller starts the replica cold, on the network as it is now.
                    _remove_quietly(api, container_id)
                    self._forget_network()
                    return None
                if isinstance(exc, docker.errors.NotFound):
                    return None  # the member itself is gone
                _remove_quietly(api, container_id)
                raise _start_refused(exc, request) from exc
            if self.timeline is not None:
                self.timeline.mark(request.name, STARTED)
            if not request.verify_start:
                return self._started_info(container_id, request)
            return self._confirm_running(api, container_id, request)

        return await self._run(work)

    async def stop(self, container_id: str, timeout: float) -> None:
        def work(api: APIClient) -> None:
            try:
                api.stop(container_id, timeout=max(0, math.ceil(timeout)))
            except docker.errors.NotFound:
                pass  # already gone: the goal of stopping is reached

        await self._run(work)

    async def unpause(self, container_id: str) -> None:
        def work(api: APIClient) -> None:
            try:
                if api.inspect_container(container_id)["State"].get("Paused"):
                    api.unpause(container_id)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: not paused (any more)
                    raise

        await self._run(work)

    async def remove(self, container_id: str, force: bool = False) -> None:
        def work(api: APIClient) -> None:
            try:
                api.remove_container(container_id, v=True, force=force)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and "already in progress" in _explanation(exc):
                    return
                if exc.status_code == 409:
                    raise Conflict(
                        f"container {container_id[:12]} cannot be removed while it runs: "
                        f"stop it first or remove with force ({_explanation(exc)})"
                    ) from exc
                raise

        await self._run(work)

    async def logs(
        self, container_id: str, tail: int | None, since: float | None, until: float | None
    ) -> list[LogLine]:
        return await self._run(lambda api: _read_logs(api, container_id, tail, since, until))

    def follow_logs(self, container_id: str, since: float | None) -> AsyncIterator[LogLine]:
        return self._follow_logs(container_id, since)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return self._events()

    async def stats(self, container_ids: list[str]) -> dict[str, ContainerStats]:
        # One sample waits for the daemon's next 1 s tick (two, for the CPU delta): sampling containers
        # one after another would take N seconds, in parallel it takes about one sample's time.
        try:
            samples = await asyncio.gather(
                *(self._run(lambda api, cid=cid: _sample_stats(api, cid)) for cid in container_ids)
            )
        except RuntimeUnavailable:
            # Stats are observations: an engine that does not answer has none to give.  The outage is
            # the engine's to report (once); raising here would repeat it on every sample, each second.
            return {}
        return {sample.container_id: sample for sample in samples if sample is not None}

    async def nodes(self) -> list[NodeInfo]:
        """One node: the local engine. Down, with the reason, when it does not answer: under the
        identity it last answered with, so the node watch sees that node down (and up again), not a
        placeholder node joining while the engine leaves."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                info, tasks, _ = await asyncio.gather(
                    self._engine_info(),
                    self._running_count(),
                    # A stopping engine answers on kept connections: not "ready" (see ping).
                    self._run(lambda api: self._connects()),
                )
        except (RuntimeUnavailable, TimeoutError) as exc:
            self._info = None  # the daemon that answers next may be another one (restarted, upgraded)
            reason = (
                exc.message if isinstance(exc, RuntimeUnavailable) else "the Docker engine does not answer"
            )
            return [
                NodeInfo(
                    id=self._engine_identity[0],
                    hostname=self._engine_identity[1] or socket.gethostname(),
                    address=LOCAL_NODE_ADDRESS,
                    role=LOCAL_NODE_ROLE,
                    state="down",
                    availability=NODE_ACTIVE,
                    tasks=0,
                    unavailable_reason=reason,
                )
            ]
        self._engine_identity = (str(info.get("ID") or LOCAL_NODE_ID), str(info.get("Name") or ""))
        return [
            NodeInfo(
                id=self._engine_identity[0],
                hostname=self._engine_identity[1] or socket.gethostname(),
                address=LOCAL_NODE_ADDRESS,
                role=LOCAL_NODE_ROLE,
                state="ready",
                availability=NODE_ACTIVE,
                tasks=tasks,
                engine_version=str(info.get("ServerVersion") or ""),
                cpu_cores=float(info["NCPU"]) if info.get("NCPU") else None,
                memory_bytes=int(info["MemTotal"]) if info.get("MemTotal") else None,
            )
        ]

    async def _engine_info(self) -> dict[str, Any]:
        """Docker's /info, asked again only after INFO_REFRESH_SECONDS; the running count, asked on
        every poll, is what says the engine answers."""
        if self._info is None or time.monotonic() - self._info_at >= INFO_REFRESH_SECONDS:
            self._info = await self._run(lambda api: api.info())
            self._info_at = time.monotonic()
        return self._info

    async def set_node_availability(self, node_id: str, availability: str) -> NodeInfo:
        known = {LOCAL_NODE_ID, socket.gethostname(), *self._engine_identity}
        if node_id not in known:
            raise NotFound(
                f"no node '{node_id}': a single Docker host has one node, '{socket.gethostname()}' "
                "(see `orchestry nodes`)"
            )
        raise Conflict(
            f"node '{node_id}' cannot become {availability}: a single Docker host has no other node to "
            "move replicas to; drain and activate need ORCHESTRY_RUNTIME=swarm"
        )

    async def close(self) -> None:
        self._closed = True
        for bridge in list(self._bridges):
            bridge.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    # -- create and start -------------------------------------------------------------------------

    async def _pull_once(self, image: str) -> None:
        """One pull attempt with a short timeout; a failure becomes ImageNotFound naming the fix."""

        def work(api: APIClient) -> None:
            puller = APIClient(
                base_url=self.docker_url, version=api.api_version, timeout=PULL_TIMEOUT_SECONDS
            )
            try:
                puller.pull(image)
            finally:
                puller.close()

        try:
            await self._run(work)
        except RuntimeUnavailable:
            raise
        except Exception as exc:
            raise ImageNotFound(
                f"image '{image}' is not present on this Docker engine and could not be pulled: "
                f"build or load it (docker build/import), or fix spec.image"
            ) from exc
        if not await self.image_exists(image):
            raise ImageNotFound(
                f"image '{image}' is not present on this Docker engine and could not be pulled: "
                f"build or load it (docker build/import), or fix spec.image"
            )

    def _create_and_start(self, api: APIClient, request: ContainerRequest) -> ContainerInfo:
        container_id = self._in_free_slot(
            api, request, partial(self._on_current_network, once=self._create_and_start_once)
        )
        if not request.verify_start:
            return self._started_info(container_id, request)
        return self._confirm_running(api, container_id, request)

    def _in_free_slot(
        self,
        api: APIClient,
        request: ContainerRequest,
        create: Callable[[APIClient, ContainerRequest], str],
    ) -> str:
        """``create`` the container; if its name is taken, clear the leftover and create once more."""
        try:
            return create(api, request)
        except _NameTaken:
            # Only a slot whose name is taken (a replica left stopped, a crash) is inspected: a fresh
            # slot's start costs Docker no extra call.
            self._clear_leftover(api, request.name)
            try:
                return create(api, request)
            except _NameTaken as exc:
                raise Conflict(
                    f"container '{request.name}' was created by someone else meanwhile: {exc}"
                ) from exc

    def _on_current_network(
        self,
        api: APIClient,
        request: ContainerRequest,
        once: Callable[[APIClient, ContainerRequest, str | None], str],
    ) -> str:
        """``once`` on the replica's network (None in host mode); if that network changed meanwhile,
        look it up again and run ``once`` once more."""
        try:
            return once(api, request, self._network_for(api, request))
        except _NetworkChanged:
            # The network was removed, or a second one of its name appeared, since this process looked:
            # look again (that also settles duplicates) and try once more.
            self._forget_network()
            return once(api, request, self._network_for(api, request))

    def _network_for(self, api: APIClient, request: ContainerRequest) -> str | None:
        return self._bridge_network_id(api) if request.network_mode == "bridge" else None

    def _create_and_start_once(
        self, api: APIClient, request: ContainerRequest, network_id: str | None
    ) -> str:
        container_id = self._create(api, request, network_id)
        if self.timeline is not None:
            self.timeline.mark(request.name, CREATED)
        try:
            api.start(container_id)
            if self.timeline is not None:
                self.timeline.mark(request.name, STARTED)
        except docker.errors.APIError as exc:
            _remove_quietly(api, container_id)
            if network_id and _network_changed(exc):
                raise _NetworkChanged() from exc
            raise _start_refused(exc, request) from exc
        return container_id

    def _started_info(self, container_id: str, request: ContainerRequest) -> ContainerInfo:
        """What an inspect would say of a container just started, without asking Docker again."""
        labels = self._labels(request)
        return ContainerInfo(
            id=container_id,
            name=request.name,
            app=request.app,
            slot=request.slot,
            spec_hash=labels.get(LABEL_SPEC_HASH, ""),
            state="running",
            host=REPLICA_HOST,
            port=request.host_port,
            labels=labels,
            container_port=request.container_port if request.network_mode == "bridge" else None,
            health_port=request.health_host_port,
            health_container_port=request.health_container_port,
            started_at=time.time(),
        )

    def _clear_leftover(self, api: APIClient, name: str) -> None:
        existing = _inspect_raw_or_none(api, name)
        if existing is None:
            return
        labels = existing.get("Config", {}).get("Labels") or {}
        if labels.get(LABEL_MANAGED) != "true":
            raise Conflict(
                f"a container named '{name}' exists and is not managed by Orchestry: "
                f"rename or remove it (docker rm {name}), or choose another app name"
            )
        if not self._ours(labels):
            raise ForeignContainer(
                f"a container named '{name}' belongs to another Orchestry installation (cluster "
                f"{labels.get(LABEL_CLUSTER, '')[:12]}) on this Docker engine: delete the app there, or "
                f"choose another app name here"
            )
        if (existing.get("State") or {}).get("Running"):
            raise Conflict(
                f"container '{name}' already exists and is running ({existing['Id'][:12]}): "
                f"stop it before starting a new replica in its slot"
            )
        _remove_quietly(api, existing["Id"])

    def _bridge_network_id(self, api: APIClient) -> str:
        """The id of Orchestry's bridge network, created on first use and reused from then on."""
        with self._network_lock:  # one check-and-create at a time in this process
            if self._network_id is None:
                self._network_id = find_or_create_network(api, self.bridge_network)
            return self._network_id

    def _forget_network(self) -> None:
        with self._network_lock:
            self._network_id = None

    def _create(self, api: APIClient, request: ContainerRequest, network_id: str | None) -> str:
        labels = self._labels(request)
        environment = dict(request.environment)
        bridge = request.network_mode == "bridge"
        if bridge:
            if request.container_port is None:
                raise ContainerStartError(
                    f"replica '{request.name}' uses bridge networking but no container port is set: "
                    f"add spec.ports[0].containerPort"
                )
            # Its own network namespace: listen on every interface there, or the published port
            # (which Docker forwards to the container's bridge address) finds nothing.
            environment.setdefault("PORT", str(request.container_port))
            environment.setdefault("BIND_HOST", "0.0.0.0")
        # Only ever on 127.0.0.1: nginx and the health checks are the only clients.
        published = {request.container_port: (REPLICA_HOST, request.host_port)}
        if request.health_container_port is not None and request.health_host_port is not None:
            published[request.health_container_port] = (REPLICA_HOST, request.health_host_port)
        else:
            # Replicas share the host's network: each must bind its own loopback port.
            environment.setdefault("PORT", str(request.host_port))
            environment.setdefault("BIND_HOST", REPLICA_HOST)
        host_config = api.create_host_config(
            init=True,  # without an init, a shell as PID 1 ignores SIGTERM and stop waits out the timeout
            # The network itself, by id (names are not unique); "bridge" would mean docker0.
            network_mode=network_id if bridge and network_id else "host",
            nano_cpus=request.cpu_millis * 1_000_000 if request.cpu_millis else None,
            mem_limit=request.memory_bytes,
            port_bindings=dict(published) if bridge else None,
        )
        networking = (
            api.create_networking_config({network_id: api.create_endpoint_config()})
            if bridge and network_id
            else None
        )
        try:
            created = api.create_container(
                image=request.image,
                command=request.command,
                name=request.name,
                environment=environment,
                labels=labels,
                ports=list(published) if bridge else None,
                host_config=host_config,
                networking_config=networking,
                stop_timeout=request.stop_grace_seconds,
            )
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(
                f"image '{request.image}' is not present on this Docker engine and could not be pulled: "
                f"build or load it (docker build/import), or fix spec.image"
            ) from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise _NameTaken(_explanation(exc)) from exc
            if network_id and _network_changed(exc):
                raise _NetworkChanged() from exc
            raise ContainerStartError(
                f"container '{request.name}' of app '{request.app}' could not be created: {_explanation(exc)}"
            ) from exc
        return created["Id"]

    def _confirm_running(self, api: APIClient, container_id: str, request: ContainerRequest) -> ContainerInfo:
        """Watch the new replica briefly: one that exits at once never started in any useful sense."""
        deadline = time.monotonic() + self.start_check_seconds
        while True:
            raw = _inspect_raw_or_none(api, container_id)
            if raw is None:
                raise ContainerStartError(
                    f"container '{request.name}' of app '{request.app}' vanished right after start: "
                    f"another process removed it"
                )
            if not (raw.get("State") or {}).get("Running"):
                break
            if time.monotonic() >= deadline:
                return container_info_from_inspect(raw)
            time.sleep(0.05)
        state = raw.get("State") or {}
        output = _tail_text(api, container_id, lines=5)
        _remove_quietly(api, container_id)
        detail = state.get("Error") or output or "no output"
        raise ContainerStartError(
            f"container '{request.name}' of app '{request.app}' exited right after start with code "
            f"{state.get('ExitCode')}: {detail}. Fix spec.command (or the image's entrypoint)"
        )

    # -- streams ----------------------------------------------------------------------------------

    async def _follow_logs(self, container_id: str, since: float | None) -> AsyncIterator[LogLine]:
        info = await self.inspect(container_id)
        if info is None:
            return  # already gone: nothing more will ever be written
        bridge = _StreamBridge(asyncio.get_running_loop(), readers=2)
        readers = [
            threading.Thread(
                target=follow_reader,
                args=(self._stream_client, bridge, info, stream_name, since),
                name=f"docker-logs-{info.name}-{stream_name}",
                daemon=True,
            )
            for stream_name in ("stdout", "stderr")
        ]
        async with aclosing(relay(self._bridges, bridge, readers)) as items:
            async for line in items:
                yield line

    async def _events(self) -> AsyncIterator[RuntimeEvent]:
        bridge = _StreamBridge(asyncio.get_running_loop())
        reader = threading.Thread(
            target=events_reader,
            args=(self._stream_client, self.docker_url, bridge),
            name="docker-events",
            daemon=True,
        )
        async with aclosing(relay(self._bridges, bridge, [reader])) as items:
            async for event in items:
                yield event


def _network_changed(exc: docker.errors.APIError) -> bool:
    """Docker refused a create or start because the bridge network it names is gone (removed since this
    process looked it up: Docker checks at start, not at create) or has a twin of its name."""
    explanation = _explanation(exc)
    if "is ambiguous" in explanation:
        return True
    return exc.status_code == 404 and "network" in explanation.lower()


def _host_networked(summary: dict[str, object]) -> bool:
    """A container of the list answer that shares the host's network (host networking mode)."""
    host_config = summary.get("HostConfig")
    return isinstance(host_config, dict) and host_config.get("NetworkMode") == "host"


def _start_refused(exc: docker.errors.APIError, request: ContainerRequest) -> ContainerStartError:
    """Why Docker refused to start the replica ``request`` describes, in the user's words."""
    if request.network_mode == "bridge" and _PORT_TAKEN.search(_explanation(exc)):
        port = _taken_port(_explanation(exc), request)
        return PublishedPortInUse(
            port,
            f"published port {REPLICA_HOST}:{port} of replica '{request.name}' is "
            f"already in use by another program: Docker refused it ({_explanation(exc)})",
        )
    return ContainerStartError(
        f"container '{request.name}' of app '{request.app}' could not start: {_explanation(exc)}. "
        f"Fix spec.command / spec.image or free the port {request.host_port}"
    )


class _NameTaken(Exception):
    """Docker refused a create: a container of the replica's name exists (its explanation)."""
