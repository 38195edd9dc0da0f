"""The Orchestry 1.0 answers of the unprefixed routes: byte-compatible with what 1.0 clients parse."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_serializer

from core.api.wire.base import (
    AppStatusName,
    Json,
    Mode,
    NullableNumber,
    NullableObject,
    Number,
    ShortId,
    Wire,
    _percent,
    short_id,
)
from core.models import (
    AppView,
    Event,
    ReplicaView,
    ScaleResult,
    ScalingRecord,
    UpResult,
)
from core.runtime.base import LogLine

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
