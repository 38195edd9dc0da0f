"""What a scaling policy would have done: recorded (or synthetic) load replayed through the scaler.

A pure function, no I/O and no clock: ``backtest(samples, policy)`` steps through the metric history
(core/history.py) one record at a time and asks ``core.scaler.decide`` (the production scaler itself)
what to do, keeping its own replica count, cooldown clock and scale-in recommendations exactly as the
scaling loop does.  Because the replica count it simulates differs from the one that served the
recorded load, the per-replica figures are re-modelled (see ``MODEL``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from core.history import DAY, MetricSample
from core.metrics.window import MetricWindow
from core.scaler import ScalingPolicyLike, decide, steady_check

MODEL = (
    "Load is what was served: total requests/s and connections stay as recorded whatever the replica "
    "count. CPU per replica scales with recorded ready replicas / simulated ready replicas (the same "
    "work spread over more or fewer replicas). p95 latency grows in the same proportion when fewer "
    "replicas than recorded are simulated, and does not improve with more. Memory per replica is kept "
    "as recorded. Replicas that were not ready in the recording stay not ready; replicas the policy "
    "adds are ready at the next period. A window is rebuilt from the period records inside it (means "
    "weighted by period length; p95 weighted by requests). Under-provisioned: a period where a figure "
    "exceeded its target (100 %, not the scale-out threshold). Flap: a scale-in undone by a scale-out "
    "within cooldownSeconds + windowSeconds."
)

TRACES = ("step", "ramp", "spike", "sine")


class ReplicaPoint(NamedTuple):  # one per record: a tuple is the cheapest to make
    at: float
    replicas: int  # desired after the decision at ``at``
    ready: int  # ready when the scaler decided at ``at``


@dataclass(frozen=True)
class BacktestDecision:
    at: float
    from_replicas: int
    to_replicas: int
    reason: str
    deciding_metric: str | None


@dataclass(frozen=True)
class BacktestSummary:
    samples: int
    duration_seconds: float
    scale_events: int
    scale_outs: int
    scale_ins: int
    replica_minutes: float
    under_provisioned_minutes: float
    under_provisioned_by_metric: dict[str, float]
    peak_replicas: int
    flaps: int
    flap_horizon_seconds: float


@dataclass(frozen=True)
class BacktestResult:
    replicas: list[ReplicaPoint]
    decisions: list[BacktestDecision]
    summary: BacktestSummary
    model: str = MODEL
    last_reason: str = ""


@dataclass(frozen=True)
class _AutoMode:
    """A policy evaluated as if in auto mode: a manual app is backtested for what auto would do."""

    policy: ScalingPolicyLike
    mode: str = "auto"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)


# One record as the simulated replicas would have seen it: (start, at, weight, rps, p95 latency, cpu,
# memory, connections).  A plain tuple: one is made per record, the cheapest thing Python builds.
_Period = tuple[float, float, float, float | None, float | None, float | None, float | None, float | None]


# Index of each figure's (weighted total, weight) pair in _Window.sums (see _Window._apply).
_RPS, _P95, _CPU, _MEMORY, _CONNECTIONS = range(5)


class _Window:
    """The records inside the policy's window, with running weighted sums of each figure (a week of
    records is replayed with O(1) work per record, not a re-scan of the window)."""

    __slots__ = ("periods", "seconds", "sums")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.periods: deque[_Period] = deque()
        self.sums = [0.0] * 10  # total, weight for each figure

    def push(self, period: _Period) -> None:
        """Add ``period`` and drop those that left the window.  Spelled out figure by figure: this is
        the replay's innermost step, run once per record (adding) and once per expired one."""
        sums = self.sums
        _start, at, weight, rps, p95, cpu, memory, connections = period
        if rps is not None:
            sums[0] += rps * weight
            sums[1] += weight
            if p95 is not None and rps > 0:  # latency weighted by requests
                sums[2] += p95 * (rps * weight)
                sums[3] += rps * weight
        if cpu is not None:
            sums[4] += cpu * weight
            sums[5] += weight
        if memory is not None:
            sums[6] += memory * weight
            sums[7] += weight
        if connections is not None:
            sums[8] += connections * weight
            sums[9] += weight
        periods = self.periods
        periods.append(period)
        cutoff = at - self.seconds
        while periods[0][1] <= cutoff:
            _start, _at, weight, rps, p95, cpu, memory, connections = periods.popleft()
            if rps is not None:
                sums[0] -= rps * weight
                sums[1] -= weight
                if p95 is not None and rps > 0:
                    sums[2] -= p95 * (rps * weight)
                    sums[3] -= rps * weight
            if cpu is not None:
                sums[4] -= cpu * weight
                sums[5] -= weight
            if memory is not None:
                sums[6] -= memory * weight
                sums[7] -= weight
            if connections is not None:
                sums[8] -= connections * weight
                sums[9] -= weight

    def _mean(self, index: int) -> float | None:
        # Removing what was added leaves float dust: a weight that is all but 0 means no data.
        weight = self.sums[2 * index + 1]
        return self.sums[2 * index] / weight if weight > 1e-9 else None

    def figures(
        self, now: float
    ) -> tuple[float | None, float | None, float | None, float | None, float | None, float]:
        """(rps, p95 latency, connections, cpu, memory, covered seconds): what ``steady_check`` reads."""
        rps_total, rps_w, p95_total, p95_w, cpu_total, cpu_w, mem_total, mem_w, conn_total, conn_w = self.sums
        covered = min(self.seconds, now - self.periods[0][0]) if self.periods else 0.0
        return (
            rps_total / rps_w if rps_w > 1e-9 else None,
            p95_total / p95_w if p95_w > 1e-9 else None,
            conn_total / conn_w if conn_w > 1e-9 else None,
            cpu_total / cpu_w if cpu_w > 1e-9 else None,
            mem_total / mem_w if mem_w > 1e-9 else None,
            covered if covered > 0.0 else 0.0,
        )

    def view(self, now: float, ready: int) -> MetricWindow:
        covered = min(self.seconds, now - self.periods[0][0]) if self.periods else 0.0
        return MetricWindow(
            rps=self._mean(_RPS),
            p50_latency_ms=None,
            p95_latency_ms=self._mean(_P95),
            p99_latency_ms=None,
            error_rate=None,
            active_connections=self._mean(_CONNECTIONS),
            cpu_percent=self._mean(_CPU),
            memory_percent=self._mean(_MEMORY),
            ready_replicas=ready,
            samples=len(self.periods),
            covered_seconds=max(0.0, covered),
        )


