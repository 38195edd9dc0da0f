"""The leader's auto-scaling loop: read each auto-mode app's window, ask the pure scaler, act.

Cooldown survives restarts and fail-over because ``last_scaled_at`` lives in the store; the scale-in
stabilisation history is rebuilt within one window after a restart (it only ever delays scale-in).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.errors import BadRequest, OrchestryError
from core.metrics.history import MetricHistoryRecorder
from core.metrics.window import MetricWindow
from core.models import APP_STOPPED
from core.scaler import Decision, decide
from core.spec import AppSpec
from core.store import AppRecord

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)


class ScalingLoop:
    def __init__(
        self, engine: Engine, interval: float = 5.0, history: MetricHistoryRecorder | None = None
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.history = history
        self.recommendations: dict[str, deque[tuple[float, int]]] = {}
        self.last_decision: dict[str, tuple[float, Decision]] = {}
        self._last_refusal: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.engine.cluster.is_leader():
                await self.evaluate_all()

    async def evaluate_all(self) -> None:
        records = await asyncio.to_thread(self.engine.store.apps.list)
        running = [r for r in records if r.status != APP_STOPPED]
        # Recorded before deciding, with the counts the scaler is about to see: a backtest of the
        # policy in force replays exactly the inputs of each decision.
        samples = (
            [self.history.sample(r.name, r.desired_replicas, self._ready(r.name)) for r in running]
            if self.history is not None
            else []
        )
        for record in running:
            if record.mode != "auto":
                continue
            try:
                await self.evaluate(record, self.engine.reconciler.spec_of(record), apply=True)
            except OrchestryError as exc:
                log.warning("scaling %s failed: %s", record.name, exc)
        if self.history is not None and samples:
            await self.history.record(samples)

    def _ready(self, name: str) -> int:
        state = self.engine.reconciler.apps.get(name)
        return len(state.ready_replicas()) if state is not None else 0

    async def evaluate(self, record: AppRecord, spec: AppSpec, apply: bool) -> Decision:
        if not apply:
            return self._decide(record, spec)[0]
        # One evaluation per app at a time, on the stored record read under the lock: two evaluations
        # (the loop and a simulateMetrics call, or two calls) deciding on the same stale desired count
        # would both scale, and the second would ignore the cooldown the first had just started.
        lock = self._locks.setdefault(record.name, asyncio.Lock())
        async with lock:
            decision, _window, now = self._propose(record, spec)
            if decision.recommendation == record.desired_replicas and not decision.should_scale:
                # Nothing to act on or report, the usual case: no need to re-read the store.
                self._record(record.name, decision, now)
                return decision
            fresh = await asyncio.to_thread(self.engine.store.apps.get, record.name)
            if fresh is None:  # deleted meanwhile: nothing to act on
                return self._decide(record, spec)[0]
            return await self._decide_and_act(fresh, self.engine.reconciler.spec_of(fresh))

    def _propose(self, record: AppRecord, spec: AppSpec) -> tuple[Decision, MetricWindow, float]:
        """The scaler's decision on ``record`` now, not yet recorded."""
        policy = spec.scaling
        name = record.name
        window = self.engine.metrics.window(name, policy.window_seconds)
        now = time.time()
        history = self.recommendations.setdefault(name, deque(maxlen=4096))
        while history and history[0][0] < now - policy.window_seconds:
            history.popleft()
        decision = decide(
            policy,
            window,
            record.desired_replicas,
            self._ready(name),
            now,
            record.last_scaled_at,
            list(history),
        )
        return decision, window, now

    def _record(self, name: str, decision: Decision, now: float) -> None:
        self.recommendations.setdefault(name, deque(maxlen=4096)).append((now, decision.recommendation))
        self.last_decision[name] = (now, decision)

    def _decide(self, record: AppRecord, spec: AppSpec) -> tuple[Decision, MetricWindow]:
        decision, window, now = self._propose(record, spec)
        self._record(record.name, decision, now)
        return decision, window

    async def _decide_and_act(self, record: AppRecord, spec: AppSpec) -> Decision:
        name = record.name
        decision, window = self._decide(record, spec)
        apply = record.mode == "auto" and record.status != APP_STOPPED
        if apply and decision.should_scale and decision.target != record.desired_replicas:
            if not self.engine.cluster.is_leader():
                return decision
            self._last_refusal.pop(name, None)
            await self.engine.apply_scale(
                name,
                record.desired_replicas,
                decision.target,
                decision.reason,
                {
                    "window": asdict(window),
                    "scale_factors": decision.scale_factors,
                    "deciding_metric": decision.deciding_metric,
                },
                auto=True,
            )
        elif apply and decision.in_cooldown and decision.recommendation != record.desired_replicas:
            # A refusal worth knowing, said once per reason rather than every few seconds.
            if self._last_refusal.get(name) != decision.reason.split(" for ")[0]:
                self._last_refusal[name] = decision.reason.split(" for ")[0]
                await self.engine.emit(
                    "scaling",
                    "scale_deferred",
                    f"{name}: {decision.reason}",
                    app=name,
                    details={"recommendation": decision.recommendation},
                )
        return decision

    def forget(self, name: str) -> None:
        self.recommendations.pop(name, None)
        self.last_decision.pop(name, None)
        self._last_refusal.pop(name, None)
        self._locks.pop(name, None)

    def metrics_view(self, record: AppRecord, spec: AppSpec) -> dict[str, Any]:
        policy = spec.scaling
        metrics = self.engine.metrics
        window = metrics.window(record.name, policy.window_seconds)
        recent = metrics.window(record.name, min(10, policy.window_seconds))
        state = self.engine.reconciler.apps.get(record.name)
        total = len(state.live()) if state is not None else 0
        last = self.last_decision.get(record.name)
        decision = (
            last[1]
            if last
            else decide(
                policy,
                window,
                record.desired_replicas,
                self._ready(record.name),
                time.time(),
                record.last_scaled_at,
            )
        )
        return {
            "current": current_metrics(recent, self._ready(record.name), total),
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
        added = self.engine.metrics.add_simulated(
            record.name, values, hold_seconds=float(spec.scaling.window_seconds)
        )
        evaluation = action = None
        if evaluate:
            can_act = (
                self.engine.cluster.is_leader() and record.mode == "auto" and record.status != APP_STOPPED
            )
            decision = await self.evaluate(record, spec, apply=can_act)
            evaluation = {
                "should_scale": decision.should_scale,
                "target_replicas": decision.target,
                "reason": decision.reason,
                "scale_factors": decision.scale_factors,
            }
            # ``decision.current`` is the desired count read under the evaluation lock, not the
            # possibly stale one of ``record``.
            if can_act and decision.should_scale and decision.target != decision.current:
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
