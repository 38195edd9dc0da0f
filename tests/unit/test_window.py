"""Rolling windows: percentiles, rates, per-app isolation, bounded memory."""

from __future__ import annotations

import gc
from types import FunctionType

import pytest

from core.metrics.window import ReplicaSample, RollingMetrics, percentile

NOW = 1_700_000_000.0


def metrics() -> RollingMetrics:
    return RollingMetrics(retention_seconds=900, clock=lambda: NOW)


def test_percentiles_are_exact_on_known_latencies() -> None:
    m = metrics()
    for i in range(1, 101):  # 1..100 ms, spread over the last 50 s
        m.add_request("web", NOW - 50 + i / 2, 200, float(i))
    w = m.summary("web", 60)
    assert (w.p50_latency_ms, w.p95_latency_ms, w.p99_latency_ms) == (50.0, 95.0, 99.0)


def test_latencies_above_a_second_keep_ten_ms_precision() -> None:
    m = metrics()
    for ms in (1234.0, 2345.0, 3456.0):
        m.add_request("web", NOW - 1, 200, ms)
    assert m.summary("web", 60).p99_latency_ms == pytest.approx(3460.0)


def test_rps_and_error_rate_over_the_covered_part_of_the_window() -> None:
    m = metrics()
    m.mark_traffic_observed("web", NOW - 30)
    for i in range(300):  # 10 req/s for 30 s, every 10th a 502
        m.add_request("web", NOW - 30 + i / 10, 502 if i % 10 == 0 else 200, 5.0)
    w = m.summary("web", 60)
    assert w.rps == pytest.approx(10.0)
    assert w.error_rate == pytest.approx(0.1)
    assert w.covered_seconds == pytest.approx(30.0)
    # Over a window shorter than the data, the rate is over the window.
    assert m.summary("web", 10).rps == pytest.approx(10.0, rel=0.15)


def test_quiet_but_observed_app_has_zero_rps_and_no_latency() -> None:
    m = metrics()
    m.mark_traffic_observed("web", NOW - 40)
    m.mark_traffic_observed("web", NOW)
    w = m.summary("web", 60)
    assert w.rps == 0.0 and w.p95_latency_ms is None and w.error_rate is None


def test_no_traffic_source_means_rps_none() -> None:
    m = metrics()
    m.add_resource_sample("web", [ReplicaSample(1, True, 10.0, 5.0, 0)], NOW)
    assert m.summary("web", 60).rps is None


def test_apps_are_isolated() -> None:
    m = metrics()
    m.mark_traffic_observed("busy", NOW - 60)
    m.mark_traffic_observed("idle", NOW - 60)
    for i in range(600):
        m.add_request("busy", NOW - 60 + i / 10, 200, 100.0)
    assert m.summary("idle", 60).rps == 0.0
    assert m.summary("idle", 60).p95_latency_ms is None
    assert m.summary("busy", 60).rps == pytest.approx(10.0)
    assert m.summary("never-seen", 60).rps is None


def test_resource_means_use_ready_replicas_for_cpu_and_all_for_memory() -> None:
    m = metrics()
    for t in (NOW - 20, NOW - 10, NOW):
        m.add_resource_sample(
            "web",
            [
                ReplicaSample(1, True, 60.0, 10.0, 3),
                ReplicaSample(2, True, 20.0, 30.0, 5),
                ReplicaSample(3, False, 100.0, 50.0, 0),  # starting: its CPU must not count
            ],
            t,
        )
    w = m.summary("web", 60)
    assert w.cpu_percent == pytest.approx(40.0)
    assert w.memory_percent == pytest.approx(30.0)
    assert w.active_connections == pytest.approx(8.0)
    assert w.ready_replicas == 2 and w.samples == 3
    assert w.covered_seconds == pytest.approx(20.0)


def test_replica_attribution_and_summary() -> None:
    m = metrics()
    m.mark_traffic_observed("web", NOW - 10)
    for i in range(100):
        m.add_request("web", NOW - 10 + i / 10, 200, 30.0, slot=1 if i % 4 else 2, upstream_latency_ms=20.0)
    m.add_resource_sample(
        "web", [ReplicaSample(1, True, 55.0, 12.0, 4), ReplicaSample(2, True, 5.0, 11.0, 1)], NOW
    )
    replicas = m.replica_summary("web", 10)
    assert replicas[1].rps == pytest.approx(7.5) and replicas[2].rps == pytest.approx(2.5)
    assert replicas[1].p95_latency_ms == 20.0
    assert replicas[1].cpu_percent == 55.0 and replicas[2].connections == 1


