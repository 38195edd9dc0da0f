"""Properties the scaler keeps for any load, policy and history."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from core.metrics.window import MetricWindow
from core.scaler import decide
from core.spec import ScalingPolicy

NOW = 100_000.0


def optional(strategy: st.SearchStrategy[float]) -> st.SearchStrategy[float | None]:
    return st.none() | strategy


@st.composite
def policies(draw: st.DrawFn) -> ScalingPolicy:
    low = draw(st.integers(0, 10))
    high = draw(st.integers(max(low, 1), 30))
    scale_in = draw(st.floats(1, 90))
    scale_out = draw(st.floats(scale_in + 1, 100))
    return ScalingPolicy(
        mode="auto",
        min_replicas=low,
        max_replicas=high,
        target_rps_per_replica=draw(st.floats(1, 1000)),
        max_p95_latency_ms=draw(st.floats(1, 5000)),
        max_conn_per_replica=draw(st.floats(1, 500)),
        max_cpu_percent=draw(st.floats(1, 100)),
        max_memory_percent=draw(st.floats(1, 100)),
        scale_out_threshold_pct=scale_out,
        scale_in_threshold_pct=scale_in,
        window_seconds=draw(st.integers(5, 600)),
        cooldown_seconds=draw(st.integers(0, 600)),
        max_scale_out_step=draw(st.none() | st.integers(1, 10)),
        scale_in_step=draw(st.integers(1, 5)),
    )


@st.composite
def windows(draw: st.DrawFn) -> MetricWindow:
    return MetricWindow(
        rps=draw(optional(st.floats(0, 50_000))),
        p50_latency_ms=None,
        p95_latency_ms=draw(optional(st.floats(0, 60_000))),
        p99_latency_ms=None,
        error_rate=None,
        active_connections=draw(optional(st.floats(0, 10_000))),
        cpu_percent=draw(optional(st.floats(0, 400))),
        memory_percent=draw(optional(st.floats(0, 100))),
        ready_replicas=0,
        samples=10,
        covered_seconds=draw(st.floats(0, 600)),
    )


@st.composite
def situations(draw: st.DrawFn) -> dict:
    current = draw(st.integers(0, 40))
    return dict(
        policy=draw(policies()),
        window=draw(windows()),
        current=current,
        ready=draw(st.integers(0, current)),
        now=NOW,
        last_scale_at=draw(st.none() | st.floats(NOW - 1000, NOW)),
        recent_recommendations=draw(
            st.lists(st.tuples(st.floats(NOW - 1000, NOW), st.integers(0, 40)), max_size=5)
        ),
    )


@settings(max_examples=200)
@given(situations())
def test_target_is_always_within_min_and_max(situation: dict) -> None:
    decision = decide(**situation)
    policy = situation["policy"]
    if decision.should_scale:
        assert policy.min_replicas <= decision.target <= policy.max_replicas
    else:
        assert decision.target == situation["current"]


@settings(max_examples=200)
@given(situations())
def test_never_scales_in_while_a_capacity_metric_is_above_the_out_threshold(situation: dict) -> None:
    decision = decide(**situation)
    policy, current = situation["policy"], situation["current"]
    if decision.should_scale and decision.target < current and current <= policy.max_replicas:
        for name in ("rps", "connections", "cpu"):
            assert decision.scale_factors.get(name, 0.0) <= policy.scale_out_threshold_pct + 0.05


@settings(max_examples=200)
@given(situations())
def test_never_acts_in_cooldown_except_to_enforce_min_and_max(situation: dict) -> None:
    policy, current = situation["policy"], situation["current"]
    last = situation["last_scale_at"]
    decision = decide(**situation)
    if last is not None and NOW < last + policy.cooldown_seconds and decision.should_scale:
        assert current < policy.min_replicas or current > policy.max_replicas
        assert decision.target in (policy.min_replicas, policy.max_replicas)


@settings(max_examples=200)
@given(situations(), st.floats(1.0, 20.0))
def test_more_load_never_gives_a_smaller_target(situation: dict, factor: float) -> None:
    w: MetricWindow = situation["window"]

    def scaled(value: float | None) -> float | None:
        return None if value is None else value * factor

    heavier = replace(
        w,
        rps=scaled(w.rps),
        p95_latency_ms=scaled(w.p95_latency_ms),
        active_connections=scaled(w.active_connections),
        cpu_percent=scaled(w.cpu_percent),
        memory_percent=scaled(w.memory_percent),
    )
    light = decide(**situation)
    heavy = decide(**{**situation, "window": heavier})
    assert heavy.target >= light.target


@settings(max_examples=200)
@given(situations(), st.sampled_from(["rps", "p95_latency_ms", "active_connections", "cpu_percent"]))
def test_more_load_on_one_metric_never_gives_a_smaller_target(situation: dict, metric: str) -> None:
    w: MetricWindow = situation["window"]
    value = getattr(w, metric)
    if value is None:
        return
    heavy = decide(**{**situation, "window": replace(w, **{metric: value * 3 + 1})})
    assert heavy.target >= decide(**situation).target


@given(situations())
def test_manual_mode_never_scales(situation: dict) -> None:
    situation["policy"] = situation["policy"].model_copy(update={"mode": "manual"})
    assert not decide(**situation).should_scale
