"""Metric history: what one app did over one period, as stored, and how old periods are rolled up.

A leaf module (no I/O, no imports from the rest of core): the store persists these records, the
scaling loop writes them, the series route and the backtest read them.

Each record covers ``resolution`` seconds ending at ``at``.  The scaling loop writes one raw record per
app and scaling period; older records are merged into coarser ones (``ROLLUP_TIERS``).  A merged record
keeps the mean of each figure (weighted by the periods it covers) and its maximum, so a rolled-up day
still shows its peaks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The figures of a record; each has a mean (the field itself) and a ``<name>_max`` peak.
FIGURES = (
    "rps",
    "p95_latency_ms",
    "cpu_percent",
    "memory_percent",
    "active_connections",
    "ready_replicas",
    "desired_replicas",
)

DAY = 86_400.0
# (records younger than this many seconds, are kept at this resolution); older ones roll into the
# next tier.  Raw records (the scaling period) live a day, minute records a week, then ten minutes.
ROLLUP_TIERS: tuple[tuple[float, int], ...] = ((DAY, 60), (7 * DAY, 600))


@dataclass(frozen=True)
class MetricSample:
    """One app's figures over the ``resolution`` seconds that ended at ``at`` (epoch seconds).

    ``rps`` and ``active_connections`` are the app's totals; ``cpu_percent`` is the mean over ready
    replicas, ``memory_percent`` over all replicas; ``ready_replicas`` and ``desired_replicas`` are what
    the scaler saw when it evaluated the app at ``at``.  None: not measured in that period.
    """

    app: str
    at: float
    resolution: float
    rps: float | None = None
    p95_latency_ms: float | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    active_connections: float | None = None
    ready_replicas: float = 0.0
    desired_replicas: float = 0.0
    rps_max: float | None = None
    p95_latency_ms_max: float | None = None
    cpu_percent_max: float | None = None
    memory_percent_max: float | None = None
    active_connections_max: float | None = None
    ready_replicas_max: float = 0.0
    desired_replicas_max: float = 0.0
    periods: int = 1  # how many raw periods were merged into this record

    @classmethod
    def raw(
        cls,
        app: str,
        at: float,
        resolution: float,
        *,
        rps: float | None,
        p95_latency_ms: float | None,
        cpu_percent: float | None,
        memory_percent: float | None,
        active_connections: float | None,
        ready_replicas: int,
        desired_replicas: int,
    ) -> MetricSample:
        """A record of one scaling period: each peak equals its mean."""
        return cls(
            app=app,
            at=at,
            resolution=resolution,
            rps=rps,
            p95_latency_ms=p95_latency_ms,
            cpu_percent=cpu_percent,
            memory_percent=memory_percent,
            active_connections=active_connections,
            ready_replicas=float(ready_replicas),
            desired_replicas=float(desired_replicas),
            rps_max=rps,
            p95_latency_ms_max=p95_latency_ms,
            cpu_percent_max=cpu_percent,
            memory_percent_max=memory_percent,
            active_connections_max=active_connections,
            ready_replicas_max=float(ready_replicas),
            desired_replicas_max=float(desired_replicas),
        )


def _mean(samples: Sequence[MetricSample], name: str) -> float | None:
    weighted = [(getattr(s, name), s.resolution) for s in samples if getattr(s, name) is not None]
    total = sum(weight for _, weight in weighted)
    return sum(value * weight for value, weight in weighted) / total if total else None


def _peak(samples: Sequence[MetricSample], name: str) -> float | None:
    values = [getattr(s, f"{name}_max") for s in samples if getattr(s, f"{name}_max") is not None]
    return max(values) if values else None


def merge(app: str, at: float, resolution: float, samples: Sequence[MetricSample]) -> MetricSample:
    """One record of ``resolution`` seconds ending at ``at`` from the finer ``samples`` inside it."""
    figures: dict[str, float | None] = {}
    for name in FIGURES:
        figures[name] = _mean(samples, name)
        figures[f"{name}_max"] = _peak(samples, name)
    for name in ("ready_replicas", "desired_replicas"):
        for key in (name, f"{name}_max"):
            figures[key] = figures[key] or 0.0
    return MetricSample(
        app=app, at=at, resolution=resolution, periods=sum(s.periods for s in samples), **figures
    )


def roll_up(samples: Iterable[MetricSample], resolution: int) -> list[MetricSample]:
    """Merge ``samples`` (any resolutions finer than ``resolution``) into records aligned on multiples
    of ``resolution`` seconds, per app; a record ending at ``k × resolution`` covers the samples whose
    ``at`` lies in ``((k - 1) × resolution, k × resolution]``."""
    buckets: dict[tuple[str, float], list[MetricSample]] = {}
    for sample in samples:
        end = math.ceil(sample.at / resolution) * resolution
        buckets.setdefault((sample.app, float(end)), []).append(sample)
    return [merge(app, end, resolution, group) for (app, end), group in sorted(buckets.items())]
