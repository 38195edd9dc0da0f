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
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

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
    NODE_ACTIVE,
    ContainerInfo,
    ContainerRequest,
    ContainerStats,
    LogLine,
    NodeInfo,
    PublishedPortInUse,
    RuntimeEvent,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
BRIDGE_NETWORK = "orchestry"
REPLICA_HOST = "127.0.0.1"
WATCHED_EVENTS = ("die", "oom", "start", "stop", "destroy", "kill", "health_status")
EVENTS_RECONNECTED = "reconnected"
# Backoff between attempts to reopen a broken events stream; the last value repeats.  An attempt on an
# engine that is down costs one failed connect, and the first one that succeeds is what tells the
# engine Docker is back: keep the cap short.
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0)
STREAM_QUEUE_SIZE = 1000
PULL_TIMEOUT_SECONDS = 15
PING_TIMEOUT_SECONDS = 5.0
# The single Docker host as a node: its replicas are reached on loopback.
LOCAL_NODE_ID = "local"
LOCAL_NODE_ADDRESS = REPLICA_HOST
LOCAL_NODE_ROLE = "standalone"
START_FIX = "start it: `sudo dockerd &` or `systemctl start docker`; or set ORCHESTRY_DOCKER_URL"


def resolve_docker_url(docker_url: str | None) -> str:
    """The explicit URL, else ORCHESTRY_DOCKER_URL, else DOCKER_HOST, else the local socket."""
    return (
        docker_url
        or os.environ.get("ORCHESTRY_DOCKER_URL")
        or os.environ.get("DOCKER_HOST")
        or DEFAULT_DOCKER_URL
    )


# ---------------------------------------------------------------------------------------------------
# Pure translation of Docker's answers (tested without Docker through the runtime's integration tests)
# ---------------------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_docker_time(text: str | None) -> float | None:
    """Docker's RFC 3339 timestamps (nanosecond fractions) → epoch seconds; the zero time → None."""
    if not text or text.startswith("0001-01-01"):
        return None
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    offset = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(whole + offset).timestamp()
    if fraction:
        seconds += int(fraction) / 10 ** len(fraction)
    return seconds


def split_log_line(raw: str) -> tuple[float, str]:
    """``"<RFC3339Nano> message"`` (docker logs --timestamps) → (epoch, message)."""
    stamp, _, message = raw.partition(" ")
    parsed = parse_docker_time(stamp)
    if parsed is None:  # not a timestamped line: keep the text, date it now
        return time.time(), raw
    return parsed, message


def _slot_of(labels: dict[str, str]) -> int:
    try:
        return int(labels.get(LABEL_SLOT, "0"))
    except ValueError:
        return 0


def _label_port(labels: dict[str, str]) -> int:
    try:
        return int(labels.get(LABEL_PORT, "0"))
    except ValueError:
        return 0


def _published_from_bindings(bindings: dict[str, Any] | None) -> dict[int, int]:
    """Container port → host port of the TCP ports bound on 127.0.0.1, from HostConfig's
    ``PortBindings`` (``{"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "24123"}]}``)."""
    published: dict[int, int] = {}
    for key, entries in (bindings or {}).items():
        number, _, protocol = key.partition("/")
        for entry in entries or []:
            if protocol in ("", "tcp") and entry.get("HostIp") == REPLICA_HOST and entry.get("HostPort"):
                published.setdefault(int(number), int(entry["HostPort"]))
    return published


def _published_from_summary(ports: list[dict[str, Any]] | None) -> dict[int, int]:
    """The same from the list endpoint's ``Ports`` (``[{"IP", "PrivatePort", "PublicPort", "Type"}]``)."""
    published: dict[int, int] = {}
    for entry in ports or []:
        if entry.get("Type", "tcp") == "tcp" and entry.get("IP") == REPLICA_HOST and entry.get("PublicPort"):
            published.setdefault(int(entry["PrivatePort"]), int(entry["PublicPort"]))
    return published


class _Reach(NamedTuple):
    port: int
    container_port: int | None
    health_port: int | None
    health_container_port: int | None


