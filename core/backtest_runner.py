"""The I/O shell around ``core.backtest``: read an app's metric history (or make a synthetic trace),
validate a candidate policy as ``apply`` would, and replay both policies over the same load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.backtest import TRACES, BacktestResult, backtest, synthetic_trace, trace_duration
from core.errors import BadRequest
from core.history import MetricSample
from core.spec import ScalingPolicy, validate_policy_update
from core.store.lanes import StoreLanes
from core.store.metric_history import MetricHistoryRepository

DEFAULT_SINCE_SECONDS = 6 * 3600
MIN_SINCE_SECONDS = 60


@dataclass(frozen=True)
class BacktestRun:
    """Both policies replayed over the same load."""

    app: str
    source: str  # "history" or "trace:<kind>"
    since_seconds: float
    samples: list[MetricSample]
    current_policy: ScalingPolicy
    candidate_policy: ScalingPolicy
    current: BacktestResult
    candidate: BacktestResult


def check_since(since: Any, retention_seconds: float) -> float:
    if since is None:
        return float(DEFAULT_SINCE_SECONDS)
    if (
        isinstance(since, bool)
        or not isinstance(since, int | float)
        or not (MIN_SINCE_SECONDS <= since <= retention_seconds)
    ):
        raise BadRequest(
            f"field 'since' must be a number of seconds from {MIN_SINCE_SECONDS} to the metric retention "
            f"({retention_seconds:.0f}); got {since!r}"
        )
    return float(since)


def check_trace(trace: Any) -> str | None:
    if trace is None:
        return None
    if trace not in TRACES:
        raise BadRequest(f"field 'trace' must be one of {', '.join(TRACES)}; got {trace!r}")
    return str(trace)


class BacktestRunner:
    def __init__(
        self,
        history: MetricHistoryRepository,
        lanes: StoreLanes,
        period: float,
        retention_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._history = history
        self._lanes = lanes
        self._period = period
        self._retention = retention_seconds
        self._clock = clock

    async def run(
        self,
        app: str,
        policy: ScalingPolicy,
        changes: dict[str, Any] | None,
        since: Any = None,
        trace: Any = None,
    ) -> BacktestRun:
        """Replay ``policy`` and ``policy`` with ``changes`` over the app's last ``since`` seconds, or
        over a synthetic ``trace``.  SpecError (422) for a candidate that fails validation, BadRequest
        (400) for a bad ``since``/``trace`` or an app without history and no trace."""
        since_seconds = check_since(since, self._retention)
        kind = check_trace(trace)
        candidate = validate_policy_update(policy, changes) if changes else policy
        now = self._clock()
        if kind is not None:
            duration = trace_duration(kind)
            samples = synthetic_trace(kind, policy, app, start=now - duration, period=self._period)
            source, initial = f"trace:{kind}", max(policy.min_replicas, 1)
            since_seconds = duration
        else:
            samples = await self._lanes.read(self._history.range, app, now - since_seconds)
            if not samples:
                raise BadRequest(
                    f"app '{app}' has no recorded metric history in the last {_duration(since_seconds)}: "
                    f"run it a while (one record per scaling period), pass a longer since, or pass a "
                    f"synthetic trace ({', '.join(TRACES)})"
                )
            source, initial = "history", round(samples[0].desired_replicas)
        # CPU-bound and pure: off the event loop so the API keeps answering meanwhile.
        current, proposed = await asyncio.to_thread(
            lambda: (backtest(samples, policy, initial), backtest(samples, candidate, initial))
        )
        return BacktestRun(app, source, since_seconds, samples, policy, candidate, current, proposed)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
