"""The wire contract: one pydantic model per JSON answer of both route families, and per request body.

The handlers answer with these models (``Model.of(...)`` builds one from the engine's plain data), the
OpenAPI document (``core/api/openapi.py``) is generated from them, and the console attached to a daemon
(``orchestry_tui/console/http_backend.py``) parses the answers with them: a shape is written once.

The ``Legacy*`` models and the other answers of the unprefixed routes are the Orchestry 1.0 wire format:
their fields, in this order, with these types (epoch-float times, 12-character container ids, newest
first lists) are what existing clients parse; ``tests/api/golden/`` holds their captured answers.
Numbers are typed ``Number`` (an int stays an int, a float a float) so the models never change a value
the engine produced.  Parsing ignores keys a newer daemon may add.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema, model_serializer

from core.models import (
    AppView,
    Event,
    RegisterPreview,
    ReplicaView,
    RolloutView,
    ScaleResult,
    ScalingRecord,
    UpResult,
)
from core.runtime.base import LogLine, NodeInfo

SHORT_ID = 12

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
NullableNumber = Annotated[int | float | None, WithJsonSchema({"type": ["number", "null"]})]
NullableInteger = Annotated[int | None, WithJsonSchema({"type": ["integer", "null"]})]
ShortId = Annotated[str, Field(max_length=SHORT_ID)]
Point = Annotated[
    tuple[Number, Number],
    WithJsonSchema({"type": "array", "prefixItems": [{"type": "number"}] * 2, "minItems": 2, "maxItems": 2}),
]
Json = dict[str, Any]
NullableObject = Annotated[dict[str, Any] | None, WithJsonSchema({"type": ["object", "null"]})]
AppStatusName = Literal["running", "degraded", "stopped", "error"]
Mode = Literal["auto", "manual"]
EventCategory = Literal["lifecycle", "scaling", "health", "error", "cluster"]


def short_id(container_id: str) -> str:
    return container_id[:SHORT_ID]


def _percent(value: float | None) -> float:
    # 1.0 clients expect a number here; "not measured yet" reads as 0.0 there.
    return float(value) if value is not None else 0.0


class Wire(BaseModel):
    """A JSON answer (or body) as it travels; ``dump()`` is what the handler sends."""

    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- errors and requests ------------------------------------------------------------------------------


class Error(Wire):
    detail: str


class AppDocument(Wire):
    """An app spec (API.md 'App spec'); the engine validates it and names any bad field."""

    class Metadata(Wire):
        name: str
        labels: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="allow", json_schema_extra={"required": ["metadata", "spec"]})
    apiVersion: str = "v1"
    kind: str = "App"
    metadata: Metadata
    spec: Json
    scaling: Json = Field(default_factory=dict)
    healthCheck: Json = Field(default_factory=dict)


class ScaleRequest(Wire):
    replicas: int = Field(ge=0, le=100)


class PolicyRequest(Wire):
    policy: Json


class RestartRequest(Wire):
    replica: int | None = Field(default=None, ge=1, le=1000)


class ScalingChanges(Wire):
    """mode and any scaling key of the app spec (camelCase), e.g. {"maxReplicas": 8}"""

    model_config = ConfigDict(extra="allow")
    mode: Mode | None = None


class SimulatedMetrics(Wire):
    rps: float | None = Field(default=None, ge=0)
    p95LatencyMs: float | None = Field(default=None, ge=0)
    activeConnections: float | None = Field(default=None, ge=0)
    cpuPercent: float | None = Field(default=None, ge=0)
    memoryPercent: float | None = Field(default=None, ge=0)
    healthyReplicas: float | None = Field(default=None, ge=0)
    evaluate: bool = True


class BacktestRequest(Wire):
    model_config = ConfigDict(extra="forbid")
    policy: Json | None = Field(default=None, description="scaling keys of the candidate, as in apply")
    since: float | None = Field(default=None, description="seconds of recorded history (21600)")
    trace: Literal["step", "ramp", "spike", "sine"] | None = None


class SecretFields(RootModel[dict[str, str]]):
    """field name → value, e.g. {"password": "..."}; values are never returned"""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})


# --- Orchestry 1.0 answers (unprefixed routes) -------------------------------------------------------


class DatabaseHealth(Wire):
    status: Literal["ok", "error"]
    detail: str | None = Field(default=None, json_schema_extra={"type": "string"})

    model_config = ConfigDict(json_schema_extra={"required": ["status"]})

    @model_serializer(mode="wrap")
    def _without_empty_detail(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("detail") is None:
            data.pop("detail", None)
        return data


class Health(Wire):
    status: Literal["healthy", "degraded"]
    timestamp: Number
    version: str
    database: DatabaseHealth
    node_id: str
    is_leader: bool

    @classmethod
    def of(cls, database: dict[str, Any], node_id: str, is_leader: bool, version: str, now: float) -> Health:
        db_ok = database.get("status") == "ok"
        detail = str(database["detail"]) if not db_ok and database.get("detail") else None
        return cls(
            status="healthy" if db_ok else "degraded",
            timestamp=now,
            version=version,
            database=DatabaseHealth(status="ok" if db_ok else "error", detail=detail),
            node_id=node_id,
            is_leader=is_leader,
        )


class Registered(Wire):
    status: Literal["registered"] = "registered"
    app: str
    message: str = "Application registered successfully"


class Started(Wire):
    status: Literal["started"] = "started"
    app: str
    replicas: int
    adopted: int
    started: int

    @classmethod
    def of(cls, result: UpResult) -> Started:
        return cls(app=result.app, replicas=result.replicas, adopted=result.adopted, started=result.started)


class Stopped(Wire):
    status: Literal["stopped"] = "stopped"
    app: str
    containers_stopped: int


class Deleted(Wire):
    status: Literal["deleted"] = "deleted"
    app: str
    message: str

    @classmethod
    def of(cls, name: str) -> Deleted:
        return cls(app=name, message=f"Application {name} deleted")


class Instance(Wire):
    container_id: ShortId
    ip: str
    port: int
    state: str
    cpu_percent: Number
    memory_percent: Number
    failures: int

    @classmethod
    def of(cls, replica: ReplicaView) -> Instance:
        return cls(
            container_id=short_id(replica.container_id),
            ip=replica.host,
            port=replica.port,
            state=replica.state,
            cpu_percent=_percent(replica.cpu_percent),
            memory_percent=_percent(replica.memory_percent),
            failures=replica.failures,
        )


class AppStatus(Wire):
    app: str
    status: AppStatusName
    replicas: int
    ready_replicas: int
    instances: list[Instance]
    mode: Mode

    @classmethod
    def of(cls, app: AppView) -> AppStatus:
        return cls(
            app=app.name,
            status=app.status,  # type: ignore[arg-type]
            replicas=app.desired_replicas,
            ready_replicas=app.ready_replicas,
            instances=[Instance.of(r) for r in app.replicas],
            mode=app.mode,  # type: ignore[arg-type]
        )


class Scaled(Wire):
    status: Literal["scaled", "no_change"]
    app: str
    replicas: int

    @classmethod
    def of(cls, result: ScaleResult) -> Scaled:
        return cls(status=result.status, app=result.app, replicas=result.replicas)  # type: ignore[arg-type]


class PolicyUpdated(Wire):
    status: Literal["updated"] = "updated"
    app: str
    policy: Json


class ParsedApp(Wire):
    name: str
    spec: Json
    status: AppStatusName
    created_at: Number
    updated_at: Number
    replicas: int
    last_scaled_at: NullableNumber
    mode: Mode

    @classmethod
    def fields_of(cls, app: AppView) -> dict[str, Any]:
        return {
            "name": app.name,
            "spec": app.spec,
            "status": app.status,
            "created_at": app.created_at,
            "updated_at": app.updated_at,
            "replicas": app.desired_replicas,
            "last_scaled_at": app.last_scaled_at,
            "mode": app.mode,
        }

    @classmethod
    def of(cls, app: AppView) -> ParsedApp:
        return cls(**cls.fields_of(app))


class LegacyAppSummary(ParsedApp):
    ready_replicas: int

    @classmethod
    def of(cls, app: AppView) -> LegacyAppSummary:
        return cls(**ParsedApp.fields_of(app), ready_replicas=app.ready_replicas)


class LegacyAppList(Wire):
    apps: list[LegacyAppSummary]


class RawApp(Wire):
    name: str
    raw: Json
    parsed: ParsedApp

    @classmethod
    def of(cls, app: AppView) -> RawApp:
        return cls(name=app.name, raw=app.raw, parsed=ParsedApp.of(app))


class LegacyLogLine(Wire):
    timestamp: Number
    container: ShortId
    container_full: str
    message: str


class LegacyLogs(Wire):
    app: str
    total_containers: int
    logs: list[LegacyLogLine]

    @classmethod
    def of(cls, name: str, total_containers: int, lines: Iterable[LogLine]) -> LegacyLogs:
        newest_first = sorted(lines, key=lambda line: line.timestamp, reverse=True)
        return cls(
            app=name,
            total_containers=total_containers,
            logs=[
                LegacyLogLine(
                    timestamp=x.timestamp,
                    container=short_id(x.container_id),
                    container_full=x.container_id,
                    message=x.message,
                )
                for x in newest_first
            ],
        )


class CurrentMetrics(Wire):
    """The seven headline figures, always present (0 when not measured yet) so clients can rely on them."""

    rps: Number
    p95_latency_ms: Number
    active_connections: int
    cpu_percent: Number
    memory_percent: Number
    healthy_replicas: int
    total_replicas: int

    KEYS: ClassVar[tuple[str, ...]] = (
        "rps",
        "p95_latency_ms",
        "active_connections",
        "cpu_percent",
        "memory_percent",
        "healthy_replicas",
        "total_replicas",
    )

    @classmethod
    def of(cls, current: dict[str, Any] | None) -> CurrentMetrics:
        current = current or {}
        figures: dict[str, Any] = {}
        for key in cls.KEYS:
            value = current.get(key)
            if key.endswith("replicas") or key == "active_connections":
                figures[key] = int(value or 0)
            else:
                figures[key] = float(value or 0.0)
        return cls(**figures)


class LegacyScalingRecord(Wire):
    id: int
    app_name: str
    from_replicas: int
    to_replicas: int
    trigger_reason: str
    metrics_snapshot: Json
    timestamp: Number

    @classmethod
    def of(cls, record: ScalingRecord) -> LegacyScalingRecord:
        return cls(
            id=record.id,
            app_name=record.app,
            from_replicas=record.from_replicas,
            to_replicas=record.to_replicas,
            trigger_reason=record.reason,
            metrics_snapshot=record.metrics,
            timestamp=record.timestamp,
        )


class LegacyMetricsBlock(Wire):
    metrics: CurrentMetrics
    scale_factors: Json
    policy: Json


class LegacyAppMetrics(Wire):
    app: str
    metrics: LegacyMetricsBlock
    scaling_history: list[LegacyScalingRecord]

    @classmethod
    def of(cls, name: str, metrics: dict[str, Any], history: Iterable[ScalingRecord]) -> LegacyAppMetrics:
        newest_first = sorted(history, key=lambda r: (r.timestamp, r.id), reverse=True)
        return cls(
            app=name,
            metrics=LegacyMetricsBlock(
                metrics=CurrentMetrics.of(metrics.get("current")),
                scale_factors=metrics.get("scale_factors") or {},
                policy=metrics.get("policy") or {},
            ),
            scaling_history=[LegacyScalingRecord.of(r) for r in newest_first],
        )


class SimulationResult(Wire):
    app: str
    metrics_added: Json
    evaluation: NullableObject
    action: NullableObject


class ClusterMetrics(Wire):
    """JSON by default; Prometheus text with Accept: text/plain, OpenMetrics on request."""

    cluster: Json
    apps: Json
    instances: Json
    nginx: Json
    timestamp: Number


class LegacyEvent(Wire):
    id: int
    app_name: str | None
    event_type: str
    message: str
    timestamp: Number
    details: Json

    @classmethod
    def of(cls, event: Event) -> LegacyEvent:
        return cls(
            id=event.id,
            app_name=event.app,
            event_type=event.category,
            message=event.message,
            timestamp=event.timestamp,
            details=event.details,
        )


class LegacyEvents(Wire):
    events: list[LegacyEvent]

    @classmethod
    def of(cls, events: Iterable[Event]) -> LegacyEvents:
        newest_first = sorted(events, key=lambda e: (e.timestamp, e.id), reverse=True)
        return cls(events=[LegacyEvent.of(e) for e in newest_first])


# --- cluster (both families) ---------------------------------------------------------------------------


class ClusterStatus(Wire):
    node_id: str
    hostname: str
    state: Literal["leader", "follower", "candidate"]
    term: int
    is_leader: bool
    leader_id: str | None
    cluster_size: int
    nodes: list[Json]
    lease: NullableObject
    election_status: str

    @classmethod
    def of(cls, status: dict[str, Any], node_id: str) -> ClusterStatus:
        """The engine's cluster view in the 1.0 shape; a lone node without clustering leads itself."""
        is_leader = bool(status.get("is_leader", False))
        nodes = status.get("nodes") or []
        return cls(
            node_id=str(status.get("node_id") or node_id),
            hostname=str(status.get("hostname") or ""),
            state=str(status.get("state") or ("leader" if is_leader else "follower")),  # type: ignore[arg-type]
            term=int(status.get("term") or 0),
            is_leader=is_leader,
            leader_id=status.get("leader_id"),
            cluster_size=int(status.get("cluster_size") or max(len(nodes), 1)),
            nodes=nodes,
            lease=status.get("lease"),
            election_status=str(status.get("election_status") or ""),
        )


