"""Valid but extreme policies and figures give a finite decision, never an exception.

Found by tests/api/test_spec_fuzz.py's round trip: register took targetRPSPerReplica 5e-324 (any number
above zero is valid), and the scaler's proposal ceil(ready × utilisation / threshold) became
ceil(inf): OverflowError, a 500 from POST /apps/NAME/simulateMetrics and a scaler pass that raised; a
simulated {"rps": 1e308} did the same with the default policy, and a backtest of a 1e308 target too."""

from __future__ import annotations

import json

import pytest

from core.backtest import backtest, synthetic_trace
from core.metrics.window import MetricWindow
from core.scaler import decide
from core.spec import ScalingPolicy


def window(rps: float | None = None, p95: float | None = None, connections: float | None = None,
           cpu: float | None = None) -> MetricWindow:  # fmt: skip
    return MetricWindow(rps, None, p95, None, None, connections, cpu, None, 1, 10, 60.0)


@pytest.mark.parametrize(
    ("policy", "figures"),
    [
        ({"targetRPSPerReplica": 5e-324}, window(rps=1e6)),
        ({"maxP95LatencyMs": 5e-324}, window(p95=1e6)),
        ({"maxCPUPercent": 5e-324}, window(cpu=100.0)),
        ({"maxConnPerReplica": 5e-324}, window(connections=1e6)),
        ({}, window(rps=1e308)),
        ({"scaleOutThresholdPct": 1e-320, "scaleInThresholdPct": 5e-324}, window(rps=100.0)),
    ],
    ids=["rps target", "latency target", "cpu target", "connections target", "rps figure", "threshold"],
)
def test_an_extreme_policy_or_figure_scales_to_the_cap(
    policy: dict[str, float], figures: MetricWindow
) -> None:
    chosen = ScalingPolicy.model_validate({"mode": "auto", "maxReplicas": 7, **policy})
    decision = decide(chosen, figures, current=1, ready=1, now=1000.0, last_scale_at=None)
    assert decision.should_scale and decision.target == 5  # Kubernetes' step: at most max(4, 1) added
    json.dumps(decision.scale_factors, allow_nan=False)  # the API answers them as JSON


def test_a_backtest_of_a_huge_target_runs() -> None:
    policy = ScalingPolicy(mode="auto", target_rps_per_replica=1e308)
    result = backtest(synthetic_trace("spike", policy), policy)
    assert result.summary.peak_replicas >= 1
