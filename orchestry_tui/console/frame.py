"""Plain data one console refresh shows: what the backend hands the widgets, nothing Textual."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.models import AppView

Series = list[tuple[float, float]]  # (epoch second, value), oldest first


@dataclass(frozen=True)
class Leadership:
    node_id: str
    state: str  # leader | follower | candidate | starting | error
    term: int | None = None
    leader_id: str | None = None
    lease_expires_at: float | None = None
    leader_api_url: str | None = None  # where the leader's API listens, as its lease says

    @property
    def is_leader(self) -> bool:
        return self.state == "leader"


@dataclass(frozen=True)
class AppFigures:
    """The latest per-app load figures shown in the apps table (None = no data yet)."""

    rps: float | None = None
    p95_latency_ms: float | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None


@dataclass(frozen=True)
class ChartData:
    """Everything the charts pane draws for one app."""

    app: str
    desired: Series
    ready: Series
    rps: Series
    p95_latency_ms: Series
    cpu_percent: Series
    max_p95_latency_ms: float
    max_cpu_percent: float
    cpu_of_limit: bool  # CPU % is of the container's CPU limit (else of one core)


def chart_data(app: AppView, series: Mapping[str, Series]) -> ChartData:
    """The charts of ``app`` from its series (keyed as the API's: desired, ready_replicas, rps, …),
    with the thresholds and the CPU normalisation its spec sets."""
    policy = app.spec.get("scaling", {})
    resources = app.spec.get("spec", {}).get("resources", {}) or {}
    return ChartData(
        app=app.name,
        desired=list(series.get("desired", ())),
        ready=list(series.get("ready_replicas", ())),
        rps=list(series.get("rps", ())),
        p95_latency_ms=list(series.get("p95_latency_ms", ())),
        cpu_percent=list(series.get("cpu_percent", ())),
        max_p95_latency_ms=float(policy.get("maxP95LatencyMs", 250.0)),
        max_cpu_percent=float(policy.get("maxCPUPercent", 70.0)),
        cpu_of_limit=bool(resources.get("cpu")),
    )


@dataclass(frozen=True)
class Frame:
    now: float
    leadership: Leadership
    apps: list[AppView]
    figures: dict[str, AppFigures] = field(default_factory=dict)
    charts: ChartData | None = None
    # Apps listed without their replicas (a summary: what the apps table shows); the selected app's
    # replicas are always there, so after a switch they show on the next frame.
    summarised: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClusterNode:
    node_id: str
    hostname: str
    api_url: str
    state: str  # leader | follower | candidate | down
    heartbeat_age: float
    database: str  # ok | error | unknown
    version: str | None
    reachable: bool = True  # its API answered /health just now


@dataclass(frozen=True)
class TermRecord:
    term: int
    leader_id: str
    acquired_at: float
    ended_at: float | None
    ended: str | None  # released | expired | fenced | None while it leads


@dataclass(frozen=True)
class ClusterView:
    """The cluster pane's data: as GET /api/v1/cluster/overview answers (times on the database clock)."""

    now: float
    answered_by: str
    term: int | None
    leader_id: str | None
    lease_expires_at: float | None
    lease_ttl: float | None
    nodes: list[ClusterNode]
    history: list[TermRecord]
    ticking: bool = True  # the lease counts down between refreshes (fixed sample data does not)


def cluster_view(overview: Mapping[str, Any]) -> ClusterView:
    """The pane's data from an overview answer (the engine's dict or the API's JSON, the same shape)."""
    lease = overview.get("lease") or {}
    live = lease.get("remaining", 0) > 0 and overview.get("leader_id") is not None
    return ClusterView(
        now=float(overview["now"]),
        answered_by=str(overview.get("node_id") or "?"),
        term=overview.get("term"),
        leader_id=overview.get("leader_id"),
        lease_expires_at=float(lease["expires_at"]) if live else None,
        lease_ttl=float(lease["ttl"]) if lease.get("ttl") else None,
        nodes=[
            ClusterNode(
                node_id=str(n["node_id"]),
                hostname=str(n.get("hostname") or ""),
                api_url=str(n.get("api_url") or ""),
                state=str(n.get("state") or "?"),
                heartbeat_age=float(n.get("heartbeat_age") or 0.0),
                database=str(n.get("database") or "unknown"),
                version=n.get("version"),
                reachable=bool(n.get("reachable", True)),
            )
            for n in overview.get("nodes") or []
        ],
        history=[
            TermRecord(
                term=int(h["term"]),
                leader_id=str(h["leader_id"]),
                acquired_at=float(h["acquired_at"]),
                ended_at=h.get("ended_at"),
                ended=h.get("ended"),
            )
            for h in overview.get("history") or []
        ],
    )
