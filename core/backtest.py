"""What a scaling policy would have done: recorded (or synthetic) load replayed through the scaler.

A pure function, no I/O and no clock: ``backtest(samples, policy)`` steps through the metric history
(core/history.py) one record at a time and asks ``core.scaler.decide`` (the production scaler itself)
what to do, keeping its own replica count, cooldown clock and scale-in recommendations exactly as the
scaling loop does.  Because the replica count it simulates differs from the one that served the
recorded load, the per-replica figures are re-modelled (see ``MODEL``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
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


_by_time = attrgetter("at")


def backtest(
    samples: Sequence[MetricSample],
    policy: ScalingPolicyLike,
    initial_replicas: int | None = None,
    last_scaled_at: float | None = None,
) -> BacktestResult:
    """Replay ``samples`` (one app, oldest first) through ``policy``; see the module docstring.

    ``initial_replicas`` defaults to the desired count of the first record; ``last_scaled_at`` is the
    clock's start for the cooldown (the last scaling before the first record, if any).

    The loop runs once per record (24 h of 10 s records for 50 apps is 432 000 turns), so it is written
    out in one function with no call per record but ``steady_check``: the window's running sums are
    local floats, the records inside the window are ``ordered[head:index + 1]``, and ``decide`` is asked only
    where ``steady_check`` cannot prove that it would hold.  Every sum takes the same operations in the
    same order as in the plain replay (``decide`` on every record, tests/unit/test_backtest_fast_path.py),
    so the figures, hence the decisions, agree to the last bit.
    """
    if policy.mode != "auto":
        policy = _AutoMode(policy)
    ordered = sorted(samples, key=_by_time)
    current = (
        initial_replicas
        if initial_replicas is not None
        else round(ordered[0].desired_replicas)
        if ordered
        else 0
    )
    window_seconds = policy.window_seconds
    seconds = float(window_seconds)
    steady = steady_check(policy)
    rps_target = policy.target_rps_per_replica
    latency_target = policy.max_p95_latency_ms
    connections_target = policy.max_conn_per_replica
    cpu_target = policy.max_cpu_percent
    memory_target = policy.max_memory_percent

    # ordered[head:index + 1] are inside the window.  Each record's latency and cpu as served by the
    # simulated replicas are kept in two lists of floats, not a tuple per record: the garbage collector
    # runs once per 700 new tuples, and each run costs more as the fleet's records pile up.
    head = 0
    served_p95: list[float | None] = []
    served_cpu: list[float | None] = []
    # Weighted total and weight of each figure over the window; latency is weighted by requests.
    rps_total = rps_weight = p95_total = p95_weight = cpu_total = cpu_weight = 0.0
    memory_total = memory_weight = connections_total = connections_weight = 0.0
    replicas: list[int] = []  # desired after each record's decision
    readies: list[int] = []  # ready when the scaler decided at each record
    # decide()'s recommendation at the records it was asked about; at the others it was ``current``,
    # which is replicas[index] there (nothing changed).
    recommended: dict[int, int] = {}
    oldest_recommendation = 0  # records before it are older than the stabilisation window
    decisions: list[BacktestDecision] = []
    replica_seconds = 0.0
    under: dict[str, float] = {}
    under_seconds = 0.0
    last_reason = ""
    view: MetricWindow | None = None

    for index, sample in enumerate(ordered):
        now = sample.at
        weight = sample.resolution
        rps = sample.rps
        memory = sample.memory_percent
        connections = sample.active_connections
        # Recorded not-ready replicas (starting, failing) stay so; the policy's own are ready.
        recorded_ready = round(sample.ready_replicas)
        not_ready = round(sample.desired_replicas) - recorded_ready
        ready = current - not_ready if not_ready > 0 else current
        if ready < 0:
            ready = 0
        # The recorded figures as ``ready`` replicas would have served the same load (see MODEL).
        ratio = recorded_ready / ready if recorded_ready > 0 and ready > 0 else 1.0
        p95 = sample.p95_latency_ms
        if p95 is not None and ratio > 1.0:  # latency never improves
            p95 = p95 * ratio
        cpu = sample.cpu_percent
        if cpu is not None:
            cpu = cpu * ratio
        served_p95.append(p95)
        served_cpu.append(cpu)

        # The window takes this record in and lets out those that ended window_seconds ago or more.
        if rps is not None:
            rps_total += rps * weight
            rps_weight += weight
            if p95 is not None and rps > 0:
                p95_total += p95 * (rps * weight)
                p95_weight += rps * weight
        if cpu is not None:
            cpu_total += cpu * weight
            cpu_weight += weight
        if memory is not None:
            memory_total += memory * weight
            memory_weight += weight
        if connections is not None:
            connections_total += connections * weight
            connections_weight += weight
        cutoff = now - seconds
        while True:
            gone = ordered[head]
            if gone.at > cutoff:
                break
            gone_weight = gone.resolution
            gone_rps = gone.rps
            gone_p95 = served_p95[head]
            gone_cpu = served_cpu[head]
            gone_memory = gone.memory_percent
            gone_connections = gone.active_connections
            head += 1
            if gone_rps is not None:
                rps_total -= gone_rps * gone_weight
                rps_weight -= gone_weight
                if gone_p95 is not None and gone_rps > 0:
                    p95_total -= gone_p95 * (gone_rps * gone_weight)
                    p95_weight -= gone_rps * gone_weight
            if gone_cpu is not None:
                cpu_total -= gone_cpu * gone_weight
                cpu_weight -= gone_weight
            if gone_memory is not None:
                memory_total -= gone_memory * gone_weight
                memory_weight -= gone_weight
            if gone_connections is not None:
                connections_total -= gone_connections * gone_weight
                connections_weight -= gone_weight

        # Cost, and the figures over their targets with ``ready`` replicas serving this record.
        replica_seconds += current * weight
        per_replica = ready if ready > 1 else 1
        over = False
        if rps is not None and rps_target and rps / per_replica > rps_target:
            under["rps"] = under.get("rps", 0.0) + weight
            over = True
        if p95 is not None and latency_target and p95 > latency_target:
            under["latency"] = under.get("latency", 0.0) + weight
            over = True
        if connections is not None and connections_target and connections / per_replica > connections_target:
            under["connections"] = under.get("connections", 0.0) + weight
            over = True
        if cpu is not None and cpu_target and cpu > cpu_target:
            under["cpu"] = under.get("cpu", 0.0) + weight
            over = True
        if memory is not None and memory_target and memory > memory_target:
            under["memory"] = under.get("memory", 0.0) + weight
            over = True
        if ready == 0 and (rps or 0) > 0:
            under["no ready replica"] = under.get("no ready replica", 0.0) + weight
            over = True
        if over:
            under_seconds += weight

        # The window's means.  Removing what was added leaves float dust: a weight all but 0 is no data.
        mean_rps = rps_total / rps_weight if rps_weight > 1e-9 else None
        mean_p95 = p95_total / p95_weight if p95_weight > 1e-9 else None
        mean_connections = connections_total / connections_weight if connections_weight > 1e-9 else None
        mean_cpu = cpu_total / cpu_weight if cpu_weight > 1e-9 else None
        mean_memory = memory_total / memory_weight if memory_weight > 1e-9 else None
        oldest = ordered[head]
        covered = now - (oldest.at - oldest.resolution)
        if covered > seconds:
            covered = seconds
        if not covered > 0.0:
            covered = 0.0
        if steady(mean_rps, mean_p95, mean_connections, mean_cpu, mean_memory, covered, current, ready):
            # decide() would hold and recommend ``current`` here (held to it by a property test):
            # skipping it is what makes a week of 10 s records replay in well under a second.
            replicas.append(current)
            readies.append(ready)
            continue
        view = MetricWindow(
            mean_rps, None, mean_p95, None, None, mean_connections, mean_cpu, mean_memory,
            ready, index + 1 - head, covered,
        )  # fmt: skip
        horizon = now - window_seconds
        while ordered[oldest_recommendation].at < horizon:
            oldest_recommendation += 1
        recent = [
            (ordered[earlier].at, recommended.get(earlier, replicas[earlier]))
            for earlier in range(oldest_recommendation, index)
        ]
        decision = decide(policy, view, current, ready, now, last_scaled_at, recent)
        recommended[index] = decision.recommendation
        last_reason = decision.reason
        if decision.should_scale and decision.target != current:
            decisions.append(
                BacktestDecision(now, current, decision.target, decision.reason, decision.deciding_metric)
            )
            current = decision.target
            last_scaled_at = now
        replicas.append(current)
        readies.append(ready)

    if ordered and len(ordered) - 1 not in recommended:  # the last record took the short cut: ask why
        view = MetricWindow(
            mean_rps, None, mean_p95, None, None, mean_connections, mean_cpu, mean_memory,
            ready, len(ordered) - head, covered,
        )  # fmt: skip
        last_reason = decide(policy, view, current, ready, now, last_scaled_at).reason
    # tuple.__new__ builds each point in C: a ReplicaPoint(...) call per record costs more than the replay.
    points = list(
        map(tuple.__new__, repeat(ReplicaPoint), zip(map(_by_time, ordered), replicas, readies, strict=True))
    )
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
        peak_replicas=max(replicas, default=current),
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
