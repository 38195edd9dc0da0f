"""The ``/api/v1`` answers about apps: described apps and replicas, results of changes, events, logs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from core.api.wire.base import (
    AppStatusName,
    EventCategory,
    Json,
    Mode,
    NullableNumber,
    NullableObject,
    Number,
    ShortId,
    Wire,
    short_id,
)
from core.api.wire.legacy import CurrentMetrics
from core.models import (
    AppView,
    Event,
    RegisterPreview,
    ReplicaView,
    RolloutView,
    ScaleResult,
    UpResult,
)
from core.runtime.base import LogLine

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
    image: str = Field(description="spec.image")
    image_problem: str | None = Field(
        description="why no replica could start from the image (not on the Docker engine, and no "
        "registry it reaches has it: `up` would fail); null when it could"
    )

    @classmethod
    def of(cls, preview: RegisterPreview) -> RegisterPreviewAnswer:
        return cls(
            app=preview.app,
            change=preview.change,  # type: ignore[arg-type]
            spec_hash=preview.spec_hash,
            image=preview.image,
            image_problem=preview.image_problem or None,
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
