"""Dashboard answers (overview, chart series) and the backtest."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from core.api.wire.base import Json, NullableNumber, Number, Point, Wire
from core.api.wire.v1 import App
from core.models import (
    AppView,
)

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
