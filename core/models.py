"""Plain data the Engine hands to front ends (console, API, CLI).

Times are epoch floats (seconds).  Nothing here carries a secret value: specs are redacted before
they are put into these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# App status as shown everywhere (API.md: running | degraded | stopped, plus error).
APP_STOPPED = "stopped"
APP_RUNNING = "running"
APP_DEGRADED = "degraded"
APP_ERROR = "error"
# What tables for people show in place of "running" for an app scaled to 0 replicas, as Kubernetes
# shows a Deployment at 0/0: "running" with nothing running read as a fault.  The API's status field
# keeps "running" (API.md fixes its values for existing clients); its status_reason says it.
APP_SCALED_TO_ZERO = "scaled to 0"


def status_word(status: str, desired_replicas: int) -> str:
    """The status a person reads for an app: its status, or "scaled to 0" when it runs with none wanted."""
    return APP_SCALED_TO_ZERO if status == APP_RUNNING and desired_replicas == 0 else status


def status_and_reason(status: str, desired_replicas: int, reason: str) -> tuple[str, str]:
    """``status_word`` and the reason without its "scaled to 0: " (the API's reason says it for
    clients that read "running"; shown beside the word it said it twice)."""
    word = status_word(status, desired_replicas)
    if word != status and reason.startswith(f"{word}: "):
        reason = reason[len(word) + 2 :]
    return word, reason


# Replica states.
REPLICA_STARTING = "starting"  # container started, not yet passed its health check
REPLICA_READY = "ready"  # healthy and routed
REPLICA_UNHEALTHY = "unhealthy"  # failed its health check, unrouted
REPLICA_DRAINING = "draining"  # unrouted, waiting for in-flight requests, then stopped
REPLICA_CRASHLOOP = "CrashLoopBackOff"
REPLICA_FAILED = "failed"  # could not be created or started; reason says why

EVENT_CATEGORIES = ("lifecycle", "scaling", "health", "error", "cluster")


@dataclass
class ReplicaView:
    slot: int
    name: str
    container_id: str
    host: str
    port: int
    state: str
    ready: bool
    failures: int = 0
    restarts: int = 0
    cpu_percent: float | None = None
    memory_percent: float | None = None
    started_at: float | None = None
    reason: str = ""
    node: str = ""  # hostname of the node it runs on ('' until the nodes are known)
    figures_reason: str = ""  # why cpu/memory are null while the replica runs (its node's API is away)


@dataclass
class AppView:
    name: str
    spec: dict[str, Any]  # canonical parsed spec, secrets redacted
    raw: dict[str, Any]  # the document as submitted, secrets redacted
    status: str
    status_reason: str
    mode: str
    desired_replicas: int
    policy: dict[str, Any]
    created_at: float
    updated_at: float
    last_scaled_at: float | None
    replicas: list[ReplicaView] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def ready_replicas(self) -> int:
        return sum(1 for r in self.replicas if r.ready)


@dataclass
class AppSummary(AppView):
    """An app's view without its replicas: what a list of apps shows.  ``ready_replicas`` is the
    count when it was built; the replicas themselves (and their CPU and memory) are left out."""

    ready_count: int = 0

    @property
    def ready_replicas(self) -> int:
        return self.ready_count


@dataclass
class Event:
    id: int
    app: str | None
    category: str  # lifecycle | scaling | health | error | cluster
    kind: str  # short machine name, e.g. "replica_started", "scaled", "nginx_reload_failed"
    message: str
    details: dict[str, Any]
    timestamp: float


@dataclass
class UpResult:
    app: str
    replicas: int
    adopted: int
    started: int


@dataclass
class ScaleResult:
    app: str
    status: str  # "scaled" | "no_change"
    replicas: int  # the desired count after the call
    requested: int
    clamped: bool = False
    message: str = ""


@dataclass
class MissingSecret:
    variable: str  # the environment entry that refers to it
    secret: str
    field: str


@dataclass
class RegisterPreview:
    """What registering a document would do, found without changing anything (a dry run)."""

    app: str
    change: str  # "created" | "updated" | "unchanged"
    spec_hash: str
    missing_secrets: list[MissingSecret] = field(default_factory=list)
    image: str = ""
    # Why a replica could not start from the image (not here, and no registry has it); "" when it could.
    image_problem: str = ""


@dataclass
class RolloutReplica:
    slot: int
    name: str
    state: str
    ready: bool  # passed its health check and routed
    updated: bool  # runs the current container spec and awaits no restart
    reason: str = ""


@dataclass
class RolloutView:
    """How far an app is from what was last asked of it (``kubectl rollout status``)."""

    app: str
    status: str
    status_reason: str
    desired_replicas: int  # what the reconciler aims at now: 0 while the app is stopped
    ready_replicas: int
    updated_replicas: int
    updated_ready_replicas: int
    terminating_replicas: int  # draining or being stopped
    complete: bool
    replicas: list[RolloutReplica] = field(default_factory=list)


@dataclass
class ScalingRecord:
    id: int
    app: str
    from_replicas: int
    to_replicas: int
    reason: str
    metrics: dict[str, Any]
    timestamp: float


@dataclass
class AppFigures:
    """An app's latest load figures; None (not 0) while nothing has been measured."""

    rps: float | None
    p95_latency_ms: float | None
    cpu_percent: float | None
    memory_percent: float | None


@dataclass
class Overview:
    """Every app described with its latest figures: what a dashboard draws each tick."""

    timestamp: float
    lb_listen: str
    apps: list[AppView]
    figures: dict[str, AppFigures]


@dataclass
class AppSeries:
    """Chart history of one app: each series a list of (epoch second, value), oldest first."""

    app: str
    seconds: int
    timestamp: float
    series: dict[str, list[tuple[float, float]]]
