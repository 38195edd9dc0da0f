"""Rolling metric windows per app and per replica, in 1 s buckets, bounded by a retention period.

Traffic (requests, 5xx, latencies) is bucketed by the second the request was logged; resource samples
(CPU, memory, connections) by the second they were taken.  Buckets older than ``retention_seconds`` are
dropped, so memory stays bounded however long the process runs.  Latencies are kept per bucket as a
histogram at millisecond resolution (coarser above 1 s), which makes p50/p95/p99 exact to the
millisecond for the latencies nginx logs, without storing one number per request.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

DEFAULT_RETENTION_SECONDS = 15 * 60
# Per-replica windows answer "latest" figures (10 s, at most a minute): keeping them for the apps'
# 15 minutes cost ~450 buckets per replica (hundreds of MB at 10,000 replicas) and a prune over them all.
REPLICA_RETENTION_SECONDS = 60

# Metric names accepted by ``series``.
TRAFFIC_SERIES = ("rps", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "error_rate")
RESOURCE_SERIES = ("cpu_percent", "memory_percent", "active_connections", "ready_replicas")

B = TypeVar("B")


@dataclass(frozen=True)
class MetricWindow:
    """What one app did over the last ``seconds``; the scaler's only input about load."""

    rps: float | None  # requests/s of this app (None when no traffic data source yet)
    p50_latency_ms: float | None  # None when no requests in the window
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    error_rate: float | None  # fraction of answers that were 5xx
    active_connections: float | None  # in-flight connections to all the app's replicas, mean over window
    cpu_percent: float | None  # mean over ready replicas; % of the CPU limit when set, else of one core
    memory_percent: float | None  # mean over replicas, % of the memory limit (None without a limit)
    ready_replicas: int
    samples: int  # resource samples in the window
    covered_seconds: float  # how much of the window has data

    @classmethod
    def empty(cls) -> MetricWindow:
        return cls(None, None, None, None, None, None, None, None, 0, 0, 0.0)


@dataclass(frozen=True)
class ReplicaMetrics:
    slot: int
    rps: float | None
    p95_latency_ms: float | None
    cpu_percent: float | None
    memory_percent: float | None
    connections: int | None


class ReplicaSample(NamedTuple):
    """One replica's resource reading at one sampling instant (a named tuple: one per replica per
    sample, see ContainerStats)."""

    slot: int
    ready: bool
    cpu_percent: float | None
    memory_percent: float | None
    connections: int | None


# One answered request as ``RollingMetrics.add_requests`` takes it: (timestamp, status, latency_ms,
# slot, upstream_latency_ms).
Request = tuple[float, int, float | None, int | None, float | None]


def latency_key(ms: float) -> float:
    """Histogram key for a latency: exact ms below 1 s, 10 ms steps below 10 s, 100 ms above.

    Bounds the number of distinct keys per bucket (≈ 3000) while nginx itself only logs whole ms.
    """
    if ms < 1000:
        return float(round(ms))
    if ms < 10_000:
        return float(round(ms, -1))
    return float(round(ms, -2))


