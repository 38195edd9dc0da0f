"""Scaler rules, one table row per rule a user relies on."""

from __future__ import annotations

import pytest

from core.metrics.window import MetricWindow
from core.scaler import Decision, decide
from core.spec import ScalingPolicy

POLICY = ScalingPolicy(max_replicas=10)
NOW = 10_000.0


def with_(**changes: object) -> ScalingPolicy:
    return ScalingPolicy(**{**POLICY.model_dump(), **changes})


def window(**values: float | None) -> MetricWindow:
    base = dict(
        rps=None,
        p50_latency_ms=None,
        p95_latency_ms=None,
        p99_latency_ms=None,
        error_rate=None,
        active_connections=None,
        cpu_percent=None,
        memory_percent=None,
        ready_replicas=0,
        samples=30,
        covered_seconds=60.0,
    )
    base.update(values)
    return MetricWindow(**base)  # type: ignore[arg-type]


def run(
    w: MetricWindow,
    current: int = 2,
    ready: int | None = None,
    policy: ScalingPolicy = POLICY,
    last_scale_at: float | None = None,
    recent: tuple[tuple[float, int], ...] = (),
) -> Decision:
    return decide(policy, w, current, current if ready is None else ready, NOW, last_scale_at, recent)


def test_rps_above_threshold_scales_out_proportionally() -> None:
    # 2 replicas at 70 req/s each = 140 % of the 50 req/s target; at 80 % each carries 40 → 140/40 = 3.5 → 4.
    decision = run(window(rps=140.0))
    assert decision.should_scale and decision.target == 4
    assert decision.deciding_metric == "rps"
    assert decision.scale_factors["rps"] == 140.0
    assert "rps 140.0% of target" in decision.reason and "80% threshold" in decision.reason
    assert decision.reason.startswith("scale out 2 → 4")


def test_largest_proposal_across_metrics_wins() -> None:
    decision = run(window(rps=90.0, cpu_percent=140.0))  # rps 90 % → 3, cpu 200 % → 5
    assert decision.target == 5 and decision.deciding_metric == "cpu"
    assert decision.scale_factors == {"rps": 90.0, "cpu": 200.0}


def test_latency_alone_can_push_out() -> None:
    decision = run(window(rps=20.0, p95_latency_ms=500.0))
    assert decision.should_scale and decision.target > 2 and decision.deciding_metric == "latency"


def test_memory_alone_can_push_out() -> None:
    decision = run(window(cpu_percent=5.0, memory_percent=90.0))
    assert decision.should_scale and decision.deciding_metric == "memory"


def test_between_thresholds_holds() -> None:
    decision = run(window(rps=50.0, cpu_percent=30.0))  # rps 50 %, cpu 43 %
    assert not decision.should_scale and decision.target == 2
    assert decision.reason.startswith("no change") and "between" in decision.reason


def test_all_low_scales_in_by_one_step() -> None:
    decision = run(window(rps=10.0, cpu_percent=5.0, active_connections=4.0), current=5)
    assert decision.should_scale and decision.target == 4
    assert decision.reason.startswith("scale in 5 → 4")
    assert decision.recommendation == 1  # raw proposal, before the step limit


def test_scale_in_step_can_be_larger() -> None:
    decision = run(window(rps=10.0), current=6, policy=with_(scale_in_step=3))
    assert decision.target == 3


def test_scale_in_needs_every_capacity_metric_low() -> None:
    decision = run(window(rps=10.0, cpu_percent=35.0), current=4)  # cpu 50 % of target
    assert not decision.should_scale


def test_high_latency_and_memory_do_not_block_scale_in() -> None:
    # Both below their out thresholds but above the in threshold: they may not keep idle replicas.
    decision = run(window(rps=5.0, cpu_percent=3.0, p95_latency_ms=150.0, memory_percent=50.0), current=4)
    assert decision.should_scale and decision.target == 3
    assert decision.deciding_metric in {"rps", "cpu"}


def test_scale_in_is_stabilised_by_recent_higher_recommendations() -> None:
    recent = ((NOW - 30, 5), (NOW - 120, 9))  # the 9 is older than the 60 s window and ignored
    decision = run(window(rps=10.0), current=5, recent=recent)
    assert not decision.should_scale
    assert "stabilised" in decision.reason and "was 5" in decision.reason
    decision = run(window(rps=10.0), current=5, recent=((NOW - 30, 4),))
    assert decision.should_scale and decision.target == 4