class ClusterLeader(Wire):
    leader_id: str
    hostname: str
    api_url: str
    external_api_url: str
    term: int
    lease_expires_at: Number

    @classmethod
    def of(cls, status: dict[str, Any]) -> ClusterLeader | None:
        """``/cluster/leader``; None when no node holds a valid lease."""
        lease = status.get("lease")
        if not lease or not lease.get("leader_id"):
            return None
        api_url = lease.get("api_url") or ""
        return cls(
            leader_id=lease["leader_id"],
            hostname=lease.get("hostname") or "",
            api_url=api_url,
            external_api_url=lease.get("external_api_url") or api_url,
            term=int(lease.get("term") or 0),
            lease_expires_at=float(lease.get("expires_at") or 0.0),
        )


class ClusterHealth(Wire):
    status: Literal["healthy", "degraded"]
    clustering: Literal["enabled", "disabled"]
    node_id: str
    state: str
    is_leader: bool
    leader_id: str | None
    cluster_size: int
    cluster_ready: bool
    timestamp: Number
    version: str

    @classmethod
    def of(cls, status: dict[str, Any], node_id: str, version: str, now: float) -> ClusterHealth:
        view = ClusterStatus.of(status, node_id)
        ready = view.leader_id is not None
        return cls(
            status="healthy" if ready else "degraded",
            clustering="enabled" if view.cluster_size > 1 else "disabled",
            node_id=view.node_id,
            state=view.state,
            is_leader=view.is_leader,
            leader_id=view.leader_id,
            cluster_size=view.cluster_size,
            cluster_ready=ready,
            timestamp=now,
            version=version,
        )