def percentile(histogram: Counter[float], fraction: float) -> float | None:
    """Nearest-rank percentile of a {value: count} histogram; None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)  # unreachable; keeps type checkers content


@dataclass
class TrafficBucket:
    requests: int = 0
    errors: int = 0  # 5xx
    latencies: Counter[float] = field(default_factory=Counter)

    def add(self, status: int, latency_ms: float | None) -> None:
        self.add_keyed(status >= 500, None if latency_ms is None else latency_key(latency_ms))

    def add_keyed(self, error: bool, key: float | None) -> None:
        """One request whose latency's ``latency_key`` is worked out already (one key for every bucket
        the request counts in)."""
        self.requests += 1
        if error:
            self.errors += 1
        if key is not None:
            self.latencies[key] += 1


@dataclass
class AppResourceBucket:
    """Aggregates of the resource samples that fell into one second (usually one sample)."""

    samples: int = 0
    cpu_sum: float = 0.0
    cpu_samples: int = 0
    memory_sum: float = 0.0
    memory_samples: int = 0
    connections_sum: float = 0.0
    connections_samples: int = 0
    ready_last: int = 0


# One second of an app's resource samples in its window: AppResourceBucket's fields in its order,
# (samples, cpu_sum, cpu_samples, memory_sum, memory_samples, connections_sum, connections_samples,
# ready_last).  A tuple of numbers, which the garbage collector stops tracking once it has seen it: an
# object per app and sample kept for 15 minutes (45,000 at 100 apps) was walked by every full
# collection, and each one still young at a collection moved the next full one closer.
AppResources = tuple[int, float, int, float, int, float, int, int]
NO_APP_RESOURCES: AppResources = (0, 0.0, 0, 0.0, 0, 0.0, 0, 0)

# One replica's resource reading: (cpu_percent, memory_percent, connections), as ``replica_summary``
# answers it.
ReplicaResources = tuple[float | None, float | None, int | None]
NO_RESOURCES: ReplicaResources = (None, None, None)

# Every replica's reading of one app at one sampling instant, flat: (slot, cpu_percent, memory_percent,
# connections) for each replica in turn.  One tuple per app and second rather than one per replica and
# second, in one window per app rather than one per replica: a sample of 1,000 replicas in 100 apps
# stores and prunes 100 buckets, not 1,000, and allocates 100 objects the garbage collector counts, not
# 1,000 (each of which, alive at a young collection, moved the next full one closer).  A tuple of
# numbers is left out of collections once the collector has seen it, so a minute of readings is not
# walked by every full collection either.
AppReadings = tuple[float | int | None, ...]
READING_WIDTH = 4


def _merge_readings(older: AppReadings, newer: AppReadings) -> AppReadings:
    """Two samples in the same second: each replica's newer reading wins, the others stay."""
    replaced = set(newer[::READING_WIDTH])
    kept: list[float | int | None] = []
    for index in range(0, len(older), READING_WIDTH):
        if older[index] not in replaced:
            kept += older[index : index + READING_WIDTH]
    return (*kept, *newer)


class SecondBuckets(Generic[B]):
    """A dict of per-second buckets that drops seconds older than the retention period.  Buckets are
    made by ``factory`` and filled in place (``bucket``), or set whole (``put``: immutable values)."""

    def __init__(self, retention_seconds: float, factory: Callable[[], B] | None = None) -> None:
        self._retention = retention_seconds
        self._factory = factory
        self._buckets: dict[int, B] = {}
        self._latest = 0  # the newest second that ever had a bucket (pruning only drops old ones)

    def bucket(self, timestamp: float, now: float) -> B | None:
        """The bucket for ``timestamp``, created if needed; None when it is older than retention."""
        second = int(timestamp)
        if second < now - self._retention:
            return None
        found = self._buckets.get(second)
        if found is None:
            assert self._factory is not None, "buckets set whole are written with put"
            found = self._factory()
            self._keep(second, found, now)
        return found

    def put(self, timestamp: float, now: float, value: B) -> None:
        """``value`` is the bucket of ``timestamp``'s second (dropped when older than retention)."""
        second = int(timestamp)
        if second >= now - self._retention:
            self._keep(second, value, now)

    def _keep(self, second: int, value: B, now: float) -> None:
        new = second not in self._buckets
        self._buckets[second] = value
        self._latest = max(self._latest, second)
        # Keys are unique seconds inside [now - retention, now], so this stays bounded; pruning on
        # growth keeps it so even when nobody calls ``prune``.
        if new and len(self._buckets) > self._retention + 60:
            self.prune(now)

    def prune(self, now: float) -> None:
        cutoff = now - self._retention
        buckets = self._buckets
        # Seconds arrive nearly in order, so the dict's insertion order is nearly time order: drop from
        # its front until a second inside the retention (a straggler inserted late goes when it reaches
        # the front).  Each prune costs what it drops, not the whole retention.
        while buckets:
            oldest = next(iter(buckets))
            if oldest >= cutoff:
                break
            del buckets[oldest]

    def since(self, start: float) -> list[tuple[int, B]]:
        """Buckets whose second is at or after ``start``, oldest first."""
        first = math.floor(start)
        buckets = self._buckets
        if not buckets:
            return []
        # A short window over a long retention (the 10 s figures of every replica, read for every
        # /apps answer): look its seconds up instead of filtering and sorting the whole retention.
        latest = max(first, self._latest)
        if latest - first < len(buckets):
            return [(s, buckets[s]) for s in range(first, latest + 1) if s in buckets]
        return sorted((s, b) for s, b in buckets.items() if s >= first)

    def values(self) -> list[B]:
        return list(self._buckets.values())

    def at(self, second: int) -> B | None:
        """The bucket of exactly ``second``, if there is one."""
        return self._buckets.get(second)

    def earliest(self, start: float) -> int | None:
        seconds = [s for s in self._buckets if s >= math.floor(start)]
        return min(seconds) if seconds else None

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class PeriodAccumulator:
    """Everything measured for one app since the last ``RollingMetrics.take_period``: each request and
    resource sample counted exactly once, whenever it arrived, so consecutive periods neither overlap
    nor miss what was read late from the access log."""

    since: float
    traffic: TrafficBucket = field(default_factory=TrafficBucket)
    resources: AppResourceBucket = field(default_factory=AppResourceBucket)