def _as_served_by(sample: MetricSample, recorded_ready: int, ready: int) -> _Period:
    """``sample``'s figures had ``ready`` replicas served the recorded load (see MODEL)."""
    ratio = recorded_ready / ready if recorded_ready > 0 and ready > 0 else 1.0
    p95, cpu = sample.p95_latency_ms, sample.cpu_percent
    return (
        sample.at - sample.resolution,
        sample.at,
        sample.resolution,
        sample.rps,
        None if p95 is None else p95 * ratio if ratio > 1.0 else p95,  # latency never improves
        None if cpu is None else cpu * ratio,
        sample.memory_percent,
        sample.active_connections,
    )


def _over_target(policy: ScalingPolicyLike) -> Callable[[_Period, int], tuple[str, ...]]:
    """A check of one period: the figures above their targets with ``ready`` replicas serving it."""
    rps_target = policy.target_rps_per_replica
    latency_target = policy.max_p95_latency_ms
    connections_target = policy.max_conn_per_replica
    cpu_target = policy.max_cpu_percent
    memory_target = policy.max_memory_percent

    def over(period: _Period, ready: int) -> tuple[str, ...]:
        _start, _at, _weight, rps, p95, cpu, memory, connections = period
        per_replica = ready if ready > 1 else 1
        found: tuple[str, ...] = ()
        if rps is not None and rps_target and rps / per_replica > rps_target:
            found += ("rps",)
        if p95 is not None and latency_target and p95 > latency_target:
            found += ("latency",)
        if connections is not None and connections_target and connections / per_replica > connections_target:
            found += ("connections",)
        if cpu is not None and cpu_target and cpu > cpu_target:
            found += ("cpu",)
        if memory is not None and memory_target and memory > memory_target:
            found += ("memory",)
        if ready == 0 and (rps or 0) > 0:
            found += ("no ready replica",)
        return found

    return over


