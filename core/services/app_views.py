"""Reads of apps for every front end: describe, list, rollout, the dashboard overview and chart series.

The leader answers from the reconciler's live view of the replicas; a follower from what the leader
last saved in the store.  Nothing here changes state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Any

from core.collaborators import Leadership, require_leader
from core.errors import app_not_registered
from core.events import EventLog
from core.history import MetricSample
from core.metrics.collector import MetricsCollector
from core.models import (
    APP_STOPPED,
    AppFigures,
    AppSeries,
    AppSummary,
    AppView,
    Overview,
    ReplicaView,
    RolloutReplica,
    RolloutView,
)
from core.reconciler import Reconciler
from core.replicas import AppState
from core.services.app_records import KeptAppRecords
from core.spec import redact_document
from core.store import AppRecord, Store

# Latest figures are the mean over this many seconds.
FIGURES_SECONDS = 10
# The measured chart series ("desired" is rebuilt from the store beside them).
CHART_METRICS = ("ready_replicas", "rps", "p95_latency_ms", "cpu_percent", "memory_percent")
SERIES_SECONDS_MAX = 900  # the metric windows keep 15 minutes
# Enough to rebuild the desired-replicas steps of a window from the store.
SERIES_RECORDS = 200
REDACTION_CACHE_SIZE = 4096

Points = list[tuple[float, float]]


class AppListing:
    """Every app of the list as the leader holds it at one instant, by name: ``keys[i]`` changes
    whenever anything a list entry shows of app ``i`` (its record, status, reason, ready replicas)
    changes; ``view(i)`` builds its view from what the engine holds, without waiting on anything."""

    __slots__ = ("_records", "_summary", "_view", "keys", "names")

    def __init__(
        self,
        records: list[AppRecord],
        keys: list[Hashable],
        view: Callable[[AppRecord], AppView],
        summary: Callable[[AppRecord], AppSummary],
    ) -> None:
        self._records = records
        self._view = view
        self._summary = summary
        self.keys = keys
        self.names = [record.name for record in records]

    def view(self, index: int) -> AppView:
        return self._view(self._records[index])

    def summary(self, index: int) -> AppSummary:
        """App ``index`` without its replicas, as ``overview`` summarises it (``keys[index]`` covers it)."""
        return self._summary(self._records[index])


class AppViews:
    def __init__(
        self,
        store: Store,
        reconciler: Reconciler,
        leadership: Leadership,
        records: KeptAppRecords,
        metrics: MetricsCollector,
        events: EventLog,
        lb_listen: str,
        node_of: Callable[[str], str],
        figures_gap: Callable[[str], str] = lambda _container_id: "",
    ) -> None:
        """``records``: the app records as the leader keeps them; ``node_of(address)``: the hostname
        of the node a replica at ``address`` runs on; ``figures_gap(container_id)``: why the runtime
        could not measure that replica's CPU and memory."""
        self._figures_gap = figures_gap
        self._store = store
        self._reconciler = reconciler
        self._leadership = leadership
        self._metrics = metrics
        self._events = events
        self._lb_listen = lb_listen
        self._node_of = node_of
        self._redaction_cache: dict[tuple[str, str, str, float], dict[str, Any]] = {}
        self.records = records
        # What listing needs of each record, worked out once per read of the records.
        self._listing_of: list[AppRecord] | None = None
        self._listing_base: list[tuple[AppRecord, tuple[Any, ...], int, bool]] = []

    async def app_record(self, name: str) -> AppRecord:
        record = await self._store.read(self._store.apps.get, name)
        if record is None:
            raise app_not_registered(name, [r.name for r in await self._store.read(self._store.apps.list)])
        return record

    async def get_app(self, name: str) -> AppView:
        """Status + describe: spec/raw redacted, replicas with live cpu/memory.  NotFound if unknown."""
        return await self._view(await self.app_record(name))

    async def list_apps(self) -> list[AppView]:
        return [await self._view(r) for r in await self._records()]

    async def _records(self) -> list[AppRecord]:
        """Every app's record, by name, without a store read while the leader's kept list is current."""
        return await self.records.current()

    async def listed_apps(self) -> AppListing | None:
        """Every app of ``list_apps`` with a key of what its list entry shows, so a front end can keep
        each entry encoded and rebuild only those whose key moved.  None on a follower, or while an
        app's replicas are known only to the store (a leader that has not loaded it yet): then build
        the list with ``list_apps``.  Past the (usually skipped) read of the records, nothing waits:
        every key comes from one instant of the engine's state.  Called for every poll of a list, so
        what depends on the records alone is worked out once per read of them."""
        if not self._leadership.is_leader():
            return None
        records = await self.records.current()
        if self._listing_of is not records:
            self._listing_of, self._listing_base = records, [_listing_base(r) for r in records]
        apps = self._reconciler.apps
        compute_status = self._reconciler.compute_status
        keys: list[Hashable] = []
        for record, record_key, desired, stopped in self._listing_base:
            state = apps.get(record.name)
            if state is None:
                return None  # its replicas come from the store
            if stopped and not state.replicas:
                # Stopped with nothing left to stop: "stopped by the operator", no replica ready.
                keys.append(record_key)
                continue
            ready = sum(1 for r in state.replicas.values() if r.ready and r.routed)
            keys.append((record_key, compute_status(state, record, desired), ready))
        return AppListing(records, keys, self._live_view, self._summary)

    async def overview(self, detail: Collection[str] | None = None) -> Overview:
        """Every app with its figures.  ``detail``: the apps whose replicas (with their CPU and memory)
        the answer carries; the leader gives every other app as an ``AppSummary``, so a console
        refreshing 1,000 replicas builds only those of the app it shows.  None: every app's."""
        if detail is None or not self._leadership.is_leader():
            apps = await self.list_apps()
        else:
            apps = [
                await self._view(r)
                if r.name in detail or r.name not in self._reconciler.apps
                else self._summary(r)
                for r in await self._records()
            ]
        figures = {app.name: self.figures(app.name) for app in apps}
        return Overview(timestamp=time.time(), lb_listen=self._lb_listen, apps=apps, figures=figures)

    def figures(self, name: str) -> AppFigures:
        window = self._metrics.window(name, FIGURES_SECONDS)
        return AppFigures(
            rps=window.rps,
            p95_latency_ms=window.p95_latency_ms,
            cpu_percent=window.cpu_percent,
            memory_percent=window.memory_percent,
        )

    async def series(self, name: str, seconds: int) -> AppSeries:
        """Desired and ready replicas, requests/s, p95 latency, CPU and memory over the last ``seconds``.

        Desired replicas come from the store's scaling history and up/down events, so a console that
        attaches later (or to another node) sees the same history."""
        app = await self.get_app(name)
        now = time.time()
        start = max(now - seconds, app.created_at)
        history, lifecycle = await asyncio.gather(
            self._store.read(self._store.scaling.list, name, SERIES_RECORDS),
            self._events.query(app=name, category="lifecycle", since=start, limit=SERIES_RECORDS),
        )
        live = {metric: self._metrics.series(name, metric, seconds) for metric in CHART_METRICS}
        # The store's per-period history fills what the in-memory windows no longer (or not yet, after a
        # restart or a fail-over) hold; the live 1 s points win where both exist.
        stored = await self._store.read(self._store.history.range, name, now - seconds, None)
        series = {metric: with_history(points, stored, metric) for metric, points in live.items()}
        series["desired"] = desired_series(
            start,
            now,
            app.desired_replicas,
            app.status != APP_STOPPED,
            [(r.timestamp, r.from_replicas, r.to_replicas) for r in history],
            [(e.timestamp, e.kind == "app_up") for e in lifecycle if e.kind in ("app_up", "app_down")],
        )
        return AppSeries(app=name, seconds=seconds, timestamp=now, series=series)

    async def metric_history(self, name: str, since: float, until: float | None = None) -> list[MetricSample]:
        """The app's recorded figures per period (core/history.py) ending in [since, until], oldest first."""
        await self.app_record(name)
        return await self._store.read(self._store.history.range, name, since, until)

    async def rollout(self, name: str) -> RolloutView:
        """How far the app's replicas are from its desired count and current container spec.

        Leader only: which container runs which spec (and which awaits a restart) is known to the
        reconciler, not mirrored into the store."""
        require_leader(self._leadership)
        record = await self.app_record(name)
        current = self._reconciler.spec_of(record).container_hash()
        desired = record.desired_replicas if record.status != APP_STOPPED else 0
        state = self._reconciler.apps.get(name)
        if state is None:
            return RolloutView(name, record.status, record.status_reason, desired, 0, 0, 0, 0, desired == 0)
        serving = {r.container_id for r in state.serving()}
        replicas = [
            RolloutReplica(
                slot=r.slot,
                name=r.name,
                state=r.state,
                ready=r.container_id in serving,
                updated=r.spec_hash == current and not r.restart_requested,
                reason=r.reason,
            )
            for r in sorted(state.live(), key=lambda r: r.slot)
        ]
        terminating = sum(1 for r in state.replicas.values() if r.draining)
        updated_ready = sum(1 for r in replicas if r.updated and r.ready)
        status, reason = self._reconciler.compute_status(state, record, desired)
        return RolloutView(
            app=name,
            status=status,
            status_reason=reason,
            desired_replicas=desired,
            ready_replicas=len(serving),
            updated_replicas=sum(1 for r in replicas if r.updated),
            updated_ready_replicas=updated_ready,
            terminating_replicas=terminating,
            complete=len(replicas) == desired and updated_ready == desired and terminating == 0,
            replicas=replicas,
        )

    def _redacted(self, record: AppRecord, which: str) -> dict[str, Any]:
        """Redacted copies are cached per spec hash: listing many apps must not deep-copy each spec."""
        key = (record.name, which, record.spec_hash, record.updated_at if which == "raw" else 0.0)
        cached = self._redaction_cache.get(key)
        if cached is None:
            if len(self._redaction_cache) > REDACTION_CACHE_SIZE:
                self._redaction_cache.clear()
            cached = redact_document(record.spec if which == "spec" else record.raw)
            self._redaction_cache[key] = cached
        return cached

    async def _view(self, record: AppRecord) -> AppView:
        if self._leadership.is_leader() and record.name in self._reconciler.apps:
            return self._live_view(record)
        instances = await self._store.read(self._store.instances.list, record.name)
        return self._view_of(record, [instance_view(record.name, i) for i in instances], None)

    def _live_view(self, record: AppRecord) -> AppView:
        """The view of an app the reconciler holds (the leader's), from its live state: never waits."""
        state = self._reconciler.apps[record.name]
        return self._view_of(record, state.views(time.time()), state)

    def live_app(self, name: str) -> AppView | None:
        """The leader's full view of ``name`` from its kept records and live state, without waiting:
        None on a follower, while the kept records are out of date, or for an app it does not hold."""
        records = self.records.kept()
        if records is None or name not in self._reconciler.apps:
            return None
        record = next((r for r in records if r.name == name), None)
        return self._live_view(record) if record is not None else None

    def _summary(self, record: AppRecord) -> AppSummary:
        """The leader's view of an app it holds, without replica views: never waits."""
        state = self._reconciler.apps[record.name]
        view = self._view_of(record, [], state)
        ready = sum(1 for r in state.replicas.values() if r.ready and r.routed)  # as ReplicaView.ready
        return AppSummary(**vars(view), ready_count=ready)

    def _view_of(self, record: AppRecord, replicas: list[ReplicaView], state: AppState | None) -> AppView:
        if replicas:
            latest = self._metrics.replica_metrics(record.name)
            for view in replicas:
                view.node = self._node_of(view.host)
                sample = latest.get(view.slot)
                if sample is not None:
                    view.cpu_percent = sample.cpu_percent
                    view.memory_percent = sample.memory_percent
                if view.cpu_percent is None and view.memory_percent is None and view.container_id:
                    view.figures_reason = self._figures_gap(view.container_id)
        status, reason = record.status, record.status_reason
        if state is not None:
            desired = record.desired_replicas if record.status != APP_STOPPED else 0
            status, reason = self._reconciler.compute_status(state, record, desired)
        return AppView(
            name=record.name,
            spec=self._redacted(record, "spec"),
            raw=self._redacted(record, "raw"),
            status=status,
            status_reason=reason,
            mode=record.mode,
            desired_replicas=record.desired_replicas,
            policy=dict(record.policy),
            created_at=record.created_at,
            updated_at=record.updated_at,
            last_scaled_at=record.last_scaled_at,
            replicas=replicas,
            labels=dict(record.spec.get("metadata", {}).get("labels", {}) or {}),
        )