def test_old_buckets_are_dropped_so_memory_stays_bounded() -> None:
    clock = [NOW]
    m = RollingMetrics(retention_seconds=60, clock=lambda: clock[0])
    for second in range(600):
        clock[0] = NOW + second
        m.add_request("web", clock[0], 200, 5.0, slot=1)
        m.add_resource_sample("web", [ReplicaSample(1, True, 1.0, 1.0, 0)])
        m.prune()
    assert m.bucket_count("web") <= 4 * 61
    # Without prune calls, growth is still capped.
    m2 = RollingMetrics(retention_seconds=60, clock=lambda: clock[0])
    for second in range(2000):
        clock[0] = NOW + second
        m2.add_request("web", clock[0], 200, 5.0)
    assert m2.bucket_count("web") <= 61 + 61


def test_requests_older_than_retention_are_ignored() -> None:
    m = RollingMetrics(retention_seconds=60, clock=lambda: NOW)
    m.add_request("web", NOW - 3600, 200, 5.0)
    assert m.bucket_count("web") == 0


def test_series_fill_quiet_seconds_with_zero_rps() -> None:
    m = metrics()
    m.mark_traffic_observed("web", NOW - 4)
    m.add_request("web", NOW - 2, 200, 7.0)
    m.add_request("web", NOW - 2, 200, 9.0)
    points = m.series("web", "rps", 60)
    assert points == [(NOW - 4, 0.0), (NOW - 3, 0.0), (NOW - 2, 2.0), (NOW - 1, 0.0), (NOW, 0.0)]
    assert m.series("web", "p95_latency_ms", 60) == [(NOW - 2, 9.0)]


def test_series_rejects_an_unknown_metric_by_name() -> None:
    with pytest.raises(ValueError, match="unknown metric 'rsp'"):
        metrics().series("web", "rsp", 60)


def test_forget_drops_an_app() -> None:
    m = metrics()
    m.add_request("web", NOW, 200, 1.0)
    m.forget("web")
    assert m.bucket_count("web") == 0 and m.summary("web", 60).rps is None


def test_percentile_of_empty_histogram_is_none() -> None:
    from collections import Counter

    assert percentile(Counter(), 0.95) is None


def test_a_late_second_is_read_in_time_order_and_pruned_with_its_neighbours() -> None:
    clock = [NOW]
    m = RollingMetrics(retention_seconds=60, clock=lambda: clock[0])
    for second in (0, 1, 3):
        m.add_request("web", NOW + second, 200, 5.0, slot=1, now=NOW + 3)
    m.add_request("web", NOW + 2, 500, 9.0, slot=1, now=NOW + 3)  # read late from the access log
    clock[0] = NOW + 3
    assert m.summary("web", 10).error_rate == 0.25
    assert [p[1] for p in m.series("web", "rps", 10)][:4] == [1.0, 1.0, 1.0, 1.0]
    clock[0] = NOW + 200
    m.prune()
    assert m.bucket_count("web") == 0


def test_replica_windows_keep_a_minute_while_the_app_keeps_its_retention() -> None:
    clock = [NOW]
    m = RollingMetrics(retention_seconds=900, clock=lambda: clock[0])
    for second in range(300):
        clock[0] = NOW + second
        m.add_request("web", clock[0], 200, 5.0, slot=1)
        m.add_resource_sample("web", [ReplicaSample(1, True, 1.0, 1.0, 0)])
        m.prune()
    assert len(m.series("web", "rps", 900)) >= 299  # the app's chart still covers five minutes
    assert m.bucket_count("web") <= 2 * 300 + 2 * 61
    latest = m.replica_summary("web", 10)[1]
    assert latest.rps is not None and 1.0 <= latest.rps <= 1.1 and latest.cpu_percent == 1.0


