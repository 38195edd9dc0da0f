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
class ScalingRecord:
    id: int
    app: str
    from_replicas: int
    to_replicas: int
    reason: str
    metrics: dict[str, Any]
    timestamp: float