class ControllerRow(Wire):
    node_id: str
    hostname: str
    api_url: str
    state: Literal["leader", "follower", "candidate", "down"]
    last_heartbeat: Number
    heartbeat_age: Number
    is_healthy: bool
    reachable: bool
    database: Literal["ok", "error", "unknown"]
    version: str | None


class TermRow(Wire):
    term: int
    leader_id: str
    hostname: str
    acquired_at: Number
    ended_at: NullableNumber
    ended: Literal["released", "expired", "fenced"] | None


class ClusterOverview(Wire):
    """Every controller (state, heartbeat age, database, version), the lease and the term history."""

    now: Number
    node_id: str
    term: NullableInteger
    leader_id: str | None
    lease: NullableObject = Field(
        description="the newest lease row; remaining = seconds left by the database clock"
    )
    nodes: list[ControllerRow]
    history: list[TermRow]


class LeadershipReleased(Wire):
    status: Literal["released"] = "released"
    node_id: str


# --- /api/v1 answers ---------------------------------------------------------------------------------


class Replica(Wire):
    slot: int
    name: str
    container_id: ShortId
    host: str
    port: int
    state: str
    ready: bool
    failures: int
    restarts: int
    cpu_percent: NullableNumber
    memory_percent: NullableNumber
    started_at: NullableNumber
    reason: str
    node: str = Field(default="", description="hostname of the node it runs on ('' until known)")
    figures_reason: str = Field(
        default="", description="why cpu_percent/memory_percent are null ('' if measured or not sampled yet)"
    )

    @staticmethod
    def data(replica: ReplicaView) -> dict[str, Any]:
        return {
            "slot": replica.slot,
            "name": replica.name,
            "container_id": short_id(replica.container_id),
            "host": replica.host,
            "port": replica.port,
            "state": replica.state,
            "ready": replica.ready,
            "failures": replica.failures,
            "restarts": replica.restarts,
            "cpu_percent": replica.cpu_percent,
            "memory_percent": replica.memory_percent,
            "started_at": replica.started_at,
            "reason": replica.reason,
            "node": replica.node,
            "figures_reason": replica.figures_reason,
        }

    @classmethod
    def of(cls, replica: ReplicaView) -> Replica:
        return cls.model_validate(cls.data(replica))

    def view(self) -> ReplicaView:
        """The console's view of a replica the daemon described."""
        return ReplicaView(**self.model_dump())


