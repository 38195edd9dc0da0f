"""The container runtime seam: what the reconciler needs from Docker (or a Swarm, later)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from core.errors import ContainerStartError

# Labels put on every managed container (DESIGN.md §5).  Only containers carrying
# ``orchestry.managed=true`` are ever touched.
LABEL_MANAGED = "orchestry.managed"
LABEL_APP = "orchestry.app"
LABEL_SLOT = "orchestry.slot"
LABEL_SPEC_HASH = "orchestry.spec-hash"
LABEL_TERM = "orchestry.term"
LABEL_PORT = "orchestry.port"
# Bridge mode: the container port the health check probes, when it is not the one nginx serves.
LABEL_HEALTH_PORT = "orchestry.health-port"
# The store's cluster id: which Orchestry installation owns the container (core/store, migration 0002).
LABEL_CLUSTER = "orchestry.cluster"
# A warm-pool container (spec ``scaling.warmPool``): created for a slot but never started, so a
# scale-out only has to start it.  Only a container in Docker's ``created`` state with this label is
# in the pool: ``list_managed`` leaves those out (they are no replicas), ``list_warm`` lists them.
# Once started it is an ordinary replica (the label stays; the state says it left the pool).
LABEL_WARM = "orchestry.warm"
STATE_CREATED = "created"

# A replica the runtime is still placing or starting by itself (Swarm: a task Swarm scheduled after a
# node loss, still pending or pulling).  Its slot is taken and it is not dead; it has no address yet.
STATE_PENDING = "pending"
# A RuntimeEvent action: something about this app's replicas changed that only a relist shows (Swarm
# rescheduled a task).  Docker's own actions (die, start, ...) are the others.
EVENT_CHANGED = "changed"


def in_warm_pool(state: str, labels: dict[str, str]) -> bool:
    """A pool member: created with the warm label and never started."""
    return state == STATE_CREATED and labels.get(LABEL_WARM) == "true"


class PublishedPortInUse(ContainerStartError):
    """Bridge mode: the 127.0.0.1 port chosen for a replica was taken by another program before Docker
    could publish it.  Not the app's fault: the engine picks another port."""

    def __init__(self, port: int, message: str) -> None:
        super().__init__(message)
        self.port = port


@dataclass(frozen=True)
class ContainerRequest:
    """Everything needed to create and start one replica."""

    app: str
    slot: int
    name: str  # "<app>-<slot>"
    image: str
    command: list[str] | None
    environment: dict[str, str]
    labels: dict[str, str]
    host_port: int  # 127.0.0.1 port the replica is reached on
    container_port: int | None = None  # bridge mode: the port published on host_port
    # Bridge mode, when healthCheck.port names another container port: it is published on this port.
    health_container_port: int | None = None
    health_host_port: int | None = None
    network_mode: str = "host"  # "host" or "bridge"
    cpu_millis: int | None = None
    memory_bytes: int | None = None
    stop_grace_seconds: int = 30
    # Swarm placement (spec.placement), in Swarm's own syntax; a runtime without nodes gets none.
    placement_constraints: tuple[str, ...] = ()
    placement_spread: tuple[str, ...] = ()  # spread descriptors, e.g. "node.labels.zone"
    # Watch the container briefly after start so a command that cannot run fails here, clearly.  The
    # engine skips it for a spec that has already run healthy (scale-out is then as fast as Docker).
    verify_start: bool = True


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    app: str
    slot: int
    spec_hash: str
    state: str  # docker's: created, running, restarting, exited, dead, paused, removing; or STATE_PENDING
    host: str
    port: int  # where the replica is reached on the host: its own port, or the published one (bridge)
    labels: dict[str, str] = field(default_factory=dict)
    # Bridge mode: the port inside the container that ``port`` publishes; None in host mode.
    container_port: int | None = None
    # Bridge mode, when the health check has its own container port: where that one is published.
    health_port: int | None = None
    health_container_port: int | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class RuntimeEvent:
    action: str  # die, oom, start, stop, destroy, kill, health_status; EVENT_CHANGED; reconnected
    container_id: str
    app: str
    slot: int | None
    time: float
    exit_code: int | None = None


@dataclass(frozen=True)
class LogLine:
    timestamp: float
    container_id: str
    replica: str  # "<app>-<slot>"
    message: str
    stream: str = "stdout"


class ContainerStats(NamedTuple):
    """One container's CPU and memory at one instant.  A named tuple, not a frozen dataclass: one is made
    per replica per sample (1,000 every 2 s at 1,000 replicas), and a frozen dataclass costs ~8x as
    much to build (each field set through object.__setattr__)."""

    container_id: str
    cpu_percent_of_core: float  # 100 = one full core
    cpu_percent_of_limit: float | None  # 100 = the container's CPU limit; None without a limit
    memory_bytes: int  # usage minus inactive file cache
    memory_limit_bytes: int | None
    memory_percent: float | None  # of the limit; None without a limit
    timestamp: float