@dataclass
class AppSeries:
    traffic: SecondBuckets[TrafficBucket]
    resources: SecondBuckets[AppResources]
    replica_readings: SecondBuckets[AppReadings]  # every replica's readings, one tuple a second
    replica_traffic: dict[int, SecondBuckets[TrafficBucket]] = field(default_factory=dict)
    # Every slot ever sampled (as the per-replica windows' keys were): with traffic observed, each one
    # is answered by ``replica_summary``, at 0 rps when it had none.
    replica_slots: set[int] = field(default_factory=set)


class RollingMetrics:
    """All apps' windows.  Not thread-safe: owned by the collector on the event loop."""

    def __init__(
        self, retention_seconds: float = DEFAULT_RETENTION_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self.retention_seconds = retention_seconds
        self._replica_retention = min(retention_seconds, REPLICA_RETENTION_SECONDS)
        self._clock = clock
        self._apps: dict[str, AppSeries] = {}
        self._periods: dict[str, PeriodAccumulator] = {}

    # -- writing -------------------------------------------------------------------------------------

    def _app(self, app: str) -> AppSeries:
        series = self._apps.get(app)
        if series is None:
            series = AppSeries(
                traffic=SecondBuckets(self.retention_seconds, TrafficBucket),
                resources=SecondBuckets(self.retention_seconds),
                replica_readings=SecondBuckets(self._replica_retention),
            )
            self._apps[app] = series
        return series

    def mark_traffic_observed(self, app: str, now: float | None = None) -> None:
        """Record that the traffic source was read at ``now``: a second with zero requests is data."""
        now = self._now(now)
        self._app(app).traffic.bucket(now, now)

    def add_request(
        self,
        app: str,
        timestamp: float,
        status: int,
        latency_ms: float | None,
        slot: int | None = None,
        upstream_latency_ms: float | None = None,
        now: float | None = None,
    ) -> None:
        """One answered request of ``app``; ``slot`` is the replica that answered, when known."""
        self.add_requests(app, ((timestamp, status, latency_ms, slot, upstream_latency_ms),), now)

    def add_requests(self, app: str, requests: Iterable[Request], now: float | None = None) -> None:
        """Answered requests of ``app``, as ``add_request`` takes each one.  A batch from one read of
        the access log: one lookup of the app's series and of each second's buckets, not one per
        request (three bucket additions per request were half the controller's cost per request)."""
        now = self._now(now)
        series = self._app(app)
        period = self._period(app, now).traffic
        buckets = series.traffic
        replica_series = series.replica_traffic
        second = None
        bucket: TrafficBucket | None = None
        replica_buckets: dict[int, TrafficBucket | None] = {}  # of ``second``
        for timestamp, status, latency_ms, slot, upstream_latency_ms in requests:
            if int(timestamp) != second:
                second = int(timestamp)
                bucket = buckets.bucket(timestamp, now)
                replica_buckets = {}
            if bucket is None:
                continue  # older than the window
            error = status >= 500
            key = None if latency_ms is None else latency_key(latency_ms)
            bucket.add_keyed(error, key)
            period.add_keyed(error, key)
            if slot is None:
                continue
            if slot in replica_buckets:
                replica_bucket = replica_buckets[slot]
            else:
                replica = replica_series.get(slot)
                if replica is None:
                    replica = SecondBuckets(self._replica_retention, TrafficBucket)
                    replica_series[slot] = replica
                replica_bucket = replica_buckets[slot] = replica.bucket(timestamp, now)
            if replica_bucket is not None:
                replica_bucket.add(
                    status, upstream_latency_ms if upstream_latency_ms is not None else latency_ms
                )

    def add_resource_sample(
        self, app: str, samples: Iterable[ReplicaSample], now: float | None = None
    ) -> None:
        """One sampling instant of every replica of ``app``."""
        now = self._now(now)
        series = self._app(app)
        # One pass over the replicas (this runs for every replica every sample): the app's sums and
        # each replica's reading together, added in the replicas' order as the lists before were.
        ready = 0
        cpu_sum = memory_sum = 0.0
        cpu_count = memory_count = connections_count = 0
        connections_sum = 0
        readings: list[float | int | None] = []
        for slot, is_ready, cpu, memory, connections in samples:
            if is_ready:
                ready += 1
                if cpu is not None:
                    cpu_sum += cpu
                    cpu_count += 1
            if memory is not None:
                memory_sum += memory
                memory_count += 1
            if connections is not None:
                connections_sum += connections
                connections_count += 1
            readings += (slot, cpu, memory, connections)
        flat = tuple(readings)
        series.replica_slots.update(flat[::READING_WIDTH])
        second = int(now)
        earlier = series.replica_readings.at(second)
        series.replica_readings.put(now, now, flat if earlier is None else _merge_readings(earlier, flat))
        cpu = cpu_sum / cpu_count if cpu_count else None
        memory = memory_sum / memory_count if memory_count else None
        connections = connections_sum if connections_count else None
        samples_in, cpu_total, cpu_n, memory_total, memory_n, connections_total, connections_n, _ = (
            series.resources.at(second) or NO_APP_RESOURCES
        )
        series.resources.put(
            now,
            now,
            (
                samples_in + 1,
                cpu_total + cpu if cpu is not None else cpu_total,
                cpu_n + 1 if cpu is not None else cpu_n,
                memory_total + memory if memory is not None else memory_total,
                memory_n + 1 if memory is not None else memory_n,
                connections_total + connections if connections is not None else connections_total,
                connections_n + 1 if connections is not None else connections_n,
                ready,
            ),
        )
        period = self._period(app, now).resources
        period.samples += 1
        period.ready_last = ready
        if cpu is not None:
            period.cpu_sum += cpu
            period.cpu_samples += 1
        if memory is not None:
            period.memory_sum += memory
            period.memory_samples += 1
        if connections is not None:
            period.connections_sum += connections
            period.connections_samples += 1

    def _period(self, app: str, now: float) -> PeriodAccumulator:
        period = self._periods.get(app)
        if period is None:
            period = self._periods[app] = PeriodAccumulator(since=now)
        return period

    def take_period(self, app: str, now: float | None = None) -> MetricWindow:
        """What was measured for ``app`` since the last call (or since its first measurement), and start
        a new period.  rps is over the time since the last call; the rest as in ``summary``."""
        now = self._now(now)
        period = self._periods.pop(app, None)
        self._periods[app] = PeriodAccumulator(since=now)
        if period is None:
            return MetricWindow.empty()
        elapsed = max(now - period.since, 1e-3)
        traffic, res = period.traffic, period.resources
        latencies = traffic.latencies
        return MetricWindow(
            rps=traffic.requests / elapsed if app in self._apps and self._apps[app].traffic else None,
            p50_latency_ms=percentile(latencies, 0.50),
            p95_latency_ms=percentile(latencies, 0.95),
            p99_latency_ms=percentile(latencies, 0.99),
            error_rate=traffic.errors / traffic.requests if traffic.requests else None,
            active_connections=res.connections_sum / res.connections_samples
            if res.connections_samples
            else None,
            cpu_percent=res.cpu_sum / res.cpu_samples if res.cpu_samples else None,
            memory_percent=res.memory_sum / res.memory_samples if res.memory_samples else None,
            ready_replicas=res.ready_last,
            samples=res.samples,
            covered_seconds=elapsed,
        )

    def forget(self, app: str) -> None:
        self._apps.pop(app, None)
        self._periods.pop(app, None)

    def prune(self, now: float | None = None) -> None:
        now = self._now(now)
        for series in self._apps.values():
            series.traffic.prune(now)
            series.resources.prune(now)
            series.replica_readings.prune(now)
            for buckets in series.replica_traffic.values():
                buckets.prune(now)

    def apps(self) -> list[str]:
        return sorted(self._apps)

    def bucket_count(self, app: str) -> int:
        """Total buckets held for ``app`` (for tests of bounded memory)."""
        series = self._apps.get(app)
        if series is None:
            return 0
        return (
            len(series.traffic)
            + len(series.resources)
            + sum(len(b) for b in series.replica_traffic.values())
            # A reading per replica and second, as when each replica had a window of its own.
            + sum(len(flat) // READING_WIDTH for flat in series.replica_readings.values())
        )

    # -- reading -------------------------------------------------------------------------------------

    def summary(self, app: str, seconds: float, now: float | None = None) -> MetricWindow:
        now = self._now(now)
        series = self._apps.get(app)
        if series is None:
            return MetricWindow.empty()
        start = now - seconds
        traffic = series.traffic.since(start)
        resources = series.resources.since(start)

        # The first second of each ``since`` answer is its earliest (oldest first): no second scan of
        # the whole 15-minute retention per window (the scaler asks for every app every 5 s).
        earliest = [buckets[0][0] for buckets in (traffic, resources) if buckets]
        covered = min(seconds, max(0.0, now - min(earliest))) if earliest else 0.0

        rps = p50 = p95 = p99 = error_rate = None
        if traffic:
            traffic_covered = min(seconds, max(1.0, now - traffic[0][0]))
            requests = sum(b.requests for _, b in traffic)
            rps = requests / traffic_covered
            if requests:
                error_rate = sum(b.errors for _, b in traffic) / requests
                merged: Counter[float] = Counter()
                for _, bucket in traffic:
                    merged.update(bucket.latencies)
                p50, p95, p99 = (percentile(merged, f) for f in (0.50, 0.95, 0.99))

        cpu = memory = connections = None
        # One pass over the window's buckets, not seven; the same sums, added in the same order.
        samples = cpu_samples = memory_samples = connection_samples = 0
        cpu_total = memory_total = connections_total = 0
        for _, bucket in resources:
            b_samples, b_cpu, b_cpu_n, b_memory, b_memory_n, b_connections, b_connections_n, _ = bucket
            samples += b_samples
            cpu_samples += b_cpu_n
            cpu_total += b_cpu
            memory_samples += b_memory_n
            memory_total += b_memory
            connection_samples += b_connections_n
            connections_total += b_connections
        if cpu_samples:
            cpu = cpu_total / cpu_samples
        if memory_samples:
            memory = memory_total / memory_samples
        if connection_samples:
            connections = connections_total / connection_samples
        ready = resources[-1][1][-1] if resources else 0  # the latest second's ready_last

        return MetricWindow(
            rps=rps,
            p50_latency_ms=p50,
            p95_latency_ms=p95,
            p99_latency_ms=p99,
            error_rate=error_rate,
            active_connections=connections,
            cpu_percent=cpu,
            memory_percent=memory,
            ready_replicas=ready,
            samples=samples,
            covered_seconds=covered,
        )

    def replica_summary(
        self, app: str, seconds: float, now: float | None = None
    ) -> dict[int, ReplicaMetrics]:
        """Per replica: rps and p95 over the window (at most REPLICA_RETENTION_SECONDS), resources from
        the latest sample in it."""
        now = self._now(now)
        seconds = min(seconds, self._replica_retention)
        series = self._apps.get(app)
        if series is None:
            return {}
        start = now - seconds
        app_traffic = series.traffic.since(start)
        traffic_covered = min(seconds, max(1.0, now - app_traffic[0][0])) if app_traffic else None
        # Each replica's latest reading in the window: newer seconds overwrite older ones.
        latest: dict[int, ReplicaResources] = {}
        for _, flat in series.replica_readings.since(start):
            for index in range(0, len(flat), READING_WIDTH):
                latest[flat[index]] = flat[index + 1 : index + READING_WIDTH]  # type: ignore[index, assignment]
        result: dict[int, ReplicaMetrics] = {}
        for slot in sorted(set(series.replica_traffic) | series.replica_slots):
            rps = p95 = None
            buckets = series.replica_traffic.get(slot)
            traffic = buckets.since(start) if buckets is not None else []
            if traffic_covered is not None:
                rps = sum(b.requests for _, b in traffic) / traffic_covered
            if traffic:
                merged: Counter[float] = Counter()
                for _, bucket in traffic:
                    merged.update(bucket.latencies)
                p95 = percentile(merged, 0.95)
            reading = latest.get(slot)
            if rps is None and p95 is None and reading is None:
                continue
            cpu, memory, connections = NO_RESOURCES if reading is None else reading
            result[slot] = ReplicaMetrics(
                slot=slot,
                rps=rps,
                p95_latency_ms=p95,
                cpu_percent=cpu,
                memory_percent=memory,
                connections=connections,
            )
        return result

    def series(
        self, app: str, metric: str, seconds: float, now: float | None = None
    ) -> list[tuple[float, float]]:
        """(epoch second, value) points for a chart, oldest first.

        ``rps`` is per second with seconds of observed silence as 0; latency and error rate only where
        there were requests; resource metrics once per sample.
        """
        now = self._now(now)
        if metric not in TRAFFIC_SERIES and metric not in RESOURCE_SERIES:
            known = ", ".join((*TRAFFIC_SERIES, *RESOURCE_SERIES))
            raise ValueError(f"unknown metric {metric!r}: use one of {known}")
        series = self._apps.get(app)
        if series is None:
            return []
        start = now - seconds
        if metric in TRAFFIC_SERIES:
            return _traffic_series(series.traffic.since(start), metric, now)
        return _resource_series(series.resources.since(start), metric)

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now


def _traffic_series(
    buckets: list[tuple[int, TrafficBucket]], metric: str, now: float
) -> list[tuple[float, float]]:
    if metric == "rps":
        if not buckets:
            return []
        by_second = dict(buckets)
        return [
            (float(s), float(by_second[s].requests if s in by_second else 0))
            for s in range(buckets[0][0], int(now) + 1)
        ]
    points: list[tuple[float, float]] = []
    fractions = {"p50_latency_ms": 0.50, "p95_latency_ms": 0.95, "p99_latency_ms": 0.99}
    for second, bucket in buckets:
        if not bucket.requests:
            continue
        if metric == "error_rate":
            points.append((float(second), bucket.errors / bucket.requests))
            continue
        value = percentile(bucket.latencies, fractions[metric])
        if value is not None:
            points.append((float(second), value))
    return points


def _resource_series(buckets: list[tuple[int, AppResources]], metric: str) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for second, (samples, cpu, cpu_n, memory, memory_n, connections, connections_n, ready) in buckets:
        if metric == "cpu_percent" and cpu_n:
            points.append((float(second), cpu / cpu_n))
        elif metric == "memory_percent" and memory_n:
            points.append((float(second), memory / memory_n))
        elif metric == "active_connections" and connections_n:
            points.append((float(second), connections / connections_n))
        elif metric == "ready_replicas" and samples:
            points.append((float(second), float(ready)))
    return points