class AppSummary(Wire):
    name: str
    status: AppStatusName
    status_reason: str
    mode: Mode
    desired_replicas: int
    ready_replicas: int
    image: str
    created_at: Number
    updated_at: Number
    last_scaled_at: NullableNumber

    @classmethod
    def fields_of(cls, app: AppView) -> dict[str, Any]:
        return {
            "name": app.name,
            "status": app.status,
            "status_reason": app.status_reason,
            "mode": app.mode,
            "desired_replicas": app.desired_replicas,
            "ready_replicas": app.ready_replicas,
            "image": str(app.spec.get("spec", {}).get("image") or app.spec.get("image") or ""),
            "created_at": app.created_at,
            "updated_at": app.updated_at,
            "last_scaled_at": app.last_scaled_at,
        }

    @classmethod
    def of(cls, app: AppView) -> AppSummary:
        return cls(**cls.fields_of(app))


class AppList(Wire):
    apps: list[AppSummary]


class App(AppSummary):
    labels: dict[str, str]
    policy: Json
    spec: Json
    raw: Json
    replicas: list[Replica]

    @classmethod
    def fields_of(cls, app: AppView) -> dict[str, Any]:
        return {
            **AppSummary.fields_of(app),
            "labels": app.labels,
            "policy": app.policy,
            "spec": app.spec,
            "raw": app.raw,
            "replicas": [Replica.data(r) for r in app.replicas],
        }

    @classmethod
    def of(cls, app: AppView) -> App:
        return cls.model_validate(cls.fields_of(app))

    def view(self) -> AppView:
        """The console's view of an app the daemon described."""
        return AppView(
            name=self.name,
            spec=self.spec,
            raw=self.raw,
            status=self.status,
            status_reason=self.status_reason,
            mode=self.mode,
            desired_replicas=self.desired_replicas,
            policy=self.policy,
            created_at=self.created_at,
            updated_at=self.updated_at,
            last_scaled_at=self.last_scaled_at,
            replicas=[r.view() for r in self.replicas],
            labels=self.labels,
        )


