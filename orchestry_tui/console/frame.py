"""Plain data one console refresh shows: what the backend hands the widgets, nothing Textual."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.models import AppView

Series = list[tuple[float, float]]  # (epoch second, value), oldest first


@dataclass(frozen=True)
class Leadership:
    node_id: str
    state: str  # leader | follower | candidate | starting | error
    term: int | None = None
    leader_id: str | None = None
    lease_expires_at: float | None = None

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


@dataclass(frozen=True)
class Frame:
    now: float
    leadership: Leadership
    apps: list[AppView]
    figures: dict[str, AppFigures] = field(default_factory=dict)
    charts: ChartData | None = None
