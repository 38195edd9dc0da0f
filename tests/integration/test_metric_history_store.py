"""The metric history table on SQLite and PostgreSQL: round trip, rollups that keep peaks, retention,
and leader-only (fenced) writes."""

from __future__ import annotations

import pytest

from core.history import DAY, MetricSample
from core.store import AppRecord, FencedOut, Store


def raw(app: str, at: float, rps: float, cpu: float = 20.0, desired: int = 2) -> MetricSample:
    return MetricSample.raw(
        app,
        at,
        5.0,
        rps=rps,
        p95_latency_ms=40.0,
        cpu_percent=cpu,
        memory_percent=None,
        active_connections=3.0,
        ready_replicas=desired,
        desired_replicas=desired,
    )


def test_samples_round_trip_oldest_first_and_per_app(store: Store) -> None:
    store.history.add(
        [raw("web", 1000.0 + 5 * i, rps=float(i)) for i in range(10)] + [raw("api", 1000.0, 1.0)]
    )
    got = store.history.range("web", since=1010.0, until=1030.0)
    assert [s.at for s in got] == [1010.0, 1015.0, 1020.0, 1025.0, 1030.0]
    assert got[0] == raw("web", 1010.0, rps=2.0)
    assert got[0].memory_percent is None  # not measured stays unknown, not 0
    assert store.history.count("api") == 1
    # Writing a period twice (a retried write) keeps one record, the last.
    store.history.add([raw("web", 1010.0, rps=99.0)])
    assert [s.rps for s in store.history.range("web", 1010.0, 1010.0)] == [99.0]


def test_rollups_keep_the_peak_and_the_mean(store: Store) -> None:
    now = 100 * DAY
    start = now - DAY - 3600  # an hour older than the raw tier keeps
    # One minute of 12 raw periods: flat 10 req/s with one 5 s spike at 130 req/s and 95 % CPU.
    samples = [raw("web", start + 5 * (i + 1), rps=10.0, cpu=20.0) for i in range(12)]
    samples[6] = raw("web", start + 35, rps=130.0, cpu=95.0, desired=4)
    store.history.add(samples)
    store.history.add([raw("web", now - 60, rps=1.0)])  # recent: stays raw

    done = store.history.compact(now, retention_seconds=30 * DAY)
    assert done.merged == 12 and done.written == 1 and done.expired == 0
    old, recent = store.history.range("web", since=0)
    assert (old.resolution, old.at, old.periods) == (60, start + 60, 12)
    assert old.rps_max == 130.0 and old.cpu_percent_max == 95.0 and old.desired_replicas_max == 4
    assert old.rps == pytest.approx((11 * 10.0 + 130.0) / 12)
    assert old.cpu_percent == pytest.approx((11 * 20.0 + 95.0) / 12)
    assert recent.resolution == 5.0 and recent.rps == 1.0

    # A week later the minute rolls into ten minutes, and the peak is still there.
    later = now + 7 * DAY
    store.history.compact(later, retention_seconds=30 * DAY)
    (coarse, recent) = store.history.range("web", since=0)
    assert coarse.resolution == 600 and coarse.rps_max == 130.0 and coarse.periods == 12
    assert recent.resolution == 600 and recent.rps == 1.0  # rolled through both tiers


def test_retention_deletes_old_rows_only(store: Store) -> None:
    now = 50 * DAY
    store.history.add([raw("web", now - 3 * DAY, 5.0), raw("web", now - 3600, 6.0)])
    done = store.history.compact(now, retention_seconds=2 * DAY)
    assert done.expired == 1
    assert [s.rps for s in store.history.range("web", since=0)] == [6.0]


def test_history_writes_are_fenced_by_the_leader_term(store: Store) -> None:
    lease = store.leases.try_acquire("node-a", "host-a", "http://127.0.0.1:8001", ttl=30.0)
    assert lease is not None
    term: list[int | None] = [lease.term]
    store.fence_writes(lambda: term[0], "node-a", margin=1.0)
    store.history.add([raw("web", 1000.0, 1.0)])
    term[0] = None  # this node learnt it no longer leads
    with pytest.raises(FencedOut):
        store.history.add([raw("web", 1005.0, 2.0)])
    with pytest.raises(FencedOut):
        store.history.compact(2000.0, retention_seconds=10.0)
    assert [s.at for s in store.history.range("web", since=0)] == [1000.0]


def test_deleting_an_app_deletes_its_history_only(store: Store) -> None:
    store.apps.create(
        AppRecord(
            name="web", spec={}, raw={}, spec_hash="h", status="stopped", mode="auto", desired_replicas=1
        )
    )
    store.history.add([raw("web", 1000.0, 1.0), raw("api", 1000.0, 2.0)])
    assert store.apps.delete("web")
    assert store.history.count("web") == 0 and store.history.count("api") == 1