class RegisterResult(Wire):
    created: bool
    app: App


class UpAnswer(Wire):
    app: str
    replicas: int
    adopted: int
    started: int

    @classmethod
    def of(cls, result: UpResult) -> UpAnswer:
        return cls(app=result.app, replicas=result.replicas, adopted=result.adopted, started=result.started)


class DownAnswer(Wire):
    app: str
    containers_stopped: int


class RestartAnswer(Wire):
    app: str
    restarted: list[int]


class ScaleAnswer(Wire):
    app: str
    status: Literal["scaled", "no_change"]
    replicas: int
    requested: int
    clamped: bool
    message: str

    @classmethod
    def of(cls, result: ScaleResult) -> ScaleAnswer:
        return cls(
            app=result.app,
            status=result.status,  # type: ignore[arg-type]
            replicas=result.replicas,
            requested=result.requested,
            clamped=result.clamped,
            message=result.message,
        )

    def result(self) -> ScaleResult:
        return ScaleResult(**self.model_dump())


class ScalingAnswer(Wire):
    app: str
    policy: Json


class MissingSecretAnswer(Wire):
    variable: str
    secret: str
    field: str


class RegisterPreviewAnswer(Wire):
    """what registering the document would do; missing_secrets: what `up` would refuse to start without"""

    app: str
    change: Literal["created", "updated", "unchanged"]
    spec_hash: str
    missing_secrets: list[MissingSecretAnswer]

    @classmethod
    def of(cls, preview: RegisterPreview) -> RegisterPreviewAnswer:
        return cls(
            app=preview.app,
            change=preview.change,  # type: ignore[arg-type]
            spec_hash=preview.spec_hash,
            missing_secrets=[
                MissingSecretAnswer(variable=m.variable, secret=m.secret, field=m.field)
                for m in preview.missing_secrets
            ],
        )


