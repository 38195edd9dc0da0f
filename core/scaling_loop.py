"""The leader's auto-scaling loop: read each auto-mode app's window, ask the pure scaler, act.

Cooldown survives restarts and fail-over because ``last_scaled_at`` lives in the store; the scale-in
stabilisation history is rebuilt within one window after a restart (it only ever delays scale-in).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Protocol

from core.collaborators import Emit
from core.errors import BadRequest, OrchestryError
from core.metrics.collector import MetricsCollector
from core.metrics.history import MetricHistoryRecorder
from core.metrics.window import MetricWindow
from core.models import APP_STOPPED
from core.scaler import Decision, decide
from core.spec import AppSpec
from core.store import AppRecord

log = logging.getLogger(__name__)

# Scale-in stabilisation keeps at most this many recommendations per app.
RECOMMENDATION_HISTORY = 4096


class DesiredCount(Protocol):
    """The one command the loop gives: a new desired count, unless the app moved on meanwhile."""

    async def apply_scale(
        self,
        name: str,
        target: int,
        reason: str,
        metrics: dict[str, Any] | None = None,
        auto: bool = False,
        expect: tuple[int, float | None] | None = None,
    ) -> int | None: ...


class ScalingLoop:
    def __init__(
        self,
        desired: DesiredCount,
        list_apps: Callable[[], Awaitable[list[AppRecord]]],
        spec_of: Callable[[AppRecord], AppSpec],
        ready_count: Callable[[str], int],
        live_count: Callable[[str], int],
        metrics: MetricsCollector,
        is_leader: Callable[[], bool],
        emit: Emit,
        interval: float = 5.0,
        history: MetricHistoryRecorder | None = None,
    ) -> None:
        """``list_apps`` gives every app's record (the leader's kept records: no store read while
        nothing changed them, core/services/app_records.py); ``ready_count(app)`` counts replicas
        that passed their health check, ``live_count(app)`` those not draining."""
        self._desired = desired
        self._list_apps = list_apps
        self._spec_of = spec_of
        self._ready_count = ready_count
        self._live_count = live_count
        self._metrics = metrics
        self._is_leader = is_leader
        self._emit = emit
        self.interval = interval
        self.history = history
        self.recommendations: dict[str, deque[tuple[float, int]]] = {}
        self.last_decision: dict[str, tuple[float, Decision]] = {}
        self._last_refusal: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._is_leader():
                await self.evaluate_all()

    async def evaluate_all(self) -> None:
        records = await self._list_apps()
        running = [r for r in records if r.status != APP_STOPPED]
        # Recorded before deciding, with the counts the scaler is about to see: a backtest of the
        # policy in force replays exactly the inputs of each decision.
        samples = (
            [self.history.sample(r.name, r.desired_replicas, self._ready_count(r.name)) for r in running]
            if self.history is not None
            else []
        )
        for record in running:
            if record.mode != "auto":
                continue
            try:
                await self.evaluate(record, self._spec_of(record), apply=True)
            except OrchestryError as exc:
                log.warning("scaling %s failed: %s", record.name, exc)
        if self.history is not None and samples:
            await self.history.record(samples)

    async def evaluate(self, record: AppRecord, spec: AppSpec, apply: bool) -> Decision:
        """Decide once on ``record``, remember the decision and, with ``apply``, act on it.

        The act is conditional on the app still having the desired count and last scale time the
        decision saw (checked in the same transaction that writes): a scale that landed meanwhile
        (another evaluation, an operator) wins, and the next tick decides afresh on what it left."""
        return (await self._evaluate(record, spec, apply))[0]

    async def _evaluate(self, record: AppRecord, spec: AppSpec, apply: bool) -> tuple[Decision, bool]:
        """The decision, and whether it changed the desired count."""
        if not apply:
            return self._decide(record, spec)[0], False
        # One evaluation per app at a time: the loop and a simulateMetrics call must not both act on
        # the same desired count.
        lock = self._locks.setdefault(record.name, asyncio.Lock())
        async with lock:
            decision, window = self._decide(record, spec)
            return decision, await self._act(record, decision, window)

    def _decide(self, record: AppRecord, spec: AppSpec) -> tuple[Decision, MetricWindow]:
        """The scaler's decision on ``record`` now, remembered for scale-in stabilisation and display."""
        policy = spec.scaling
        name = record.name
        window = self._metrics.window(name, policy.window_seconds)
        now = time.time()
        history = self.recommendations.setdefault(name, deque(maxlen=RECOMMENDATION_HISTORY))
        while history and history[0][0] < now - policy.window_seconds:
            history.popleft()
        decision = decide(
            policy,
            window,
            record.desired_replicas,
            self._ready_count(name),
            now,
            record.last_scaled_at,
            list(history),
        )
        history.append((now, decision.recommendation))
        self.last_decision[name] = (now, decision)
        return decision, window

    async def _act(self, record: AppRecord, decision: Decision, window: MetricWindow) -> bool:
        name = record.name
        if record.mode != "auto" or record.status == APP_STOPPED:
            return False
        if decision.should_scale and decision.target != record.desired_replicas:
            if not self._is_leader():
                return False
            self._last_refusal.pop(name, None)
            replaced = await self._desired.apply_scale(
                name,
                decision.target,
                decision.reason,
                {
                    "window": asdict(window),
                    "scale_factors": decision.scale_factors,
                    "deciding_metric": decision.deciding_metric,
                },
                auto=True,
                expect=(record.desired_replicas, record.last_scaled_at),
            )
            return replaced is not None
        if decision.in_cooldown and decision.recommendation != record.desired_replicas:
            # A refusal worth knowing, said once per reason rather than every few seconds.
            refusal = decision.reason.split(" for ")[0]
            if self._last_refusal.get(name) != refusal:
                self._last_refusal[name] = refusal
                await self._emit(
                    "scaling",
                    "scale_deferred",
                    decision.reason,  # the event carries the app: no "NAME: " lead
                    app=name,
                    details={"recommendation": decision.recommendation},
                )
        return False

    def forget(self, name: str) -> None:
        self.recommendations.pop(name, None)
        self.last_decision.pop(name, None)
        self._last_refusal.pop(name, None)
        self._locks.pop(name, None)

    def metrics_view(self, record: AppRecord, spec: AppSpec) -> dict[str, Any]:
        policy = spec.scaling
        window = self._metrics.window(record.name, policy.window_seconds)
        recent = self._metrics.window(record.name, min(10, policy.window_seconds))
        ready = self._ready_count(record.name)
        last = self.last_decision.get(record.name)
        decision = (
            last[1]
            if last
            else decide(policy, window, record.desired_replicas, ready, time.time(), record.last_scaled_at)
        )
        return {
            "current": current_metrics(recent, ready, self._live_count(record.name)),
            "window": {"seconds": policy.window_seconds, **asdict(window)},
            "policy": policy.to_document(),
            "scale_factors": decision.scale_factors,
            "last_decision": None if last is None else {"timestamp": last[0], **decision_dict(decision)},
        }

    async def simulate(
        self, record: AppRecord, spec: AppSpec, sample: dict[str, Any], evaluate: bool
    ) -> dict[str, Any]:
        if not isinstance(sample, dict):
            raise BadRequest("the body must be a JSON object with rps, p95LatencyMs, cpuPercent, … keys")
        values = {key: value for key, value in sample.items() if key != "evaluate"}
        # The simulated figures stand in for measured ones for one scaling window.
        added = self._metrics.add_simulated(
            record.name, values, hold_seconds=float(spec.scaling.window_seconds)
        )
        evaluation = action = None
        if evaluate:
            can_act = self._is_leader() and record.mode == "auto" and record.status != APP_STOPPED
            decision, applied = await self._evaluate(record, spec, apply=can_act)
            evaluation = {
                "should_scale": decision.should_scale,
                "target_replicas": decision.target,
                "reason": decision.reason,
                "scale_factors": decision.scale_factors,
            }
            if applied:
                action = {"scaled": True, "from_replicas": decision.current, "to_replicas": decision.target}
        return {"app": record.name, "metrics_added": added, "evaluation": evaluation, "action": action}


def current_metrics(window: MetricWindow, ready: int, total: int) -> dict[str, Any]:
    return {
        "rps": window.rps or 0.0,
        "p95_latency_ms": window.p95_latency_ms or 0.0,
        "active_connections": window.active_connections or 0.0,
        "cpu_percent": window.cpu_percent or 0.0,
        "memory_percent": window.memory_percent or 0.0,
        "healthy_replicas": ready,
        "total_replicas": total,
    }


def decision_dict(decision: Decision) -> dict[str, Any]:
    return {
        "should_scale": decision.should_scale,
        "current": decision.current,
        "target": decision.target,
        "reason": decision.reason,
        "deciding_metric": decision.deciding_metric,
        "scale_factors": decision.scale_factors,
        "in_cooldown": decision.in_cooldown,
    }
