"""``holds_steady`` (the backtest's short cut) never disagrees with ``decide``."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from core.metrics.window import MetricWindow
from core.scaler import decide, holds_steady
from core.spec import ScalingPolicy
from tests.unit.test_scaler_properties import NOW, policies, windows


@st.composite
def near_the_band(draw: st.DrawFn) -> tuple[ScalingPolicy, MetricWindow, int, int]:
    """Inputs around the thresholds, where the short cut and decide() could disagree if ever."""
    policy = draw(policies())
    current = draw(st.integers(max(policy.min_replicas, 1), max(policy.max_replicas, 1)))
    ready = draw(st.sampled_from([current, current, current, max(current - 1, 0)]))
    per = max(ready, 1)

    # One load level for the app, each figure some share of it: all low, all mid or one high are common.
    level = draw(st.floats(0, 130))

    def figure(target: float, scale: int = 1) -> float | None:
        share = draw(st.none() | st.floats(0, 1))
        return None if share is None else level * share / 100 * target * scale

    window = MetricWindow(
        rps=figure(policy.target_rps_per_replica, per),
        p50_latency_ms=None,
        p95_latency_ms=figure(policy.max_p95_latency_ms),
        p99_latency_ms=None,
        error_rate=None,
        active_connections=figure(policy.max_conn_per_replica, per),
        cpu_percent=figure(policy.max_cpu_percent),
        memory_percent=figure(policy.max_memory_percent),
        ready_replicas=ready,
        samples=10,
        covered_seconds=draw(st.floats(0, 1.2)) * policy.window_seconds,
    )
    return policy, window, current, ready


@settings(max_examples=600, deadline=None)
@given(
    near_the_band() | st.tuples(policies(), windows(), st.integers(0, 40), st.integers(0, 40)),
    st.none() | st.floats(NOW - 1200, NOW),
    st.lists(st.tuples(st.floats(NOW - 1200, NOW), st.integers(0, 40)), max_size=5),
)
def test_when_it_says_steady_decide_holds_at_the_current_count(
    case: tuple[ScalingPolicy, MetricWindow, int, int],
    last_scaled_at: float | None,
    history: list[tuple[float, int]],
) -> None:
    policy, window, current, ready = case
    if holds_steady(policy, window, current, ready):
        decision = decide(policy, window, current, ready, NOW, last_scaled_at, history)
        assert not decision.should_scale and decision.target == current
        assert decision.recommendation == current, decision


def test_it_takes_the_short_cut_inside_the_band_and_not_outside() -> None:
    policy = ScalingPolicy(target_rps_per_replica=10, window_seconds=60)
    window = MetricWindow(
        rps=30.0, p50_latency_ms=None, p95_latency_ms=50.0, p99_latency_ms=None, error_rate=None,
        active_connections=3.0, cpu_percent=20.0, memory_percent=10.0, ready_replicas=5, samples=12,
        covered_seconds=60.0,
    )  # fmt: skip
    assert holds_steady(policy, window, 5, 5)  # 60 % of the rps target: inside 30-80 %
    assert not holds_steady(policy, replace(window, rps=45.0), 4, 4)  # 90 % below maxReplicas: scale out
    assert holds_steady(policy, replace(window, rps=50.0), 5, 5)  # 100 % at maxReplicas 5: nothing to do
    assert not holds_steady(policy, replace(window, rps=5.0, cpu_percent=1.0), 5, 5)  # all low: scale in
    assert holds_steady(policy, replace(window, rps=1.0, cpu_percent=1.0), 1, 1)  # low at minReplicas
    assert not holds_steady(policy, window, 5, 4)  # a replica not ready: decide() weighs it
    assert not holds_steady(policy, replace(window, covered_seconds=10.0), 5, 5)  # not enough data