class RolloutReplicaAnswer(Wire):
    slot: int
    name: str
    state: str
    ready: bool
    updated: bool
    reason: str


class Rollout(Wire):
    app: str
    status: AppStatusName
    status_reason: str
    desired_replicas: int = Field(description="what the engine aims at, 0 if stopped")
    ready_replicas: int
    updated_replicas: int = Field(
        description="replicas on the current container spec with no restart pending"
    )
    updated_ready_replicas: int
    terminating_replicas: int
    complete: bool = Field(description="desired replicas are all ready and updated, and none is terminating")
    replicas: list[RolloutReplicaAnswer]

    @classmethod
    def of(cls, rollout: RolloutView) -> Rollout:
        return cls(
            app=rollout.app,
            status=rollout.status,  # type: ignore[arg-type]
            status_reason=rollout.status_reason,
            desired_replicas=rollout.desired_replicas,
            ready_replicas=rollout.ready_replicas,
            updated_replicas=rollout.updated_replicas,
            updated_ready_replicas=rollout.updated_ready_replicas,
            terminating_replicas=rollout.terminating_replicas,
            complete=rollout.complete,
            replicas=[
                RolloutReplicaAnswer(
                    slot=r.slot, name=r.name, state=r.state, ready=r.ready, updated=r.updated, reason=r.reason
                )
                for r in rollout.replicas
            ],
        )


class AppDeleted(Wire):
    status: Literal["deleted"] = "deleted"
    app: str


class InstancesCleared(Wire):
    app: str
    status: Literal["cleared"] = "cleared"


class EventAnswer(Wire):
    id: int
    app: str | None
    category: EventCategory
    kind: str
    message: str
    details: Json
    timestamp: Number

    @classmethod
    def of(cls, event: Event) -> EventAnswer:
        return cls(
            id=event.id,
            app=event.app,
            category=event.category,  # type: ignore[arg-type]
            kind=event.kind,
            message=event.message,
            details=event.details,
            timestamp=event.timestamp,
        )

    def event(self) -> Event:
        return Event(**self.model_dump())


class Events(Wire):
    events: list[EventAnswer]

    @classmethod
    def of(cls, events: Iterable[Event]) -> Events:
        newest_first = sorted(events, key=lambda e: (e.timestamp, e.id), reverse=True)
        return cls(events=[EventAnswer.of(e) for e in newest_first])


class LogLineAnswer(Wire):
    timestamp: Number
    container_id: ShortId
    replica: str
    stream: str
    message: str

    @classmethod
    def of(cls, line: LogLine) -> LogLineAnswer:
        return cls(
            timestamp=line.timestamp,
            container_id=short_id(line.container_id),
            replica=line.replica,
            stream=line.stream,
            message=line.message,
        )

    def line(self) -> LogLine:
        return LogLine(**self.model_dump())


class Logs(Wire):
    app: str
    lines: list[LogLineAnswer]

    @classmethod
    def of(cls, name: str, lines: Iterable[LogLine]) -> Logs:
        oldest_first = sorted(lines, key=lambda line: line.timestamp)
        return cls(app=name, lines=[LogLineAnswer.of(x) for x in oldest_first])


class AppMetrics(Wire):
    app: str
    current: CurrentMetrics
    window: Json
    policy: Json
    last_decision: NullableObject

    @classmethod
    def of(cls, name: str, metrics: dict[str, Any]) -> AppMetrics:
        return cls(
            app=name,
            current=CurrentMetrics.of(metrics.get("current")),
            window=metrics.get("window") or {},
            policy=metrics.get("policy") or {},
            last_decision=metrics.get("last_decision"),
        )


class SecretAnswer(Wire):
    name: str
    fields: list[str]


class SecretList(Wire):
    secrets: list[SecretAnswer]


