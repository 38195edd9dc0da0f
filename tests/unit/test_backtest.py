"""The backtest's model and summary on loads small enough to check by hand."""

from __future__ import annotations

import pytest

from core.backtest import MODEL, TRACES, backtest, synthetic_trace
from core.history import MetricSample
from core.spec import ScalingPolicy

PERIOD = 10.0
OFF = {"max_p95_latency_ms": 1e9, "max_conn_per_replica": 1e9, "max_memory_percent": 100}


def policy(**changes: object) -> ScalingPolicy:
    base = {"window_seconds": 30, "cooldown_seconds": 60, "max_replicas": 10, **OFF}
    return ScalingPolicy(**(base | changes))


def samples(
    rps: list[float], cpu: float | None = None, ready: int = 1, desired: int = 1
) -> list[MetricSample]:
    return [
        MetricSample.raw(
            "web",
            PERIOD * (i + 1),
            PERIOD,
            rps=value,
            p95_latency_ms=5.0,
            cpu_percent=cpu,
            memory_percent=None,
            active_connections=1.0,
            ready_replicas=ready,
            desired_replicas=desired,
        )
        for i, value in enumerate(rps)
    ]


def test_served_load_is_spread_over_the_simulated_replicas_so_it_settles() -> None:
    # 120 req/s with a target of 50 per replica and an 80 % threshold: ceil(120 / 40) = 3, then steady.
    result = backtest(samples([120.0] * 60), policy(target_rps_per_replica=50, max_cpu_percent=100))
    assert [(d.from_replicas, d.to_replicas) for d in result.decisions] == [(1, 3)]
    assert "rps" in result.decisions[0].reason and result.decisions[0].deciding_metric == "rps"
    assert result.replicas[-1].replicas == 3 and result.summary.peak_replicas == 3


def test_cpu_per_replica_falls_as_replicas_are_added() -> None:
    # One replica at 150 % of a core against a 50 % target is 300 %: ceil(300 / 80) = 4 replicas, at
    # which each runs 37.5 % (75 % of target): inside the band, so it stays at 4 instead of running away.
    result = backtest(samples([1.0] * 60, cpu=150.0), policy(target_rps_per_replica=1e6, max_cpu_percent=50))
    assert [(d.from_replicas, d.to_replicas) for d in result.decisions] == [(1, 4)]
    assert result.replicas[-1].replicas == 4


def test_summary_counts_cost_shortfall_peaks_and_flaps() -> None:
    # Busy (3 replicas' worth), quiet, busy again soon after the scale-in: a flap.
    load = [120.0] * 12 + [5.0] * 14 + [120.0] * 12
    result = backtest(
        samples(load), policy(target_rps_per_replica=50, cooldown_seconds=60, max_cpu_percent=100)
    )
    moves = [(d.from_replicas, d.to_replicas) for d in result.decisions]
    assert moves[0] == (1, 3) and (3, 2) in moves and moves[-1][1] > moves[-1][0]
    summary = result.summary
    assert summary.scale_events == len(moves) == summary.scale_outs + summary.scale_ins
    assert summary.flaps == 1 and summary.flap_horizon_seconds == 90
    assert summary.peak_replicas == 3
    # Every period counts the replicas that served it; 120 req/s on one replica is over target.
    assert summary.under_provisioned_minutes > 0 and set(summary.under_provisioned_by_metric) == {"rps"}
    assert summary.duration_seconds == len(load) * PERIOD
    assert result.model == MODEL and "served" in MODEL


def test_replica_minutes_are_the_replicas_that_served_each_period() -> None:
    result = backtest(
        samples([10.0] * 6, desired=2, ready=2), policy(target_rps_per_replica=50, min_replicas=2)
    )
    assert result.decisions == [] and result.summary.replica_minutes == 2.0  # 2 replicas × 60 s


def test_recorded_not_ready_replicas_are_never_counted_as_capacity() -> None:
    # 2 desired, 1 ready in the recording: the simulated run keeps one of its replicas not ready.
    result = backtest(
        samples([70.0] * 20, desired=2, ready=1), policy(target_rps_per_replica=50, min_replicas=2)
    )
    scaled_at = {d.at for d in result.decisions}
    steady = [p for p in result.replicas if p.at not in scaled_at]
    assert steady and all(p.ready == p.replicas - 1 for p in steady)
    # 70 req/s on the one ready replica is 140 % of target: ceil(1 × 140 / 80) = 2 are already desired,
    # so the production scaler waits for the starting one, and so does the backtest.
    assert result.decisions == [] and "still starting" in result.last_reason


def test_a_manual_policy_is_backtested_as_auto() -> None:
    result = backtest(
        samples([120.0] * 30), policy(mode="manual", target_rps_per_replica=50, max_cpu_percent=100)
    )
    assert result.decisions and result.decisions[0].to_replicas == 3


def test_no_history_gives_an_empty_answer() -> None:
    result = backtest([], policy())
    assert result.replicas == [] and result.summary.samples == 0 and result.summary.replica_minutes == 0


@pytest.mark.parametrize("kind", TRACES)
def test_every_synthetic_trace_makes_the_default_policy_scale_out_and_back(kind: str) -> None:
    default = ScalingPolicy()
    trace = synthetic_trace(kind, default, period=PERIOD)
    assert trace and all(s.resolution == PERIOD for s in trace)
    result = backtest(trace, default, initial_replicas=default.min_replicas)
    assert result.summary.scale_outs >= 1 and result.summary.scale_ins >= 1, result.summary
    assert result.replicas[-1].replicas < result.summary.peak_replicas


def test_an_unknown_trace_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="step, ramp, spike, sine"):
        synthetic_trace("saw", ScalingPolicy())
