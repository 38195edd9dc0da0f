"""Writes the metric history: one record per app and scaling period, then rollups and expiry.

The scaling loop calls ``sample`` for each running app with what the scaler sees (desired and ready
replicas) and ``record`` once per period; only the leader runs that loop, and the store fences the
write by its term.  The figures are those measured since the app's previous record (each request
and resource sample in exactly one record), not of the policy's window, so a backtest can rebuild any
window length from them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from core.errors import OrchestryError
from core.history import MetricSample
from core.metrics.window import MetricWindow
from core.store.lanes import StoreLanes
from core.store.metric_history import MetricHistoryRepository

log = logging.getLogger(__name__)

# Rolling up and expiring is cheap but needs no finer rhythm than the smallest rollup (a minute).
COMPACT_EVERY_SECONDS = 60.0


class MetricHistoryRecorder:
    def __init__(
        self,
        history: MetricHistoryRepository,
        lanes: StoreLanes,
        measure: Callable[[str], MetricWindow],
        period: float,
        retention_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._history = history
        self._lanes = lanes
        self._measure = measure
        self.period = period
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._next_compaction = 0.0
        self._failing = False

    def sample(self, app: str, desired: int, ready: int, now: float | None = None) -> MetricSample:
        """The figures of ``app`` since its last sample, with the replica counts the scaler sees now."""
        window = self._measure(app)
        return MetricSample.raw(
            app,
            self._clock() if now is None else now,
            self.period,
            rps=window.rps,
            p95_latency_ms=window.p95_latency_ms,
            cpu_percent=window.cpu_percent,
            memory_percent=window.memory_percent,
            active_connections=window.active_connections,
            ready_replicas=ready,
            desired_replicas=desired,
        )

    async def record(self, samples: Sequence[MetricSample]) -> None:
        """Persist one period; roll up and expire once a minute.  A failure is logged once until the
        store answers again: history is best effort and must never stop the scaler."""
        try:
            await self._lanes.write(self._history.add, list(samples))
            now = self._clock()
            if now >= self._next_compaction:
                self._next_compaction = now + COMPACT_EVERY_SECONDS
                await self._lanes.write(self._history.compact, now, self.retention_seconds)
        except OrchestryError as exc:
            if not self._failing:
                log.warning("metric history not recorded: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("metric history recorded again")
        self._failing = False