def _ports_of(labels: dict[str, str], published: dict[int, int]) -> _Reach:
    """Where a replica is reached, from what Docker published (bridge) or its label (host).

    With a second published port (the health check's own), the label's host port tells which binding
    nginx serves, and the health-port label which one the probe uses.
    """
    labelled = _label_port(labels)
    if not published:
        return _Reach(labelled, None, None, None)
    serving = next((c for c, h in published.items() if h == labelled), min(published))
    try:
        health = int(labels.get(LABEL_HEALTH_PORT, "0"))
    except ValueError:
        health = 0
    has_health = health in published and health != serving
    if not has_health:
        return _Reach(published[serving], serving, None, None)
    return _Reach(published[serving], serving, published[health], health)


def container_info_from_inspect(data: dict[str, Any]) -> ContainerInfo:
    labels = data.get("Config", {}).get("Labels") or {}
    state = data.get("State") or {}
    status = state.get("Status", "unknown")
    # A bridge replica is reached where Docker actually published it; the label is what was asked for.
    reach = _ports_of(labels, _published_from_bindings((data.get("HostConfig") or {}).get("PortBindings")))
    return ContainerInfo(
        id=data["Id"],
        name=data.get("Name", "").lstrip("/"),
        app=labels.get(LABEL_APP, ""),
        slot=_slot_of(labels),
        spec_hash=labels.get(LABEL_SPEC_HASH, ""),
        state=status,
        host=REPLICA_HOST,
        port=reach.port,
        labels=dict(labels),
        container_port=reach.container_port,
        health_port=reach.health_port,
        health_container_port=reach.health_container_port,
        exit_code=state.get("ExitCode") if status in ("exited", "dead") else None,
        oom_killed=bool(state.get("OOMKilled", False)),
        started_at=parse_docker_time(state.get("StartedAt")),
        finished_at=parse_docker_time(state.get("FinishedAt")),
        error=state.get("Error", "") or "",
    )


def container_info_from_summary(summary: dict[str, Any]) -> ContainerInfo:
    """A running container from the list endpoint alone (no per-container inspect).

    The list answer lacks the start time, so the creation time stands in for it; a container that is
    not running needs an inspect for its exit code and OOM flag.
    """
    labels = summary.get("Labels") or {}
    reach = _ports_of(labels, _published_from_summary(summary.get("Ports")))
    names = summary.get("Names") or [""]
    created = summary.get("Created")
    return ContainerInfo(
        id=summary["Id"],
        name=names[0].lstrip("/"),
        app=labels.get(LABEL_APP, ""),
        slot=_slot_of(labels),
        spec_hash=labels.get(LABEL_SPEC_HASH, ""),
        state=summary.get("State", "unknown"),
        host=REPLICA_HOST,
        port=reach.port,
        labels=dict(labels),
        container_port=reach.container_port,
        health_port=reach.health_port,
        health_container_port=reach.health_container_port,
        started_at=float(created) if isinstance(created, int | float) else None,
    )


def runtime_event_from_docker(raw: dict[str, Any]) -> RuntimeEvent | None:
    """One decoded Docker event → RuntimeEvent; None for anything that is not a watched action."""
    action = str(raw.get("Action") or raw.get("status") or "").split(":", 1)[0].strip()
    if action not in WATCHED_EVENTS:
        return None
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    exit_code = attributes.get("exitCode")
    slot = attributes.get(LABEL_SLOT)
    when = raw.get("timeNano")
    return RuntimeEvent(
        action=action,
        container_id=actor.get("ID") or raw.get("id", ""),
        app=attributes.get(LABEL_APP, ""),
        slot=int(slot) if slot and slot.isdigit() else None,
        time=when / 1e9 if when else float(raw.get("time", time.time())),
        exit_code=int(exit_code) if exit_code is not None and str(exit_code).lstrip("-").isdigit() else None,
    )


def container_stats_from_docker(
    container_id: str, raw: dict[str, Any], nano_cpus: int, memory_limit: int
) -> ContainerStats:
    """A ``stats(stream=False)`` answer (it carries the previous tick in ``precpu_stats``) → figures.

    CPU % of one core = Δcontainer / Δsystem × online CPUs × 100.  Memory excludes the inactive file
    cache, as ``docker stats`` does (cgroup v1 calls it ``total_inactive_file``, v2 ``inactive_file``).
    """
    cpu = raw.get("cpu_stats") or {}
    pre = raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    of_core = cpu_delta / system_delta * online * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0
    of_limit = of_core / (nano_cpus / 1e9) if nano_cpus else None

    memory = raw.get("memory_stats") or {}
    details = memory.get("stats") or {}
    inactive = details.get("total_inactive_file", details.get("inactive_file", 0))
    usage = max(int(memory.get("usage", 0)) - int(inactive), 0)
    limit = memory_limit or None
    return ContainerStats(
        container_id=container_id,
        cpu_percent_of_core=of_core,
        cpu_percent_of_limit=of_limit,
        memory_bytes=usage,
        memory_limit_bytes=limit,
        memory_percent=usage / limit * 100.0 if limit else None,
        timestamp=parse_docker_time(raw.get("read")) or time.time(),
    )