def test_scale_out_is_capped_by_max_replicas() -> None:
    decision = run(window(rps=1000.0), current=4, policy=with_(max_replicas=6))
    assert decision.target == 6 and "maxReplicas 6" in decision.reason


def test_scale_out_step_limit_defaults_to_max_of_four_and_current() -> None:
    assert run(window(rps=1000.0), current=2, policy=with_(max_replicas=100)).target == 6
    assert run(window(rps=10_000.0), current=10, policy=with_(max_replicas=100)).target == 20
    limited = with_(max_replicas=100, max_scale_out_step=1)
    decision = run(window(rps=1000.0), current=2, policy=limited)
    assert decision.target == 3 and "step limit" in decision.reason


def test_cooldown_blocks_action_and_says_how_long() -> None:
    decision = run(window(rps=500.0), last_scale_at=NOW - 138)
    assert not decision.should_scale and decision.in_cooldown
    assert decision.reason.startswith("in cooldown for 42 s more")
    assert decision.recommendation > 2  # still reported so the caller can keep its history
    after = run(window(rps=500.0), last_scale_at=NOW - 180)
    assert after.should_scale and not after.in_cooldown


def test_min_and_max_are_enforced_even_in_cooldown() -> None:
    decision = run(window(), current=0, policy=with_(min_replicas=2), last_scale_at=NOW - 1)
    assert decision.should_scale and decision.target == 2 and "minReplicas" in decision.reason
    decision = run(window(), current=12, last_scale_at=NOW - 1)
    assert decision.should_scale and decision.target == 10 and "maxReplicas" in decision.reason


def test_not_enough_data_when_less_than_half_the_window_is_covered() -> None:
    decision = run(window(rps=500.0, covered_seconds=20.0))
    assert not decision.should_scale
    assert decision.reason.startswith("not enough data") and "30 s" in decision.reason


def test_not_enough_data_when_no_metric_has_a_value() -> None:
    decision = run(window())
    assert not decision.should_scale and decision.reason.startswith("not enough data")


def test_manual_mode_never_scales() -> None:
    decision = run(window(rps=1000.0), policy=with_(mode="manual"))
    assert not decision.should_scale and decision.reason == "manual mode"


def test_utilisation_is_per_ready_replica_for_scale_out() -> None:
    # 4 replicas, only 2 ready carrying 100 req/s: 50 req/s each = 100 % → needs 3; 2 more are starting.
    decision = run(window(rps=100.0), current=4, ready=2)
    assert decision.scale_factors["rps"] == 100.0
    assert not decision.should_scale and "still starting" in decision.reason
    # With all 4 ready the same load is 25 req/s each: no scale-out.
    assert run(window(rps=100.0), current=4, ready=4).scale_factors["rps"] == 50.0


def test_not_ready_replicas_are_not_spare_capacity() -> None:
    # Idle, but 1 of 3 not ready: it counts as fully busy, so the average is above the in threshold.
    decision = run(window(rps=2.0, cpu_percent=1.0), current=3, ready=2)
    assert not decision.should_scale and "not ready" in decision.reason
    assert run(window(rps=2.0, cpu_percent=1.0), current=3, ready=3).should_scale


def test_no_ready_replicas_waits_for_health_checks() -> None:
    decision = run(window(rps=100.0), current=3, ready=0)
    assert not decision.should_scale and "no ready replicas" in decision.reason


def test_scale_in_stops_at_min_replicas() -> None:
    decision = run(window(rps=0.0, cpu_percent=0.0), current=2, policy=with_(min_replicas=2))
    assert not decision.should_scale and "minReplicas is 2" in decision.reason


@pytest.mark.parametrize("current", [1, 3, 7])
def test_scale_in_never_triggers_an_immediate_scale_out(current: int) -> None:
    # After scaling in to the recommendation, the same load must not exceed the out threshold.
    rps = 20.0 * current  # 40 % of target per replica
    decision = run(window(rps=rps / 2), current=current, policy=with_(scale_in_step=100))
    if decision.should_scale:
        after = run(window(rps=rps / 2), current=decision.target)
        assert after.target <= decision.target


def test_pressure_at_max_replicas_says_the_cap_not_starting_replicas() -> None:
    decision = run(window(rps=10_000.0), current=5, ready=5, policy=with_(max_replicas=5))
    assert not decision.should_scale and decision.reason.endswith("but maxReplicas is 5")