def _listing_base(record: AppRecord) -> tuple[AppRecord, tuple[Any, ...], int, bool]:
    """The record, a key of all a list entry shows of it, its desired count, whether it is stopped."""
    key = (
        record.name,
        record.spec_hash,
        record.generation,
        record.status,
        record.status_reason,
        record.mode,
        record.desired_replicas,
        record.created_at,
        record.updated_at,
        record.last_scaled_at,
    )
    stopped = record.status == APP_STOPPED
    return record, key, 0 if stopped else record.desired_replicas, stopped


def instance_view(app: str, instance: Any) -> ReplicaView:
    """A replica as the leader last saved it (what a follower shows)."""
    return ReplicaView(
        slot=instance.slot,
        name=f"{app}-{instance.slot}",
        container_id=instance.container_id,
        host=instance.host,
        port=instance.port,
        state=instance.state,
        ready=instance.ready,
        restarts=instance.restarts,
        reason=instance.reason,
    )


def with_history(live: Points, stored: list[MetricSample], metric: str) -> Points:
    """``live`` points preceded by the stored ones older than its first point."""
    first_live = live[0][0] if live else float("inf")
    older = [
        (s.at, getattr(s, metric)) for s in stored if s.at < first_live and getattr(s, metric) is not None
    ]
    return [*older, *live]


def desired_series(
    start: float,
    now: float,
    desired_now: int,
    running_now: bool,
    scalings: Iterable[tuple[float, int, int]],
    switches: Iterable[tuple[float, bool]],
) -> Points:
    """Desired replicas over [start, now] as steps: the count (from scaling records: time, from, to)
    while the app runs, 0 while it is stopped (from up/down switches: time, running)."""
    scalings = sorted(s for s in scalings if start <= s[0] <= now)
    switches = sorted(s for s in switches if start <= s[0] <= now)
    count = scalings[0][1] if scalings else desired_now
    running = (not switches[0][1]) if switches else running_now
    changes = sorted(
        [(t, 0, float(to)) for t, _from, to in scalings] + [(t, 1, float(on)) for t, on in switches]
    )
    points: Points = [(start, float(count if running else 0))]
    for when, kind, value in changes:
        before = count if running else 0
        if kind == 0:
            count = int(value)
        else:
            running = bool(value)
        after = count if running else 0
        if after != before:
            points += [(when, float(before)), (when, float(after))]
    points.append((now, float(count if running else 0)))
    return points