def tracked_objects_in(root: object) -> int:
    """How many objects reachable from ``root`` the garbage collector tracks (walks in a collection)."""
    seen, stack, tracked = {id(root)}, [root], 0
    while stack:
        item = stack.pop()
        tracked += gc.is_tracked(item)
        for child in gc.get_referents(item):
            # Not into classes or functions: the clock lambda would lead to the whole module.
            if id(child) not in seen and not isinstance(child, (type, FunctionType)):
                seen.add(id(child))
                stack.append(child)
    return tracked


def test_a_fleets_replica_readings_are_left_out_of_garbage_collections() -> None:
    """Every full collection walks what the collector tracks, with the event loop stopped: a minute of
    readings of every replica (30,000 at 1,000 replicas, every 2 s) must not be part of it."""
    clock = [NOW]
    m = RollingMetrics(retention_seconds=900, clock=lambda: clock[0])
    replicas = 50
    for second in range(0, 60, 2):
        clock[0] = NOW + second
        samples = [ReplicaSample(slot, True, 1.0 + second, 2.0, slot) for slot in range(replicas)]
        m.add_resource_sample("web", samples)
    gc.collect()
    assert tracked_objects_in(m) < 3 * replicas  # a window per replica, not an object per reading (30)
    latest = m.replica_summary("web", 10)[7]
    assert (latest.cpu_percent, latest.memory_percent, latest.connections) == (59.0, 2.0, 7)


def test_a_sample_of_a_fleet_adds_an_object_per_app_for_the_garbage_collector_not_per_replica() -> None:
    """Every object a sample keeps counts towards the next young collection, and those alive then
    towards the next full one (which stops the event loop for the whole heap): 1,000 replicas in 10
    apps must keep a few new objects per app and sample, not 1,000 readings."""
    clock = [NOW]
    m = RollingMetrics(retention_seconds=900, clock=lambda: clock[0])
    apps, replicas = 10, 100

    def sample() -> None:
        for app in range(apps):
            m.add_resource_sample(f"app{app}", [ReplicaSample(s, True, 5.0, 6.0, 1) for s in range(replicas)])

    sample()  # the apps' windows themselves are made once
    clock[0] += 2
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        sample()
        kept = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert kept <= 5 * apps
    latest = m.replica_summary("app3", 10)
    assert sorted(latest) == list(range(replicas))
    assert (latest[42].cpu_percent, latest[42].memory_percent, latest[42].connections) == (5.0, 6.0, 1)
    assert m.bucket_count("app3") == 2 + 2 * replicas  # two app seconds, two readings per replica


def test_an_apps_fifteen_minutes_of_resource_seconds_are_left_out_of_garbage_collections() -> None:
    """The scaler's and the charts' history of every app: 450 seconds of samples an app at one every 2 s,
    which every full collection (the event loop stopped meanwhile) would walk if the collector tracked
    them."""
    clock = [NOW]
    m = RollingMetrics(retention_seconds=900, clock=lambda: clock[0])
    for second in range(0, 900, 2):
        clock[0] = NOW + second
        m.add_resource_sample("web", [ReplicaSample(1, True, float(second % 7), 2.0, 3)])
    gc.collect()
    assert tracked_objects_in(m) < 50  # the windows themselves, not a bucket per second (450)
    window = m.summary("web", 60)
    assert window.samples == 31 and window.ready_replicas == 1 and window.active_connections == 3.0
    assert window.cpu_percent == pytest.approx(sum(s % 7 for s in range(838, 900, 2)) / 31)
    assert m.series("web", "ready_replicas", 10) == [(NOW + s, 1.0) for s in range(888, 900, 2)]


def test_replica_readings_taken_twice_in_one_second_keep_the_newest_of_each_replica() -> None:
    m = metrics()
    m.add_resource_sample("web", [ReplicaSample(1, True, 10.0, 1.0, 1), ReplicaSample(2, True, 20.0, 2.0, 2)])
    m.add_resource_sample("web", [ReplicaSample(2, True, 25.0, 2.5, 3)])
    latest = m.replica_summary("web", 10)
    assert (latest[1].cpu_percent, latest[2].cpu_percent, latest[2].connections) == (10.0, 25.0, 3)
    assert m.bucket_count("web") == 1 + 2
