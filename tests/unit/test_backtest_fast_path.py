"""The backtest's fast replay (one loop, ``decide`` only where ``steady_check`` cannot prove a hold) gives
exactly what the plain replay gives: ``decide`` asked at every record over a window object."""

from __future__ import annotations

import random
from collections import deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.backtest import (
    MODEL,
    BacktestDecision,
    BacktestResult,
    BacktestSummary,
    ReplicaPoint,
    backtest,
    synthetic_trace,
)
from core.history import MetricSample
from core.metrics.window import MetricWindow
from core.scaler import decide
from core.spec import ScalingPolicy
from tests.unit.test_scaler_properties import policies

_Period = tuple[float, float, float, float | None, float | None, float | None, float | None, float | None]


class _PlainWindow:
    """The records inside the window and running weighted sums of each figure, one method per step."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.periods: deque[_Period] = deque()
        self.sums = [0.0] * 10  # (weighted total, weight) of rps, p95, cpu, memory, connections

    def _apply(self, period: _Period, sign: float) -> None:
        _start, _at, weight, rps, p95, cpu, memory, connections = period
        add = self._add if sign > 0 else self._subtract
        if rps is not None:
            add(0, rps * weight, weight)
            if p95 is not None and rps > 0:
                add(1, p95 * (rps * weight), rps * weight)
        if cpu is not None:
            add(2, cpu * weight, weight)
        if memory is not None:
            add(3, memory * weight, weight)
        if connections is not None:
            add(4, connections * weight, weight)

    def _add(self, figure: int, total: float, weight: float) -> None:
        self.sums[2 * figure] += total
        self.sums[2 * figure + 1] += weight

    def _subtract(self, figure: int, total: float, weight: float) -> None:
        self.sums[2 * figure] -= total
        self.sums[2 * figure + 1] -= weight

    def push(self, period: _Period) -> None:
        self._apply(period, 1.0)
        self.periods.append(period)
        while self.periods[0][1] <= period[1] - self.seconds:
            self._apply(self.periods.popleft(), -1.0)

    def _mean(self, figure: int) -> float | None:
        weight = self.sums[2 * figure + 1]
        return self.sums[2 * figure] / weight if weight > 1e-9 else None

    def view(self, now: float, ready: int) -> MetricWindow:
        covered = min(self.seconds, now - self.periods[0][0]) if self.periods else 0.0
        return MetricWindow(
            rps=self._mean(0),
            p50_latency_ms=None,
            p95_latency_ms=self._mean(1),
            p99_latency_ms=None,
            error_rate=None,
            active_connections=self._mean(4),
            cpu_percent=self._mean(2),
            memory_percent=self._mean(3),
            ready_replicas=ready,
            samples=len(self.periods),
            covered_seconds=max(0.0, covered),
        )


def _over(policy: ScalingPolicy, period: _Period, ready: int) -> list[str]:
    _start, _at, _weight, rps, p95, cpu, memory, connections = period
    per = max(ready, 1)
    checks = [
        ("rps", rps is not None and rps / per > policy.target_rps_per_replica),
        ("latency", p95 is not None and p95 > policy.max_p95_latency_ms),
        ("connections", connections is not None and connections / per > policy.max_conn_per_replica),
        ("cpu", cpu is not None and cpu > policy.max_cpu_percent),
        ("memory", memory is not None and memory > policy.max_memory_percent),
        ("no ready replica", ready == 0 and (rps or 0) > 0),
    ]
    return [name for name, over in checks if over]


def plain_backtest(
    samples: list[MetricSample], policy: ScalingPolicy, initial: int | None, last_scaled_at: float | None
) -> BacktestResult:
    """The replay as MODEL states it, with nothing skipped: every record asks ``decide``."""
    policy = policy.model_copy(update={"mode": "auto"})
    ordered = sorted(samples, key=lambda s: s.at)
    current = initial if initial is not None else round(ordered[0].desired_replicas) if ordered else 0
    window = _PlainWindow(float(policy.window_seconds))
    recommendations: deque[tuple[float, int]] = deque()
    points, decisions, under = [], [], {}
    replica_seconds = under_seconds = 0.0
    last_reason = ""
    for sample in ordered:
        recorded_ready = round(sample.ready_replicas)
        ready = max(0, current - max(0, round(sample.desired_replicas) - recorded_ready))
        ratio = recorded_ready / ready if recorded_ready > 0 and ready > 0 else 1.0
        p95, cpu = sample.p95_latency_ms, sample.cpu_percent
        period = (
            sample.at - sample.resolution,
            sample.at,
            sample.resolution,
            sample.rps,
            None if p95 is None else p95 * ratio if ratio > 1.0 else p95,
            None if cpu is None else cpu * ratio,
            sample.memory_percent,
            sample.active_connections,
        )
        window.push(period)
        replica_seconds += current * sample.resolution
        over = _over(policy, period, ready)
        if over:
            under_seconds += sample.resolution
            for name in over:
                under[name] = under.get(name, 0.0) + sample.resolution
        while recommendations and recommendations[0][0] < sample.at - policy.window_seconds:
            recommendations.popleft()
        decision = decide(
            policy,
            window.view(sample.at, ready),
            current,
            ready,
            sample.at,
            last_scaled_at,
            list(recommendations),
        )
        recommendations.append((sample.at, decision.recommendation))
        last_reason = decision.reason
        if decision.should_scale and decision.target != current:
            decisions.append(
                BacktestDecision(
                    sample.at, current, decision.target, decision.reason, decision.deciding_metric
                )
            )
            current, last_scaled_at = decision.target, sample.at
        points.append(ReplicaPoint(sample.at, current, ready))
    horizon = float(policy.cooldown_seconds + policy.window_seconds)
    outs = [d.at for d in decisions if d.to_replicas > d.from_replicas]
    summary = BacktestSummary(
        samples=len(ordered),
        duration_seconds=(ordered[-1].at - ordered[0].at + ordered[0].resolution) if ordered else 0.0,
        scale_events=len(decisions),
        scale_outs=len(outs),
        scale_ins=sum(d.to_replicas < d.from_replicas for d in decisions),
        replica_minutes=round(replica_seconds / 60.0, 2),
        under_provisioned_minutes=round(under_seconds / 60.0, 2),
        under_provisioned_by_metric={k: round(v / 60.0, 2) for k, v in sorted(under.items())},
        peak_replicas=max((p.replicas for p in points), default=current),
        flaps=sum(
            1
            for d in decisions
            if d.to_replicas < d.from_replicas and any(d.at < at <= d.at + horizon for at in outs)
        ),
        flap_horizon_seconds=horizon,
    )
    return BacktestResult(points, decisions, summary, MODEL, last_reason)


# Values that make the window's sums and the targets' comparisons meet their edges (0, the tiniest
# float, the 1e-9 "no data" line, whole numbers that tie, the range's end), as Hypothesis's own floats do.
_EDGES = (0.0, 5e-324, 1e-300, 1e-9, 0.5, 1.0, 1.5, 2.0, 10.0, 100.0)


def _figure(rng: random.Random, high: float) -> float | None:
    pick = rng.random()
    if pick < 0.25:
        return None
    if pick < 0.4:
        return rng.choice((*_EDGES, high))
    if pick < 0.5:
        return float(rng.randint(0, int(high)))
    return rng.uniform(0.0, high)


@st.composite
def recordings(draw: st.DrawFn) -> list[MetricSample]:
    """Records with gaps, mixed resolutions, missing figures and replicas that were not ready, and
    stretches where a record repeats the one before (a steady load: where the fast replay skips, and
    where scaling in waits for the window's recommendations).

    Hypothesis draws how many records and a seed; the records come from that seed. Drawing every field
    through Hypothesis (8 to 14 choices a record, 60 records an example on average) was nine tenths of
    this test's time, 15-90 s. Shrinking still cuts the count; a failure prints the records it drew."""
    count = draw(st.integers(1, 150))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    at, samples = 1_000.0, []
    figures: tuple[float | None, ...] = ()
    desired = ready = 0
    for index in range(count):
        resolution = rng.choice((5.0, 10.0, 10.0, 10.0, 60.0))
        at += resolution + rng.choice((0.0, 0.0, 0.0, 7.0, 300.0))
        if index == 0 or rng.random() < 0.5:
            figures = tuple(_figure(rng, high) for high in (3000.0, 3000.0, 400.0, 100.0, 3000.0))
            desired = rng.randint(0, 12)
            ready = desired if rng.random() < 0.5 else rng.randint(0, desired)
        rps, p95, cpu, memory, connections = figures
        samples.append(
            MetricSample.raw(
                "web",
                at,
                resolution,
                rps=rps,
                p95_latency_ms=p95,
                cpu_percent=cpu,
                memory_percent=memory,
                active_connections=connections,
                ready_replicas=ready,
                desired_replicas=desired,
            )
        )
    return samples


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policies(),
    recordings(),
    st.none() | st.integers(0, 30),
    st.none() | st.floats(0, 3_000),
    st.sampled_from(["auto", "manual"]),
)
def test_the_fast_replay_decides_exactly_as_the_plain_one(
    policy: ScalingPolicy,
    samples: list[MetricSample],
    initial: int | None,
    last_scaled_at: float | None,
    mode: str,
) -> None:
    policy = policy.model_copy(update={"mode": mode})
    fast = backtest(samples, policy, initial, last_scaled_at)
    assert fast == plain_backtest(samples, policy, initial, last_scaled_at)


def test_synthetic_traces_replay_exactly_as_the_plain_one() -> None:
    # Long steady stretches, where the fast replay skips decide() the most.
    policy = ScalingPolicy(window_seconds=60, cooldown_seconds=120, max_replicas=8)
    for kind in ("step", "ramp", "spike", "sine"):
        samples = synthetic_trace(kind, policy, period=10.0, duration=6 * 3600)
        fast = backtest(samples, policy, 1)
        assert fast.decisions, kind  # the trace makes the policy act: the comparison is not vacuous
        assert fast == plain_backtest(samples, policy, 1, None), kind
