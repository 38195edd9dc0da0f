"""The auto-scaling policy as a pure function: (policy, metric window, replicas, clock) → decision.

No I/O and no clock reads: the scaling loop passes ``now`` and keeps the history of recommendations.

How a decision is made (modelled on the Kubernetes HPA, pkg/controller/podautoscaler):

* **Utilisation** of each metric is its value as a percentage of the policy's target, per *ready*
  replica: rps per ready replica vs ``target_rps_per_replica``, p95 latency vs ``max_p95_latency_ms``,
  connections per ready replica vs ``max_conn_per_replica``, cpu vs ``max_cpu_percent``, memory vs
  ``max_memory_percent``.  A metric without a value, or without a target in the policy, is left out.
* **Scale out** when ANY utilisation exceeds ``scale_out_threshold_pct``.  The proposal per metric is
  the replica count at which its utilisation would sit exactly at the threshold,
  ``ceil(ready × utilisation / threshold)``: load carried by the ready replicas, spread so that each
  runs at the threshold.  Using *ready* (not current) replicas means replicas still starting are
  counted as capacity that will arrive, so a burst is not answered twice.  The largest proposal wins,
  capped by ``max_replicas`` and the step limit (``max_scale_out_step``, default Kubernetes'
  ``max(4, current)``).
* **Scale in** only when ALL of rps, connections and cpu are below ``scale_in_threshold_pct``.  Latency
  and memory push out but never block scale-in: a slow dependency or a cache that fills memory is not
  fixed by keeping idle replicas.  Not-ready replicas are never spare capacity: for the scale-in test
  they are assumed to run at 100 % of target.  The proposal is the count at which the busiest of
  rps/connections/cpu would sit at the scale-OUT threshold (so the result does not trigger a scale-out
  back), never below ``min_replicas``.  It is then stabilised: the highest recommendation over the last
  ``window_seconds`` wins, and at most ``scale_in_step`` replicas go at a time.
* Between the thresholds nothing changes (the tolerance band).
* ``min_replicas``/``max_replicas`` are enforced at once, even in cooldown.  Otherwise, within
  ``cooldown_seconds`` of the last scaling (manual or automatic) nothing happens.
* Without enough data (less than half the window covered, or no metric value at all) nothing happens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from core.metrics.window import MetricWindow

METRIC_LABELS = {
    "rps": "rps",
    "latency": "p95 latency",
    "connections": "connections",
    "cpu": "cpu",
    "memory": "memory",
}
# Metrics that must all be low before replicas are removed (see module docstring).
# Any valid policy takes a target just above zero (5e-324) and any figure (a simulated 1e308 req/s):
# the utilisation is capped where it already asks for more replicas than any policy allows (maxReplicas
# is at most 100), and so is a proposal, so each stays a finite number (ceil(inf) raised OverflowError).
MAX_UTILISATION = 1e9
MAX_PROPOSAL = 10**6
CAPACITY_METRICS = ("rps", "connections", "cpu")


class ScalingPolicyLike(Protocol):
    """The attributes of ``core.spec.ScalingPolicy`` the scaler reads."""

    @property
    def mode(self) -> str: ...
    @property
    def min_replicas(self) -> int: ...
    @property
    def max_replicas(self) -> int: ...
    @property
    def target_rps_per_replica(self) -> float | None: ...
    @property
    def max_p95_latency_ms(self) -> float | None: ...
    @property
    def max_conn_per_replica(self) -> float | None: ...
    @property
    def max_cpu_percent(self) -> float | None: ...
    @property
    def max_memory_percent(self) -> float | None: ...
    @property
    def scale_out_threshold_pct(self) -> float: ...
    @property
    def scale_in_threshold_pct(self) -> float: ...
    @property
    def window_seconds(self) -> float: ...
    @property
    def cooldown_seconds(self) -> float: ...
    @property
    def max_scale_out_step(self) -> int | None: ...
    @property
    def scale_in_step(self) -> int: ...


@dataclass(frozen=True)
class Decision:
    should_scale: bool
    current: int
    target: int
    reason: str  # a person can read it: metric, value, threshold, result
    deciding_metric: str | None
    scale_factors: dict[str, float] = field(default_factory=dict)  # utilisation, % of each target
    recommendation: int = 0  # raw recommendation before stabilisation/cooldown; the caller keeps a history
    in_cooldown: bool = False


@dataclass(frozen=True)
class _Metric:
    name: str
    value: float  # as measured (per replica for rps and connections)
    target: float
    utilisation: float  # % of target, over ready replicas
    unit: str

    def describe(self) -> str:
        return (
            f"{METRIC_LABELS[self.name]} {self.utilisation:.1f}% of target "
            f"({_number(self.value)}{self.unit} vs {_number(self.target)}{self.unit})"
        )


def _number(value: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) and value == int(value) else f"{value:.1f}"


def _metrics(policy: ScalingPolicyLike, window: MetricWindow, ready: int) -> list[_Metric]:
    per_replica = max(ready, 1)
    candidates: list[tuple[str, float | None, float | None, str]] = [
        (
            "rps",
            None if window.rps is None else window.rps / per_replica,
            policy.target_rps_per_replica,
            " req/s",
        ),
        ("latency", window.p95_latency_ms, policy.max_p95_latency_ms, " ms"),
        (
            "connections",
            None if window.active_connections is None else window.active_connections / per_replica,
            policy.max_conn_per_replica,
            "",
        ),
        ("cpu", window.cpu_percent, policy.max_cpu_percent, "%"),
        ("memory", window.memory_percent, policy.max_memory_percent, "%"),
    ]
    found = []
    for name, value, target, unit in candidates:
        if value is None or target is None or target <= 0 or math.isnan(value):
            continue  # NaN: a backtest's running sums of an infinite figure (inf - inf) say nothing
        utilisation = min(value / float(target) * 100.0, MAX_UTILISATION)
        found.append(_Metric(name, value, float(target), utilisation, unit))
    return found


def _hold(
    current: int, reason: str, factors: dict[str, float], recommendation: int | None = None
) -> Decision:
    return Decision(
        should_scale=False,
        current=current,
        target=current,
        reason=reason,
        deciding_metric=None,
        scale_factors=factors,
        recommendation=current if recommendation is None else recommendation,
    )


def decide(
    policy: ScalingPolicyLike,
    window: MetricWindow,
    current: int,
    ready: int,
    now: float,
    last_scale_at: float | None,
    recent_recommendations: Sequence[tuple[float, int]] = (),
) -> Decision:
    """What to do about one app now; see the module docstring for the rules."""
    ready = max(0, min(ready, current))
    metrics = _metrics(policy, window, ready)
    factors = {m.name: round(m.utilisation, 1) for m in metrics}

    if policy.mode == "manual":
        return _hold(current, "manual mode", factors)

    if current < policy.min_replicas:
        return Decision(
            True,
            current,
            policy.min_replicas,
            f"scale out {current} → {policy.min_replicas}: below minReplicas {policy.min_replicas}",
            "min_replicas",
            factors,
            policy.min_replicas,
        )
    if current > policy.max_replicas:
        return Decision(
            True,
            current,
            policy.max_replicas,
            f"scale in {current} → {policy.max_replicas}: above maxReplicas {policy.max_replicas}",
            "max_replicas",
            factors,
            policy.max_replicas,
        )

    needed_half = policy.window_seconds / 2
    if window.covered_seconds < needed_half:
        return _hold(
            current,
            f"not enough data: {window.covered_seconds:.0f} s of the {policy.window_seconds:.0f} s window "
            f"covered (need {needed_half:.0f} s)",
            factors,
        )
    if not metrics:
        return _hold(current, "not enough data: no metric with a target has a value yet", factors)
    if ready == 0:
        return _hold(current, f"no ready replicas (0 of {current}): waiting for health checks", factors)

    proposed, direction, decider, why = _propose(policy, metrics, current, ready)
    recommendation = min(proposed, policy.max_replicas)

    if last_scale_at is not None and now < last_scale_at + policy.cooldown_seconds:
        remaining = math.ceil(last_scale_at + policy.cooldown_seconds - now)
        would = (
            f"; would scale {direction} {current} → {recommendation}: {why}" if direction != "hold" else ""
        )
        decision = _hold(current, f"in cooldown for {remaining} s more{would}", factors, recommendation)
        return replace(decision, in_cooldown=True)

    if direction == "out":
        step = policy.max_scale_out_step if policy.max_scale_out_step is not None else max(4, current)
        target = min(recommendation, current + max(1, step), policy.max_replicas)
        if target <= current:
            if current >= policy.max_replicas:
                reason = f"no change: {why}, but maxReplicas is {policy.max_replicas}"
            else:
                reason = f"no change: {why}, but {current - ready} of {current} replicas are still starting"
            return _hold(current, reason, factors, recommendation)
        limited = " (step limit)" if target < recommendation else ""
        capped = f" (capped by maxReplicas {policy.max_replicas})" if proposed > policy.max_replicas else ""
        return Decision(
            True,
            current,
            target,
            f"scale out {current} → {target}{capped}{limited}: {why}",
            decider,
            factors,
            recommendation,
        )

    if direction == "in":
        horizon = now - policy.window_seconds
        recent = [count for at, count in recent_recommendations if at >= horizon]
        stabilised = max([recommendation, *recent])
        if stabilised >= current:
            reason = (
                f"no change: {why}, but scale-in is stabilised: the highest recommendation in the last "
                f"{policy.window_seconds:.0f} s was {stabilised}"
            )
            return _hold(current, reason, factors, recommendation)
        target = max(stabilised, current - max(1, policy.scale_in_step), policy.min_replicas)
        return Decision(
            True, current, target, f"scale in {current} → {target}: {why}", decider, factors, recommendation
        )

    return _hold(current, f"no change: {why}", factors, recommendation)


def _count(replicas: float) -> int:
    """Whole replicas for a fractional need (a hair over a whole number is that number)."""
    return math.ceil(min(replicas, MAX_PROPOSAL) - 1e-9)


def _propose(
    policy: ScalingPolicyLike, metrics: list[_Metric], current: int, ready: int
) -> tuple[int, str, str | None, str]:
    """(recommendation, "out" | "in" | "hold", deciding metric, why)."""
    out_pct = policy.scale_out_threshold_pct
    in_pct = policy.scale_in_threshold_pct

    over = [m for m in metrics if m.utilisation > out_pct]
    if over:
        proposals = {m.name: _count(ready * m.utilisation / out_pct) for m in over}
        decider = max(over, key=lambda m: (proposals[m.name], m.utilisation))
        # Not capped by maxReplicas here, so the reason can say the cap was hit.
        recommendation = max(proposals[decider.name], policy.min_replicas)
        return (
            recommendation,
            "out",
            decider.name,
            f"{decider.describe()} is above the {out_pct:g}% threshold",
        )

    capacity = [m for m in metrics if m.name in CAPACITY_METRICS]
    if not capacity:
        return current, "hold", None, "no rps, connections or cpu data to justify a scale-in"
    not_ready = current - ready
    # Not-ready replicas count as fully busy: scale-in must never treat them as spare capacity.
    adjusted = {m.name: (ready * m.utilisation + not_ready * 100.0) / current for m in capacity}
    busiest = max(capacity, key=lambda m: (adjusted[m.name], m.utilisation))
    if busiest.utilisation >= in_pct or adjusted[busiest.name] >= in_pct:
        if busiest.utilisation < in_pct:
            why = f"{current - ready} of {current} replicas are not ready, so none counts as spare capacity"
        else:
            why = f"{busiest.describe()} is between the {in_pct:g}% and {out_pct:g}% thresholds"
        return current, "hold", None, why

    needed = _count(current * adjusted[busiest.name] / out_pct)
    recommendation = min(max(needed, policy.min_replicas), current)
    low = ", ".join(f"{METRIC_LABELS[m.name]} {m.utilisation:.1f}%" for m in capacity)
    why = f"{low} of target, all below the {in_pct:g}% threshold"
    if recommendation >= current:
        return current, "hold", None, f"{why}, but minReplicas is {policy.min_replicas}"
    return recommendation, "in", busiest.name, why


def holds_steady(policy: ScalingPolicyLike, window: MetricWindow, current: int, ready: int) -> bool:
    """True only when ``decide`` would hold at ``current`` and recommend ``current`` whatever the clock,
    the cooldown and the recommendation history: auto mode, ``current`` within min/max, enough data,
    every replica ready, no utilisation above the scale-out threshold and the busiest of rps,
    connections and cpu at or above the scale-in threshold (or none of them measured); or pressing out
    at maxReplicas, or in at minReplicas.

    A replay (core/backtest.py) skips the full decision, with its reason text, where nothing can
    happen; tests/unit/test_scaler_shortcut.py holds this to ``decide``."""
    return steady_check(policy)(
        window.rps,
        window.p95_latency_ms,
        window.active_connections,
        window.cpu_percent,
        window.memory_percent,
        window.covered_seconds,
        current,
        ready,
    )


SteadyCheck = Callable[
    [float | None, float | None, float | None, float | None, float | None, float, int, int], bool
]


def steady_check(policy: ScalingPolicyLike) -> SteadyCheck:
    """``holds_steady`` with the policy read once: (rps, p95 latency, connections, cpu, memory,
    covered seconds, current, ready) → bool, for a replay that asks once per record."""
    auto = policy.mode == "auto"
    low, high = policy.min_replicas, policy.max_replicas
    half_window = policy.window_seconds / 2
    out_pct, in_pct = policy.scale_out_threshold_pct, policy.scale_in_threshold_pct
    targets = [
        None if target is None or target <= 0 else float(target)
        for target in (
            policy.target_rps_per_replica,
            policy.max_p95_latency_ms,
            policy.max_conn_per_replica,
            policy.max_cpu_percent,
            policy.max_memory_percent,
        )
    ]
    rps_target, latency_target, connections_target, cpu_target, memory_target = targets

    def check(
        rps: float | None,
        p95: float | None,
        connections: float | None,
        cpu: float | None,
        memory: float | None,
        covered: float,
        current: int,
        ready: int,
    ) -> bool:
        if not auto or ready != current or current <= 0 or not low <= current <= high:
            return False
        if covered < half_window:
            return False
        # The same arithmetic as _metrics, in the same order, so the comparisons agree to the last bit.
        # Written out metric by metric (no loop, no tuples): a replay asks once per record.  Above the
        # scale-out threshold decide() wants more; at maxReplicas it holds and recommends it.
        busiest: float | None = None  # the highest utilisation of rps, connections and cpu
        measured = False
        if rps is not None and rps_target is not None:
            utilisation = rps / ready / rps_target * 100.0
            if utilisation > out_pct:
                return current >= high
            busiest = utilisation
            measured = True
        if p95 is not None and latency_target is not None:
            if p95 / latency_target * 100.0 > out_pct:
                return current >= high
            measured = True
        if connections is not None and connections_target is not None:
            utilisation = connections / ready / connections_target * 100.0
            if utilisation > out_pct:
                return current >= high
            if busiest is None or utilisation > busiest:
                busiest = utilisation
            measured = True
        if cpu is not None and cpu_target is not None:
            utilisation = cpu / cpu_target * 100.0
            if utilisation > out_pct:
                return current >= high
            if busiest is None or utilisation > busiest:
                busiest = utilisation
            measured = True
        if memory is not None and memory_target is not None:
            if memory / memory_target * 100.0 > out_pct:
                return current >= high
            measured = True
        if not measured:
            return False
        # Below the scale-in threshold decide() wants fewer; at minReplicas it holds and recommends it.
        return busiest is None or busiest >= in_pct or current <= low

    return check
