"""Periods for the metric history: every request and resource sample lands in exactly one period."""

from __future__ import annotations

import pytest

from core.metrics.window import ReplicaSample, RollingMetrics

NOW = 1_700_000_000.0


def test_consecutive_periods_count_each_request_once_even_when_read_late() -> None:
    m = RollingMetrics(retention_seconds=900)
    m.mark_traffic_observed("web", NOW)
    assert m.take_period("web", NOW).samples == 0  # the first call starts the first period
    for i in range(50):
        m.add_request("web", NOW + i / 10, 200, float(i % 10 + 1), now=NOW + 5)
    first = m.take_period("web", NOW + 5)
    # Read from the log after the cut, but logged before it: it belongs to the next period, not lost.
    m.add_request("web", NOW + 4.9, 200, 100.0, now=NOW + 6)
    for _ in range(9):
        m.add_request("web", NOW + 7, 200, 100.0, now=NOW + 7)
    second = m.take_period("web", NOW + 10)
    assert first.rps == pytest.approx(50 / 5) and second.rps == pytest.approx(10 / 5)
    assert first.p95_latency_ms == 10.0 and second.p95_latency_ms == 100.0
    quiet = m.take_period("web", NOW + 15)
    assert quiet.rps == 0.0 and quiet.p95_latency_ms is None


def test_resource_samples_are_averaged_per_period_and_apps_are_apart() -> None:
    m = RollingMetrics(retention_seconds=900)
    m.take_period("web", NOW)
    for t, cpu in ((NOW + 1, 20.0), (NOW + 2, 40.0)):
        m.add_resource_sample(
            "web", [ReplicaSample(1, True, cpu, 10.0, 3), ReplicaSample(2, False, None, 30.0, 1)], now=t
        )
    m.add_resource_sample("api", [ReplicaSample(1, True, 90.0, 90.0, 9)], now=NOW + 2)
    period = m.take_period("web", NOW + 2)
    assert period.cpu_percent == pytest.approx(30.0) and period.memory_percent == pytest.approx(20.0)
    assert period.active_connections == pytest.approx(4.0) and period.ready_replicas == 1
    assert period.rps is None  # no traffic source read for this app yet: unknown, not 0
    assert m.take_period("web", NOW + 4).cpu_percent is None