# Node availability, in Swarm's words: active takes new replicas, pause keeps what runs but takes no new
# ones, drain moves everything away.
NODE_ACTIVE = "active"
NODE_PAUSE = "pause"
NODE_DRAIN = "drain"
# Orchestry's own drain in progress: the node is paused while this installation's replicas move away,
# and the runtime keeps that intent on the node itself, so a controller that restarts or takes over
# the lease finishes the drain (Swarm: availability pause + label orchestry.draining=<cluster id>).
NODE_DRAINING = "draining"
NODE_AVAILABILITIES = (NODE_ACTIVE, NODE_PAUSE, NODE_DRAIN, NODE_DRAINING)


@dataclass(frozen=True)
class NodeInfo:
    """One machine that runs replicas, as the operator sees it (``orchestry nodes``).

    Capacity comes from the runtime (Swarm's manager, or the local engine); reservations from the
    replicas Swarm placed there. CPU use is this installation's replicas on the node, summed by the
    engine from the figures it samples; ``None`` when unknown, with ``unavailable_reason`` saying why
    (the node is down, its own Docker API does not answer, ...).
    """

    id: str
    hostname: str
    address: str  # where the controller reaches the replicas published on this node
    role: str  # manager, worker; "standalone" for a single Docker host
    state: str  # ready, down, unknown, disconnected
    availability: str  # one of NODE_AVAILABILITIES (draining: Orchestry's drain in progress)
    tasks: int  # this installation's running replicas on the node
    leader: bool = False  # the Swarm manager leader (not Orchestry's lease holder)
    engine_version: str = ""
    cpu_cores: float | None = None  # capacity
    memory_bytes: int | None = None
    cpu_reserved_cores: float | None = None  # what the replicas placed there reserve (spec resources)
    memory_reserved_bytes: int | None = None
    cpu_percent: float | None = None  # use by this installation's replicas; 100 = one core
    unavailable_reason: str = ""


class Runtime(Protocol):
    """All methods are async; blocking SDK calls happen in a bounded thread pool inside the runtime."""

    # Containers labelled with another cluster's id are neither listed nor touched; None: no owner yet.
    cluster_id: str | None

    async def ping(self) -> None: ...

    async def image_exists(self, image: str) -> bool: ...

    # The image is here, or its registry has it: what starting a replica would find (a dry run's
    # question; changes nothing, pulls nothing).
    async def image_available(self, image: str) -> bool: ...

    async def list_managed(self, app: str | None = None) -> list[ContainerInfo]: ...

    async def inspect(self, container_id: str) -> ContainerInfo | None: ...

    async def create_and_start(self, request: ContainerRequest) -> ContainerInfo: ...

    async def stop(self, container_id: str, timeout: float) -> None: ...

    async def unpause(self, container_id: str) -> None:
        """Thaw a paused container (so it can finish its requests); nothing for any other state."""
        ...

    async def remove(self, container_id: str, force: bool = False) -> None: ...

    async def logs(
        self, container_id: str, tail: int | None, since: float | None, until: float | None
    ) -> list[LogLine]: ...

    def follow_logs(self, container_id: str, since: float | None) -> AsyncIterator[LogLine]: ...

    def events(self) -> AsyncIterator[RuntimeEvent]: ...

    async def stats(self, container_ids: list[str]) -> dict[str, ContainerStats]: ...

    async def nodes(self) -> list[NodeInfo]:
        """Every node that can run replicas (one for a single Docker host)."""
        ...

    async def set_node_availability(self, node_id: str, availability: str) -> NodeInfo:
        """Set a node's availability (NODE_AVAILABILITIES); ``node_id`` is an id, a unique id prefix or
        a hostname. NotFound for an unknown node; Conflict where the runtime has no nodes to move to."""
        ...

    async def close(self) -> None: ...


class WarmPoolRuntime(Protocol):
    """A runtime that can keep containers created but not started (the Docker and in-memory ones; a
    Swarm service has no such state).  The reconciler checks for ``create_warm`` before using one."""

    async def create_warm(self, request: ContainerRequest) -> ContainerInfo:
        """Create the replica ``request`` describes (labelled LABEL_WARM) without starting it."""
        ...

    async def start_warm(self, container_id: str, request: ContainerRequest) -> ContainerInfo | None:
        """Start a pool member as the replica ``request`` (the one it was created from) describes; None
        when it is gone (removed by hand): the caller then creates one the ordinary way."""
        ...

    async def list_warm(self, app: str | None = None) -> list[ContainerInfo]:
        """The pool members of ``app`` (every app with None)."""
        ...