# ---------------------------------------------------------------------------------------------------
# Thread → asyncio hand-over for blocking streams
# ---------------------------------------------------------------------------------------------------

_END = object()


class _StreamBridge:
    """Carries items from reader threads to one async consumer through a bounded queue.

    The readers block when the consumer falls behind (the queue is the back-pressure); ``stop()`` from
    the consumer's side closes the open Docker streams so a reader blocked in a socket read wakes up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, readers: int = 1) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=STREAM_QUEUE_SIZE)
        self.stopped = threading.Event()
        self._open: set[Any] = set()
        self._lock = threading.Lock()
        self._readers_left = readers

    def put(self, item: object) -> bool:
        """From a reader thread: hand one item over; False once the consumer has gone."""
        try:
            future = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        except RuntimeError:  # the loop is closed
            return False
        while True:
            try:
                future.result(timeout=0.5)
                return True
            except FutureTimeout:
                if self.stopped.is_set():
                    future.cancel()
                    return False
            except Exception:
                return False

    def reader_done(self) -> None:
        with self._lock:
            self._readers_left -= 1
            last = self._readers_left == 0
        if last:
            self.put(_END)

    def track(self, stream: Any) -> None:
        with self._lock:
            self._open.add(stream)
        if self.stopped.is_set():
            _close_quietly(stream)

    def untrack(self, stream: Any) -> None:
        with self._lock:
            self._open.discard(stream)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            streams = list(self._open)
        for stream in streams:
            _close_quietly(stream)

    async def items(self) -> AsyncIterator[Any]:
        try:
            while True:
                item = await self.queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stop()


def _close_quietly(closable: Any) -> None:
    try:
        closable.close()
    except Exception:  # closing a stream whose socket is already gone
        log.debug("closing a docker stream failed", exc_info=True)


# ---------------------------------------------------------------------------------------------------
# The runtime
# ---------------------------------------------------------------------------------------------------


class DockerRuntime:
    """Runtime protocol on a Docker engine (core/runtime/base.py)."""

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

    def _ours(self, labels: dict[str, str]) -> bool:
        """Containers from before cluster ids (no label) count as ours, so an upgrade adopts them."""
        owner = labels.get(LABEL_CLUSTER)
        return owner is None or self.cluster_id is None or owner == self.cluster_id

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

    def _guarded(self, work: Callable[[APIClient], T]) -> T:
        try:
            return work(self._api())
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise self._unavailable(_root_cause(exc)) from exc

    async def _run(self, work: Callable[[APIClient], T]) -> T:
        if self._closed:
            raise RuntimeUnavailable("the Docker runtime was closed: create a new DockerRuntime")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, work)

    # -- Runtime protocol -------------------------------------------------------------------------

    async def ping(self) -> None:
        """RuntimeUnavailable unless the daemon answers within PING_TIMEOUT_SECONDS.

        A hung (not stopped) daemon accepts connections and never answers: without a deadline of its
        own the watchdog would wait out the client's 60 s timeout before saying anything.
        """

        def work(api: APIClient) -> None:
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

    async def list_managed(self, app: str | None = None) -> list[ContainerInfo]:
        filters = [f"{LABEL_MANAGED}=true"]
        if app is not None:
            filters.append(f"{LABEL_APP}={app}")
        summaries = await self._run(lambda api: api.containers(all=True, filters={"label": filters}))
        summaries = [s for s in summaries if self._ours(s.get("Labels") or {})]
        # One list call covers running containers (the relist of every app runs often); only those that
        # stopped need an inspect for their exit code, OOM flag and error.
        running = [container_info_from_summary(s) for s in summaries if s.get("State") == "running"]
        stopped = await asyncio.gather(
            *(self.inspect(s["Id"]) for s in summaries if s.get("State") != "running")
        )
        found = running + [info for info in stopped if info is not None]
        return sorted(found, key=lambda i: (i.app, i.slot, i.name))

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        return await self._run(lambda api: _inspect_or_none(api, container_id))

    async def create_and_start(self, request: ContainerRequest) -> ContainerInfo:
        # A spec that already ran here has its image; a missing one still fails clearly in create.
        if request.verify_start and not await self.image_exists(request.image):
            await self._pull_once(request.image)
        return await self._run(lambda api: self._create_and_start(api, request))

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
        """One node: the local engine. Down, with the reason, when it does not answer."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                info, replicas = await asyncio.gather(self._run(lambda api: api.info()), self.list_managed())
        except (RuntimeUnavailable, TimeoutError) as exc:
            reason = (
                exc.message if isinstance(exc, RuntimeUnavailable) else "the Docker engine does not answer"
            )
            return [
                NodeInfo(
                    id=LOCAL_NODE_ID,
                    hostname=socket.gethostname(),
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
                tasks=sum(1 for r in replicas if r.running),
                engine_version=str(info.get("ServerVersion") or ""),
                cpu_cores=float(info["NCPU"]) if info.get("NCPU") else None,
                memory_bytes=int(info["MemTotal"]) if info.get("MemTotal") else None,
            )
        ]

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
        self._clear_leftover(api, request.name)
        try:
            container_id = self._create_and_start_once(api, request)
        except _NetworkChanged:
            # The network was removed, or a second one of its name appeared, since this process looked:
            # look again (that also settles duplicates) and try once more.
            self._forget_network()
            container_id = self._create_and_start_once(api, request)
        if not request.verify_start:
            return self._started_info(container_id, request)
        return self._confirm_running(api, container_id, request)

    def _create_and_start_once(self, api: APIClient, request: ContainerRequest) -> str:
        network_id = self._bridge_network_id(api) if request.network_mode == "bridge" else None
        container_id = self._create(api, request, network_id)
        try:
            api.start(container_id)
        except docker.errors.APIError as exc:
            _remove_quietly(api, container_id)
            if network_id and "is ambiguous" in _explanation(exc):
                raise _NetworkChanged() from exc
            if request.network_mode == "bridge" and _PORT_TAKEN.search(_explanation(exc)):
                port = _taken_port(_explanation(exc), request)
                raise PublishedPortInUse(
                    port,
                    f"published port {REPLICA_HOST}:{port} of replica '{request.name}' is "
                    f"already in use by another program: Docker refused it ({_explanation(exc)})",
                ) from exc
            raise ContainerStartError(
                f"container '{request.name}' of app '{request.app}' could not start: {_explanation(exc)}. "
                f"Fix spec.command / spec.image or free the port {request.host_port}"
            ) from exc
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
                self._network_id = self._find_or_create_network(api)
            return self._network_id

    def _forget_network(self) -> None:
        with self._network_lock:
            self._network_id = None

    def _find_or_create_network(self, api: APIClient) -> str:
        name = self.bridge_network
        found = _networks_named(api, name)
        if found and not _managed(found):
            raise ContainerStartError(
                f"a Docker network named '{name}' exists but Orchestry did not create it (it lacks the "
                f"label {LABEL_MANAGED}=true), so bridge-mode replicas will not join it: remove or "
                f"rename it (docker network rm {name}), or use host networking (ORCHESTRY_NETWORK_MODE=host)"
            )
        if not found:
            try:
                created = api.create_network(
                    name, driver="bridge", labels={LABEL_MANAGED: "true"}, check_duplicate=True
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: another controller created it a moment ago
                    raise ContainerStartError(
                        f"the Docker network '{name}' for bridge-mode replicas could not be created: "
                        f"{_explanation(exc)}. Free an address pool (docker network prune) or use "
                        f"host networking (ORCHESTRY_NETWORK_MODE=host)"
                    ) from exc
            else:
                log.info("created the Docker network '%s' (%s)", name, str(created.get("Id"))[:12])
            found = _networks_named(api, name)
        managed = _managed(found)
        if not managed:
            raise ContainerStartError(
                f"the Docker network '{name}' vanished right after it was created: another program "
                f"removes it; stop that, or use host networking (ORCHESTRY_NETWORK_MODE=host)"
            )
        # Docker's duplicate check is best effort: two controllers creating at once can both succeed,
        # and then Docker refuses to start any container on the name ("is ambiguous").  Every controller
        # settles on the oldest and removes the other managed ones; Docker refuses to remove a network
        # that has containers, so one in use is never taken away.
        managed.sort(key=lambda n: (parse_docker_time(n.get("Created")) or 0.0, n["Id"]))
        for duplicate in managed[1:]:
            try:
                api.remove_network(duplicate["Id"])
                log.info("removed a duplicate of the Docker network '%s' (%s)", name, duplicate["Id"][:12])
            except docker.errors.APIError as exc:
                log.warning("the Docker network '%s' has a duplicate that stays: %s", name, _explanation(exc))
        return str(managed[0]["Id"])

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
                raise Conflict(
                    f"container '{request.name}' was created by someone else meanwhile: {_explanation(exc)}"
                ) from exc
            if network_id and exc.status_code == 404 and "network" in _explanation(exc).lower():
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
        self._bridges.add(bridge)
        for stream_name in ("stdout", "stderr"):
            threading.Thread(
                target=self._follow_reader,
                args=(bridge, info, stream_name, since),
                name=f"docker-logs-{info.name}-{stream_name}",
                daemon=True,
            ).start()
        try:
            async for line in bridge.items():
                yield line
        finally:
            self._bridges.discard(bridge)

    def _follow_reader(
        self, bridge: _StreamBridge, info: ContainerInfo, stream_name: str, since: float | None
    ) -> None:
        client: APIClient | None = None
        try:
            client = self._stream_client()
            options: dict[str, Any] = {"stdout": stream_name == "stdout", "stderr": stream_name == "stderr"}
            if since:
                options["since"] = float(since)
            stream = client.logs(info.id, stream=True, follow=True, timestamps=True, **options)
            bridge.track(stream)
            try:
                for text in _lines(stream):
                    stamp, message = split_log_line(text)
                    line = LogLine(stamp, info.id, info.name, message, stream_name)
                    if not bridge.put(line):
                        return
            finally:
                bridge.untrack(stream)
        except docker.errors.NotFound:
            pass  # the container went away: the stream simply ends
        except Exception:
            if not bridge.stopped.is_set():
                log.warning("following logs of %s (%s) broke off", info.name, stream_name, exc_info=True)
        finally:
            if client is not None:
                _close_quietly(client)
            bridge.reader_done()

    async def _events(self) -> AsyncIterator[RuntimeEvent]:
        bridge = _StreamBridge(asyncio.get_running_loop())
        self._bridges.add(bridge)
        threading.Thread(
            target=self._events_reader, args=(bridge,), name="docker-events", daemon=True
        ).start()
        try:
            async for event in bridge.items():
                yield event
        finally:
            self._bridges.discard(bridge)

    def _events_reader(self, bridge: _StreamBridge) -> None:
        """Reads the events stream and reopens it with backoff whenever it breaks.

        Docker replays at most its last 1000 events, so after a gap the consumer must relist: the
        synthetic ``reconnected`` event tells it when.
        """
        filters = {"type": ["container"], "label": [f"{LABEL_MANAGED}=true"], "event": list(WATCHED_EVENTS)}
        connected_before = False
        failures = 0
        broken_since: float | None = None  # said once per outage, however many attempts it takes
        try:
            while not bridge.stopped.is_set():
                client: APIClient | None = None
                try:
                    client = self._stream_client()
                    stream = client.events(filters=filters, decode=True)
                    bridge.track(stream)
                    if broken_since is not None:
                        log.info(
                            "Docker events stream at %s is back after %.1f s",
                            self.docker_url,
                            time.monotonic() - broken_since,
                        )
                    # Also after a first connect that needed retries: the consumer must relist.
                    resumed = connected_before or failures > 0
                    failures, broken_since, connected_before = 0, None, True
                    if resumed and not bridge.put(
                        RuntimeEvent(EVENTS_RECONNECTED, container_id="", app="", slot=None, time=time.time())
                    ):
                        return
                    try:
                        for raw in stream:
                            event = runtime_event_from_docker(raw)
                            if event is not None and not bridge.put(event):
                                return
                    finally:
                        bridge.untrack(stream)
                except Exception as exc:
                    if not bridge.stopped.is_set() and broken_since is None:
                        broken_since = time.monotonic()
                        log.warning(
                            "Docker events stream at %s broke: %s; reconnecting until it answers",
                            self.docker_url,
                            _root_cause(exc),
                        )
                finally:
                    if client is not None:
                        _close_quietly(client)
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                bridge.stopped.wait(delay)
        finally:
            bridge.put(_END)


# ---------------------------------------------------------------------------------------------------
# Blocking helpers (run in worker threads)
# ---------------------------------------------------------------------------------------------------


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's text: 'No such file or directory' beats three layers of wrapping."""
    seen = exc
    for _ in range(20):  # bounded: a chain could in principle loop
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
    text = str(seen) or type(seen).__name__
    return text if len(text) < 300 else text[:300] + "…"


def _explanation(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc)


class _NetworkChanged(Exception):
    """The bridge network this process knew was removed, or got a namesake, behind its back."""


# Docker's two ways of saying a published port is taken: by another program (the userland proxy could
# not bind it) or by another container (its own port allocator).
_PORT_TAKEN = re.compile(r"address already in use|port is already allocated", re.IGNORECASE)


def _taken_port(explanation: str, request: ContainerRequest) -> int:
    """Which of the request's published ports Docker could not bind (its message names it)."""
    named = {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", explanation)}
    if request.health_host_port is not None and request.health_host_port in named - {request.host_port}:
        return request.health_host_port
    return request.host_port


def _networks_named(api: APIClient, name: str) -> list[dict[str, Any]]:
    """Networks named exactly ``name``: Docker's name filter also matches names that merely contain it."""
    return [n for n in api.networks(names=[name]) if n.get("Name") == name]


def _managed(networks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in networks if (n.get("Labels") or {}).get(LABEL_MANAGED) == "true"]


def _image_present(api: APIClient, image: str) -> bool:
    try:
        api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.NotFound:
        return False
    return True


def _inspect_raw_or_none(api: APIClient, container_id: str) -> dict[str, Any] | None:
    try:
        return api.inspect_container(container_id)
    except docker.errors.NotFound:
        return None


def _inspect_or_none(api: APIClient, container_id: str) -> ContainerInfo | None:
    raw = _inspect_raw_or_none(api, container_id)
    return None if raw is None else container_info_from_inspect(raw)


def _remove_quietly(api: APIClient, container_id: str) -> None:
    try:
        api.remove_container(container_id, v=True, force=True)
    except docker.errors.APIError:
        log.debug("removing container %s failed", container_id, exc_info=True)


def _tail_text(api: APIClient, container_id: str, lines: int) -> str:
    try:
        output = api.logs(container_id, stdout=True, stderr=True, tail=lines)
    except docker.errors.APIError:
        return ""
    return " / ".join(line.strip() for line in output.decode(errors="replace").splitlines() if line.strip())


def _read_logs(
    api: APIClient, container_id: str, tail: int | None, since: float | None, until: float | None
) -> list[LogLine]:
    raw = _inspect_raw_or_none(api, container_id)
    if raw is None:
        raise NotFound(
            f"container {container_id[:12]} does not exist: list the app's replicas for current ids"
        )
    name = raw.get("Name", "").lstrip("/")
    options: dict[str, Any] = {"timestamps": True, "tail": tail if tail is not None else "all"}
    if since:
        options["since"] = float(since)
    if until:
        options["until"] = float(until)
    lines: list[LogLine] = []
    # Asked per stream because the SDK merges stdout and stderr into one text otherwise.
    for stream_name in ("stdout", "stderr"):
        output = api.logs(
            raw["Id"], stdout=stream_name == "stdout", stderr=stream_name == "stderr", stream=False, **options
        )
        for text in output.decode(errors="replace").splitlines():
            if text:
                stamp, message = split_log_line(text)
                lines.append(LogLine(stamp, raw["Id"], name, message, stream_name))
    lines.sort(key=lambda line: line.timestamp)
    return lines[-tail:] if tail else lines


def _lines(chunks: Iterable[bytes]) -> Iterable[str]:
    """Reassembles whole lines from stream frames (a long line may span frames)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace").rstrip("\r")


def _sample_stats(api: APIClient, container_id: str) -> ContainerStats | None:
    raw_info = _inspect_raw_or_none(api, container_id)
    if raw_info is None or not (raw_info.get("State") or {}).get("Running"):
        return None
    host_config = raw_info.get("HostConfig") or {}
    try:
        raw = api.stats(raw_info["Id"], stream=False)
    except docker.errors.NotFound:
        return None
    return container_stats_from_docker(
        container_id, raw, int(host_config.get("NanoCpus") or 0), int(host_config.get("Memory") or 0)
    )