class SecretDeleted(Wire):
    status: Literal["deleted"] = "deleted"
    name: str


# --- nodes ---------------------------------------------------------------------------------------------


class Node(Wire):
    id: str
    hostname: str
    address: str = Field(description="where replicas published on this node are reached")
    role: Literal["manager", "worker", "standalone"]
    state: str = Field(description="ready, down, unknown or disconnected")
    availability: Literal["active", "pause", "drain", "draining"]
    leader: bool
    tasks: int = Field(description="this installation's running replicas on the node")
    engine_version: str
    cpu_cores: NullableNumber
    memory_bytes: NullableInteger
    cpu_reserved_cores: NullableNumber
    memory_reserved_bytes: NullableInteger
    cpu_percent: NullableNumber = Field(
        description="CPU of this installation's replicas there (100 = one core); null: see reason"
    )
    reason: str | None = Field(description="why figures are null (node down, API unreachable)")

    @classmethod
    def of(cls, node: NodeInfo) -> Node:
        return cls(
            id=node.id,
            hostname=node.hostname,
            address=node.address,
            role=node.role,  # type: ignore[arg-type]
            state=node.state,
            availability=node.availability,  # type: ignore[arg-type]
            leader=node.leader,
            tasks=node.tasks,
            engine_version=node.engine_version,
            cpu_cores=node.cpu_cores,
            memory_bytes=node.memory_bytes,
            cpu_reserved_cores=node.cpu_reserved_cores,
            memory_reserved_bytes=node.memory_reserved_bytes,
            cpu_percent=node.cpu_percent,
            reason=node.unavailable_reason or None,
        )

    def info(self) -> NodeInfo:
        """The console's view of a node the daemon described."""
        fields = self.model_dump(exclude={"reason"})
        return NodeInfo(**fields, unavailable_reason=self.reason or "")


class NodeList(Wire):
    nodes: list[Node]


class NodeDrain(Wire):
    node: Node
    moving: int = Field(description="replicas being replaced on other nodes first")
    apps: list[str]


class NodeActivated(Wire):
    node: Node


# --- dashboards (the console attached to a daemon draws from these) ------------------------------------

FIGURE_KEYS = ("rps", "p95_latency_ms", "cpu_percent", "memory_percent")
CHART_METRICS = ("ready_replicas", "rps", "p95_latency_ms", "cpu_percent", "memory_percent")
SERIES_KEYS = (*CHART_METRICS, "desired")


class Figures(Wire):
    """the last 10 s; null while nothing was measured; CPU % of the limit, else of one core"""

    rps: NullableNumber
    p95_latency_ms: NullableNumber
    cpu_percent: NullableNumber
    memory_percent: NullableNumber

    @classmethod
    def of(cls, window: Any) -> Figures:
        """The latest load figures of one app; None (not 0) while nothing has been measured."""
        return cls(**{key: getattr(window, key) for key in FIGURE_KEYS})


class OverviewApp(App):
    figures: Figures


class Overview(Wire):
    timestamp: Number
    lb_listen: str
    runtime: Literal["docker", "swarm"]
    apps: list[OverviewApp]

    @staticmethod
    def data(
        apps: Iterable[AppView],
        figures: dict[str, Figures],
        lb_listen: str,
        now: float,
        runtime: str = "docker",
    ) -> dict[str, Any]:
        """The answer as plain data in this model's shape, for the dashboard's every tick: validating
        an overview of 10,000 replicas model by model took about four times as long as building it
        (tests/api/test_wire_models.py checks that this data is exactly what ``of`` validates)."""
        empty = dict.fromkeys(FIGURE_KEYS)
        return {
            "timestamp": now,
            "lb_listen": lb_listen,
            "runtime": runtime,
            "apps": [
                {**App.fields_of(a), "figures": f.model_dump() if (f := figures.get(a.name)) else empty}
                for a in apps
            ],
        }

    @classmethod
    def of(
        cls,
        apps: Iterable[AppView],
        figures: dict[str, Figures],
        lb_listen: str,
        now: float,
        runtime: str = "docker",
    ) -> Overview:
        return cls.model_validate(cls.data(apps, figures, lb_listen, now, runtime))