def backtest(
    samples: Sequence[MetricSample],
    policy: ScalingPolicyLike,
    initial_replicas: int | None = None,
    last_scaled_at: float | None = None,
) -> BacktestResult:
    """Replay ``samples`` (one app, oldest first) through ``policy``; see the module docstring.

    ``initial_replicas`` defaults to the desired count of the first record; ``last_scaled_at`` is the
    clock's start for the cooldown (the last scaling before the first record, if any).
    """
    if policy.mode != "auto":
        policy = _AutoMode(policy)
    ordered = sorted(samples, key=lambda s: s.at)
    current = (
        initial_replicas
        if initial_replicas is not None
        else round(ordered[0].desired_replicas)
        if ordered
        else 0
    )
    window = _Window(float(policy.window_seconds))
    recommendations: deque[tuple[float, int]] = deque()
    points: list[ReplicaPoint] = []
    decisions: list[BacktestDecision] = []
    replica_seconds = 0.0
    under: dict[str, float] = {}
    under_seconds = 0.0
    last_reason = ""
    steady_at: tuple[MetricWindow, int, int, float] | None = None
    over_target = _over_target(policy)
    steady = steady_check(policy)
    last = ordered[-1] if ordered else None
    window_seconds = policy.window_seconds
    recorded_ready = [round(s.ready_replicas) for s in ordered]
    # Recorded not-ready replicas (starting, failing) stay so; the policy's own are ready.
    not_ready_of = [
        max(0, round(s.desired_replicas) - r) for s, r in zip(ordered, recorded_ready, strict=True)
    ]
    for index, sample in enumerate(ordered):
        now = sample.at
        ready = current - not_ready_of[index]
        if ready < 0:
            ready = 0
        period = _as_served_by(sample, recorded_ready[index], ready)
        window.push(period)
        replica_seconds += current * sample.resolution
        over = over_target(period, ready)
        if over:
            under_seconds += sample.resolution
            for name in over:
                under[name] = under.get(name, 0.0) + sample.resolution
        while recommendations and recommendations[0][0] < now - window_seconds:
            recommendations.popleft()
        if steady(*window.figures(now), current, ready):
            # decide() would hold and recommend ``current`` here (held to it by a property test):
            # skipping it is what makes a week of 10 s records replay in well under a second.
            recommendations.append((now, current))
            steady_at = (window.view(now, ready), current, ready, now) if sample is last else None
            points.append(ReplicaPoint(now, current, ready))
            continue
        steady_at = None
        view = window.view(now, ready)
        decision = decide(policy, view, current, ready, now, last_scaled_at, list(recommendations))
        recommendations.append((now, decision.recommendation))
        last_reason = decision.reason
        if decision.should_scale and decision.target != current:
            decisions.append(
                BacktestDecision(now, current, decision.target, decision.reason, decision.deciding_metric)
            )
            current = decision.target
            last_scaled_at = now
        points.append(ReplicaPoint(now, current, ready))
    if steady_at is not None:  # the last record took the short cut: ask for its reason
        view, held, ready, now = steady_at
        last_reason = decide(policy, view, held, ready, now, last_scaled_at).reason
    horizon = float(policy.cooldown_seconds + policy.window_seconds)
    summary = BacktestSummary(
        samples=len(ordered),
        duration_seconds=(ordered[-1].at - ordered[0].at + ordered[0].resolution) if ordered else 0.0,
        scale_events=len(decisions),
        scale_outs=sum(d.to_replicas > d.from_replicas for d in decisions),
        scale_ins=sum(d.to_replicas < d.from_replicas for d in decisions),
        replica_minutes=round(replica_seconds / 60.0, 2),
        under_provisioned_minutes=round(under_seconds / 60.0, 2),
        under_provisioned_by_metric={k: round(v / 60.0, 2) for k, v in sorted(under.items())},
        peak_replicas=max((p.replicas for p in points), default=current),
        flaps=_flaps(decisions, horizon),
        flap_horizon_seconds=horizon,
    )
    return BacktestResult(replicas=points, decisions=decisions, summary=summary, last_reason=last_reason)


def _flaps(decisions: list[BacktestDecision], horizon: float) -> int:
    """Scale-ins followed by a scale-out within ``horizon`` seconds."""
    outs = [d.at for d in decisions if d.to_replicas > d.from_replicas]
    return sum(
        1
        for d in decisions
        if d.to_replicas < d.from_replicas and any(d.at < at <= d.at + horizon for at in outs)
    )


# -- synthetic traces for apps without history ---------------------------------------------------


def _trace_load(kind: str, fraction: float, base: float, peak: float) -> float:
    """Load, in replicas' worth at 100 % of target, at ``fraction`` (0..1) of the trace."""
    if kind == "step":
        return peak if 0.25 <= fraction < 0.75 else base
    if kind == "ramp":
        rising = fraction / 0.5 if fraction < 0.5 else (1.0 - fraction) / 0.5
        return base + (peak - base) * rising
    if kind == "spike":
        return peak * 1.5 if 0.4 <= fraction < 0.4 + 120 / 3600 else base
    if kind == "sine":
        return base + (peak - base) * (1 - math.cos(2 * math.pi * fraction)) / 2
    raise ValueError(f"unknown trace {kind!r}: use one of {', '.join(TRACES)}")


def trace_duration(kind: str) -> float:
    return DAY if kind == "sine" else 3600.0


def synthetic_trace(
    kind: str,
    policy: ScalingPolicyLike,
    app: str = "trace",
    start: float = 0.0,
    period: float = 10.0,
    duration: float | None = None,
) -> list[MetricSample]:
    """Records of a made-up load for an app with no history: a step (quiet, a quarter in: busy, three
    quarters in: quiet), a ramp up and down, a two-minute spike, or a daily sine.  The load is sized on
    the policy: quiet is half of ``minReplicas`` at target, busy is 90 % of ``maxReplicas`` at target;
    one replica serves it all in the recording (the backtest re-spreads it, see MODEL)."""
    duration = trace_duration(kind) if duration is None else duration
    base = 0.5 * max(policy.min_replicas, 1)
    peak = max(0.9 * policy.max_replicas, base)
    count = max(1, int(duration // period))
    samples = []
    for i in range(count):
        load = _trace_load(kind, i / count, base, peak)
        samples.append(
            MetricSample.raw(
                app,
                start + (i + 1) * period,
                period,
                rps=load * (policy.target_rps_per_replica or 0.0),
                p95_latency_ms=0.5 * policy.max_p95_latency_ms if policy.max_p95_latency_ms else None,
                cpu_percent=load * policy.max_cpu_percent if policy.max_cpu_percent else None,
                memory_percent=0.5 * policy.max_memory_percent if policy.max_memory_percent else None,
                active_connections=load * (policy.max_conn_per_replica or 0.0),
                ready_replicas=1,
                desired_replicas=1,
            )
        )
    return samples
