"""Samples every replica's resources, nginx's access log and live connections into rolling windows.

The engine tells the collector which replicas exist (``set_targets``) and supervises ``run``; the
scaler and the front ends read ``window``, ``replica_metrics`` and ``series``.  One sample takes the
stats of all replicas in one parallel call, reads what nginx appended to its access log, and counts
nginx → replica connections, concurrently.

Traffic is attributed by the log's ``app`` field, and to a replica only when the answering upstream
address is one of THAT app's replicas, so one app's traffic never counts for another.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import BadRequest
from core.metrics import instruments
from core.metrics.accesslog import MAX_READ_BYTES, AccessLogTailer, AccessRecord
from core.metrics.stats import StatsSampler
from core.metrics.window import (
    DEFAULT_RETENTION_SECONDS,
    MetricWindow,
    ReplicaMetrics,
    ReplicaSample,
    RollingMetrics,
)
from core.net.connections import established_connections
from core.runtime.base import ContainerStats, Runtime

log = logging.getLogger(__name__)

# API.md's simulateMetrics keys → MetricWindow fields.
SIMULATED_KEYS = {
    "rps": "rps",
    "p95LatencyMs": "p95_latency_ms",
    "activeConnections": "active_connections",
    "cpuPercent": "cpu_percent",
    "memoryPercent": "memory_percent",
    "healthyReplicas": "ready_replicas",
}
MAX_SIMULATED_SAMPLES = 1000  # per app; a demo script in a loop must not grow memory without bound
LATEST_SECONDS = 10.0  # "latest" per-replica figures are over this many seconds
# A sample adds every app's figures: at 500 apps that held the event loop ~20 ms on a busy host, once a
# sample (a request arriving then waited for all of it).  The loop answers between slices of this many
# apps; each app's figures still change whole.
SAMPLE_SLICE_APPS = 100


@dataclass(frozen=True)
class ReplicaTarget:
    slot: int
    container_id: str
    host: str
    port: int
    ready: bool
    cpu_limit_millis: int | None = None


@dataclass(frozen=True)
class SimulatedSample:
    at: float
    until: float
    values: dict[str, float]  # MetricWindow field → value


class MetricsCollector:
    def __init__(
        self,
        runtime: Runtime,
        access_log_path: Path,
        interval: float = 2.0,
        clock: Callable[[], float] = time.time,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        sampler: StatsSampler | None = None,
        count_connections: Callable[[Iterable[int], str], dict[int, int]] = established_connections,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sampler = sampler or StatsSampler(runtime, clock=clock)
        # After a restart, read at most the last 8 MiB of an existing log: recent history back at once,
        # without spending minutes on an old file.
        self._tailer = AccessLogTailer(access_log_path, start_backlog=MAX_READ_BYTES)
        self._count_connections = count_connections
        self.windows = RollingMetrics(retention_seconds, clock)
        self._targets: dict[str, list[ReplicaTarget]] = {}
        self._simulated: dict[str, deque[SimulatedSample]] = {}
        self._lock = asyncio.Lock()
        self.last_sample_at: float | None = None
        self.last_sample_seconds: float | None = None

    # -- what to measure -----------------------------------------------------------------------------

    def set_targets(self, app: str, replicas: list[ReplicaTarget]) -> None:
        if self._targets.get(app) == replicas:
            # Every pass says so, changed or not (each app's relist every 30 s): the old targets stay,
            # not a fleet's worth of new ones that live until the next pass, long enough to end up
            # in the oldest generation of the garbage collector.
            return
        self._targets[app] = list(replicas)

    def forget(self, app: str) -> None:
        self._targets.pop(app, None)
        self._simulated.pop(app, None)
        self.windows.forget(app)

    def targets(self, app: str) -> list[ReplicaTarget]:
        return list(self._targets.get(app, ()))

    @property
    def stats_sources(self) -> dict[str, str]:
        """Container id → where its CPU and memory came from in the last sample: "cgroup" (the local
        fast path) or "api" (Docker's stats endpoint)."""
        return dict(self._sampler.last_sources)

    # -- sampling ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Sample forever; the next sample is scheduled only when the last one finished."""
        while True:
            started = time.monotonic()
            try:
                await self.sample_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metrics sample failed; retrying in %.1f s", self.interval)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def sample_once(self) -> None:
        async with self._lock:
            started = time.monotonic()
            # set_targets replaces an app's list, never changes it: the lists need no copy.
            targets = dict(self._targets)
            every = [t for replicas in targets.values() for t in replicas]
            stats, records, connections = await asyncio.gather(
                self._sampler.sample([t.container_id for t in every]),
                asyncio.to_thread(self._tailer.read_new),
                asyncio.to_thread(self._connections, every),
                return_exceptions=True,
            )
            now = self._clock()
            if isinstance(records, BaseException):
                log.warning("reading the nginx access log failed: %s", records)
            else:
                self._add_traffic(targets, records, now)
            if isinstance(stats, BaseException):
                log.warning("container stats failed: %s", stats)
                stats = {}
            if isinstance(connections, BaseException):
                log.warning("counting nginx connections failed: %s", connections)
                connections = {}
            without_cpu = self._sampler.last_without_cpu
            for index, (app, replicas) in enumerate(targets.items()):
                if index and index % SAMPLE_SLICE_APPS == 0:
                    await asyncio.sleep(0)  # requests are answered between slices of apps
                if app not in self._targets:
                    continue  # forgotten (deleted) while this sample ran: its figures must not come back
                # A generator, not a list: each replica's sample is gone before the next is made.
                samples = (
                    _replica_sample(t, stats.get(t.container_id), without_cpu, connections) for t in replicas
                )
                self.windows.add_resource_sample(app, samples, now)
            self.windows.prune(now)
            self.last_sample_at = now
            self.last_sample_seconds = time.monotonic() - started

    def _connections(self, targets: list[ReplicaTarget]) -> dict[tuple[str, int], int]:
        by_host: dict[str, set[int]] = {}
        for target in targets:
            by_host.setdefault(target.host, set()).add(target.port)
        counts: dict[tuple[str, int], int] = {}
        for host, ports in by_host.items():
            for port, count in self._count_connections(ports, host).items():
                counts[(host, port)] = count
        return counts

    def _add_traffic(
        self, targets: dict[str, list[ReplicaTarget]], records: list[AccessRecord], now: float
    ) -> None:
        if not self._tailer.exists:
            return  # no traffic source yet: rps stays None rather than a misleading 0
        addresses = {
            app: {f"{t.host}:{t.port}": t.slot for t in replicas} for app, replicas in targets.items()
        }
        for app in targets:
            self.windows.mark_traffic_observed(app, now)
        by_app: dict[str, list[AccessRecord]] = {}
        for record in records:
            by_app.setdefault(record.app, []).append(record)
        # Per app, not per request: each counter and the histogram take one call per label set (their
        # lock and label checks were a third of the controller's cost per request).
        for app, served in by_app.items():
            slots = addresses.get(app)
            if slots is None:
                continue  # "" (matched no app) or an app this node does not run
            requests = [
                (
                    r.timestamp,
                    r.status,
                    r.request_time_ms,
                    slots.get(r.upstream) if r.upstream else None,
                    r.upstream_time_ms,
                )
                for r in served
            ]
            for status_class, count in Counter(instruments.status_class(r.status) for r in served).items():
                instruments.REQUESTS.inc(count, app=app, status_class=status_class)
            instruments.REQUEST_DURATION.observe_many([r.request_time_ms / 1000.0 for r in served], app=app)
            for slot, count in Counter(request[3] for request in requests if request[3] is not None).items():
                instruments.REPLICA_REQUESTS.inc(count, app=app, slot=slot)
            self.windows.add_requests(app, requests, now)

    # -- simulated load (API.md simulateMetrics) -----------------------------------------------------

    def add_simulated(self, app: str, sample: dict[str, Any], hold_seconds: float = 60.0) -> dict[str, float]:
        """Make ``window(app, …)`` report these values for ``hold_seconds`` (pass the policy's window).

        Returns the accepted values under their API names.  Raises BadRequest naming a bad key or value.
        """
        accepted: dict[str, float] = {}
        values: dict[str, float] = {}
        for key, value in sample.items():
            field = SIMULATED_KEYS.get(key)
            if field is None:
                known = ", ".join(SIMULATED_KEYS)
                raise BadRequest(f"simulated metric '{key}' is unknown: use one of {known}")
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise BadRequest(f"simulated metric '{key}' must be a number ≥ 0, got {value!r}")
            accepted[key] = float(value)
            values[field] = float(value)
        if not values:
            return accepted  # e.g. a request that only asks to evaluate
        now = self._clock()
        queue = self._simulated.setdefault(app, deque(maxlen=MAX_SIMULATED_SAMPLES))
        queue.append(SimulatedSample(now, now + hold_seconds, values))
        return accepted

    def _active_simulated(self, app: str, seconds: float, now: float) -> list[SimulatedSample]:
        queue = self._simulated.get(app)
        if not queue:
            return []
        while queue and queue[0].until < now:
            queue.popleft()
        return [s for s in queue if s.at >= now - seconds and s.until >= now]

    # -- reading -------------------------------------------------------------------------------------

    def window(self, app: str, seconds: float) -> MetricWindow:
        now = self._clock()
        measured = self.windows.summary(app, seconds, now)
        simulated = self._active_simulated(app, seconds, now)
        if not simulated:
            return measured
        overrides: dict[str, Any] = {}
        for field in SIMULATED_KEYS.values():
            given = [s.values[field] for s in simulated if field in s.values]
            if given:
                mean = sum(given) / len(given)
                overrides[field] = round(mean) if field == "ready_replicas" else mean
        # A simulation stands for a whole window of data, so the scaler can act on it at once.
        return replace(
            measured, **overrides, covered_seconds=seconds, samples=measured.samples + len(simulated)
        )

    def take_period(self, app: str) -> MetricWindow:
        """What was measured since the last call (the metric history's record of one scaling period);
        an active simulation stands in for the measured figures, as in ``window``."""
        now = self._clock()
        measured = self.windows.take_period(app, now)
        simulated = self._active_simulated(app, measured.covered_seconds, now)
        overrides: dict[str, Any] = {}
        for field in SIMULATED_KEYS.values():
            given = [s.values[field] for s in simulated if field in s.values]
            if given and field != "ready_replicas":
                overrides[field] = sum(given) / len(given)
        return replace(measured, **overrides) if overrides else measured

    def replica_metrics(self, app: str, seconds: float = LATEST_SECONDS) -> dict[int, ReplicaMetrics]:
        return self.windows.replica_summary(app, seconds, self._clock())

    def series(self, app: str, metric: str, seconds: float) -> list[tuple[float, float]]:
        return self.windows.series(app, metric, seconds, self._clock())


def _replica_sample(
    target: ReplicaTarget,
    stats: ContainerStats | None,
    without_cpu: frozenset[str],
    connections: dict[tuple[str, int], int],
) -> ReplicaSample:
    cpu = memory = None
    if stats is not None:
        memory = stats.memory_percent
        if target.container_id not in without_cpu:
            if stats.cpu_percent_of_limit is not None:
                cpu = stats.cpu_percent_of_limit
            elif target.cpu_limit_millis:
                cpu = stats.cpu_percent_of_core * 1000.0 / target.cpu_limit_millis
            else:
                cpu = stats.cpu_percent_of_core
    return ReplicaSample(
        slot=target.slot,
        ready=target.ready,
        cpu_percent=cpu,
        memory_percent=memory,
        connections=connections.get((target.host, target.port)),
    )