class SeriesPoints(Wire):
    """[epoch second, value] points, oldest first; desired is 0 while stopped"""

    ready_replicas: list[Point]
    rps: list[Point]
    p95_latency_ms: list[Point]
    cpu_percent: list[Point]
    memory_percent: list[Point]
    desired: list[Point]


class Series(Wire):
    app: str
    seconds: int
    timestamp: Number
    series: SeriesPoints

    @classmethod
    def of(cls, name: str, seconds: int, now: float, series: dict[str, list[tuple[float, float]]]) -> Series:
        return cls(app=name, seconds=seconds, timestamp=now, series=SeriesPoints(**series))

    def points(self) -> dict[str, list[tuple[float, float]]]:
        return {key: [(float(t), float(v)) for t, v in getattr(self.series, key)] for key in SERIES_KEYS}


# --- backtest ------------------------------------------------------------------------------------------

# A chart needs no more points than a terminal or a browser has columns; peaks survive the thinning.
BACKTEST_POINTS = 600
BACKTEST_DECISIONS = 500
BACKTEST_LOAD = ("rps", "p95_latency_ms", "cpu_percent", "memory_percent", "active_connections")


def thin(points: list[tuple[float, float]], limit: int = BACKTEST_POINTS) -> list[tuple[float, float]]:
    """At most ``limit`` points: consecutive points merged, each keeping its group's last time and
    highest value (a spike or a peak replica count stays visible)."""
    if len(points) <= limit:
        return list(points)
    size = -(-len(points) // limit)
    return [
        (points[i : i + size][-1][0], max(v for _, v in points[i : i + size]))
        for i in range(0, len(points), size)
    ]


class BacktestDecision(Wire):
    at: Number
    from_replicas: int
    to_replicas: int
    reason: str
    deciding_metric: str | None


class BacktestSummary(Wire):
    samples: int
    duration_seconds: Number
    scale_events: int
    scale_outs: int
    scale_ins: int
    replica_minutes: Number
    under_provisioned_minutes: Number
    under_provisioned_by_metric: dict[str, Number]
    peak_replicas: int
    flaps: int
    flap_horizon_seconds: Number


class BacktestRun(Wire):
    policy: Json
    replicas: list[Point]
    decisions: list[BacktestDecision]
    summary: BacktestSummary
    last_reason: str

    @classmethod
    def of(cls, policy: Any, result: Any) -> BacktestRun:
        s = result.summary
        return cls(
            policy=policy.to_document(),
            replicas=thin([(p.at, float(p.replicas)) for p in result.replicas]),
            decisions=[
                BacktestDecision(
                    at=d.at,
                    from_replicas=d.from_replicas,
                    to_replicas=d.to_replicas,
                    reason=d.reason,
                    deciding_metric=d.deciding_metric,
                )
                for d in result.decisions[:BACKTEST_DECISIONS]
            ],
            summary=BacktestSummary(
                samples=s.samples,
                duration_seconds=s.duration_seconds,
                scale_events=s.scale_events,
                scale_outs=s.scale_outs,
                scale_ins=s.scale_ins,
                replica_minutes=s.replica_minutes,
                under_provisioned_minutes=s.under_provisioned_minutes,
                under_provisioned_by_metric=s.under_provisioned_by_metric,
                peak_replicas=s.peak_replicas,
                flaps=s.flaps,
                flap_horizon_seconds=s.flap_horizon_seconds,
            ),
            last_reason=result.last_reason,
        )


class Backtest(Wire):
    app: str
    source: str
    since: Number
    start: NullableNumber
    end: NullableNumber
    samples: int
    model: str
    load: dict[str, list[Point]]
    current: BacktestRun
    candidate: BacktestRun

    @classmethod
    def of(cls, run: Any) -> Backtest:
        """``core.backtest_runner.BacktestRun`` on the wire: the load both policies saw and each one's run."""
        samples = run.samples
        return cls(
            app=run.app,
            source=run.source,
            since=run.since_seconds,
            start=samples[0].at - samples[0].resolution if samples else None,
            end=samples[-1].at if samples else None,
            samples=len(samples),
            model=run.current.model,
            load={
                name: thin([(s.at, getattr(s, name)) for s in samples if getattr(s, name) is not None])
                for name in BACKTEST_LOAD
            },
            current=BacktestRun.of(run.current_policy, run.current),
            candidate=BacktestRun.of(run.candidate_policy, run.candidate),
        )
