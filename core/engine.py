"""Engine: the one facade every front end (console, API, CLI) drives.

Front ends never touch Docker, nginx or the database; they call these methods and subscribe to the
event bus.  The facade builds nothing itself (core.wiring does) and decides nothing itself: each
method delegates to one narrow service (core/services/).  Every method that changes state raises
``NotLeader`` on a node that does not hold the lease.  Errors are the typed ones of ``core.errors``;
nothing here blocks the event loop (the store and the Docker SDK run in threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

from core import __version__, presence
from core.backtest_runner import BacktestRun
from core.clock import SYSTEM_CLOCK, Clock
from core.cluster import LeadershipView, LeaseElection
from core.errors import NotLeader, OrchestryError, RuntimeUnavailable
from core.events import EventBus, EventLog
from core.health import Probe
from core.history import MetricSample
from core.lb.memory import MemoryNginx
from core.lb.nginx import NginxController
from core.metrics.collector import MetricsCollector
from core.models import (
    APP_STOPPED,
    AppSeries,
    AppView,
    Event,
    Overview,
    RegisterPreview,
    RolloutView,
    ScaleResult,
    ScalingRecord,
    UpResult,
)
from core.nodes import DrainStarted, NodeService
from core.reconciler import Drained, Reconciler
from core.runtime.base import LogLine, NodeInfo, Runtime
from core.runtime.ports import PortAllocator
from core.scaling_loop import ScalingLoop
from core.secrets import SecretStore
from core.services.app_views import SERIES_SECONDS_MAX, AppListing
from core.services.desired_state import MAX_REPLICAS, load_document
from core.settings import Settings
from core.store import Store
from core.supervisor import Supervisor
from core.wiring import Components, Substitutes, build

__all__ = ["MAX_REPLICAS", "Engine", "load_document"]

log = logging.getLogger(__name__)


class Engine:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        probe: Probe | None = None,
        drained: Drained | None = None,
        nginx: NginxController | MemoryNginx | None = None,
        ports: PortAllocator | None = None,
    ) -> None:
        """``runtime``, ``clock``, ``probe``, ``drained``, ``nginx`` and ``ports`` replace the real
        collaborators (an in-memory runtime with its probe, a fake clock, a recording load balancer:
        tests and bench/); left out, the engine builds the Docker runtime and nginx from ``settings``."""
        self.settings = settings
        self.node_id = settings.node_id
        self.hostname = socket.gethostname()
        self.bus = EventBus()
        self.supervisor = Supervisor(on_error=self._background_failed)
        self._substitutes = Substitutes(
            runtime=runtime, clock=clock, probe=probe, drained=drained, nginx=nginx, ports=ports
        )
        self.started_at: float | None = None
        self._parts: Components | None = None
        self._stopping = False
        self._presence: Path | None = None

    # --- the components, for tests, bench/ and the support bundle; front ends use the methods ----
    # (they fail clearly when used before start)
    @property
    def _c(self) -> Components:
        assert self._parts is not None, "Engine.start() was not called"
        return self._parts

    @property
    def _reconciler(self) -> Reconciler | None:
        """None once stopped (tests check that quitting the console stopped its engine)."""
        return self._parts.reconciler if self._parts is not None else None

    @property
    def store(self) -> Store:
        return self._c.store

    @property
    def runtime(self) -> Runtime:
        return self._c.runtime

    @property
    def event_log(self) -> EventLog:
        return self._c.event_log

    @property
    def secrets(self) -> SecretStore:
        return self._c.secrets

    @property
    def nginx(self) -> NginxController | MemoryNginx:
        return self._c.nginx

    @property
    def cluster(self) -> LeaseElection:
        return self._c.cluster

    @property
    def reconciler(self) -> Reconciler:
        return self._c.reconciler

    @property
    def metrics(self) -> MetricsCollector:
        return self._c.metrics

    @property
    def scaling(self) -> ScalingLoop:
        return self._c.scaling

    @property
    def runtime_error(self) -> str:
        """Why Docker does not answer; "" while it does."""
        return self._parts.watch.runtime_error if self._parts is not None else ""

    async def emit(
        self,
        category: str,
        kind: str,
        message: str,
        app: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        return await self.event_log.emit(category, kind, message, app=app, details=details)

    # --- lifecycle of the engine itself -------------------------------------------------------
    async def start(self) -> None:
        """Upgrade the store, start nginx, the election, the reconciler, health, metrics, scaler."""
        # Taken first: winning the election below already starts every app's pass, which adopts the
        # running replicas and says so, while start still waits (on Docker's ping, at load): every
        # event this engine emits must be at or after its started_at, or "events since it started"
        # misses the adoption.
        began = time.time()
        parts = self._parts = await build(self.settings, self.bus, self._substitutes)
        watch = parts.watch
        # Only the lease holder drives nginx: it starts in standby and the leadership watch takes it
        # over when this node wins a term (nodes on one host share the prefix, so the leader's nginx is
        # adopted through its pid file, even after its owner died with kill -9).
        await parts.nginx.start(active=False)
        try:
            await parts.cluster.step()
        except OrchestryError:
            with contextlib.suppress(OrchestryError):
                await parts.cluster.release()  # a peer need not wait out the lease we cannot use
            raise
        try:
            await parts.runtime.ping()
        except RuntimeUnavailable as exc:
            await watch.runtime_state(str(exc))
        self.started_at = began
        watch.started = True
        # Named by `orchestry stop` and by a second controller whose nginx finds the LB port taken.
        settings = self.settings
        self._presence = await asyncio.to_thread(
            presence.announce, settings.state_dir, self.node_id, settings.api_url, settings.lb_listen
        )
        # Listed among the cluster's nodes before start returns: an overview asked for at once shows it.
        await parts.cluster.beat()
        sup = self.supervisor
        sup.start("cluster.election", parts.cluster.run)
        sup.start("cluster.heartbeat", parts.cluster.heartbeat)
        sup.start("runtime.events", watch.consume_runtime_events)
        sup.start("runtime.watchdog", watch.watch_runtime)
        sup.start("nginx.watchdog", parts.nginx.watch)
        sup.start("metrics", parts.metrics.run)
        sup.start("scaler", parts.scaling.run)
        sup.start("apps.watch", watch.watch_apps)
        sup.start("nodes.watch", parts.nodes.watch)
        await watch.ensure_workers()
        # The view, not cluster.term: a follower holds no term of its own (None), but follows the lease's.
        view = parts.cluster.view()
        role = view.state
        if not view.leading and view.leader_id is not None:
            role = f"{view.state} of {view.leader_id}"
        role = f"{role}, term {view.term}" if view.term is not None else f"{role}, no term yet"
        await self.emit(
            "lifecycle",
            "engine_started",
            f"engine {__version__} started on node {self.node_id} ({role})",
            details={"node_id": self.node_id, "lb": self.settings.lb_listen},
        )

    async def advertise_api(self, api_url: str) -> None:
        """Where the front end serves this node's API ("" when it could not): the engine starts before
        the API binds, announcing the configured address, which another process may hold."""
        parts = self._parts
        if parts is None or api_url == parts.cluster.api_url:
            return
        await parts.cluster.advertise(api_url)
        settings = self.settings
        self._presence = await asyncio.to_thread(
            presence.announce, settings.state_dir, self.node_id, api_url, settings.lb_listen
        )

    async def stop(
        self, stop_apps: bool = False, release_lease: bool = True, stop_nginx: bool | None = None
    ) -> str:
        """Stop background tasks; containers keep running and nginx keeps serving unless told.

        ``stop_apps`` stops every app's replicas (force) and, unless ``stop_nginx`` says otherwise, nginx.
        Returns "" once done as asked, else why the apps were left running (and nginx with them).
        """
        parts = self._parts
        if parts is None:
            return ""
        self._stopping = True
        if stop_nginx is None:
            stop_nginx = stop_apps
        left_running = await self._stop_apps(parts) if stop_apps else ""
        await self.supervisor.stop()
        await parts.reconciler.close()
        # A node that does not lead now (it released its lease a moment ago, or lost it) still ends the
        # nginx it started, unless a peer holds the lease: nodes on one host share the prefix, so the
        # peer has adopted that master and serves with it. Apps left running keep their routes: no
        # half-applied stop that leaves replicas up behind a stopped load balancer.
        if stop_nginx and (
            left_running or (not parts.cluster.is_leader() and await parts.cluster.held_by_peer())
        ):
            stop_nginx = False
        # Before the lease goes: pending route changes are applied (or nginx stopped) while we lead.
        await parts.nginx.stop(keep_serving=not stop_nginx)
        if release_lease:
            try:
                await parts.cluster.release()
            except OrchestryError as exc:
                log.warning("could not release the lease: %s", exc)
            # A clean quit (not one that keeps the lease, as if killed): off the node list at once,
            # instead of a row shown down until ORCHESTRY_NODE_RETENTION prunes it.
            await parts.cluster.leave()
        await parts.runtime.close()
        await asyncio.to_thread(parts.store.close)
        self._parts = None
        self._stopping = False
        await asyncio.to_thread(presence.withdraw, self._presence)
        return left_running

    async def _stop_apps(self, parts: Components) -> str:
        """Stop every app as the leader does; "" once done, else why the apps were left running.

        A node that stepped down a moment ago sits out the next election, and one that follows may find
        the lease free: the user's explicit stop wins over the sit-out, so it takes the lease back and
        stops the apps itself, every write fenced by its new term. A peer that holds the lease keeps the
        apps: they are its to run, and the note says so rather than quitting as if they had stopped."""
        cluster = parts.cluster
        if not await cluster.reclaim():
            lease = cluster.lease
            if cluster.last_error or lease is None:
                why = f"this node could not take the lease to stop them ({cluster.last_error or 'no lease'})"
            else:
                why = f"node {lease.leader_id} leads (term {lease.term}) and runs them"
            note = f"apps left running: {why}; stop them on the leader"
            log.warning("%s", note)
            return note
        for record in await parts.store.read(parts.store.apps.list):
            if record.status != APP_STOPPED:
                try:
                    await parts.desired.down(record.name, force=True)
                except OrchestryError as exc:
                    log.warning("could not stop %s: %s", record.name, exc)
        return ""

    async def _background_failed(self, name: str, exc: BaseException, delay: float) -> None:
        if self._parts is not None:
            await self.emit(
                "error",
                "task_failed",
                f"background task {name} failed ({type(exc).__name__}: {exc}); restarting in {delay:.0f} s",
            )

    # --- apps: commands -----------------------------------------------------------------------
    async def register(
        self, document: dict[str, Any] | str | bytes, update: bool = True
    ) -> tuple[AppView, bool]:
        """Validate then store atomically.  Returns (view, created).  A running app rolls to the new spec.

        ``update=False`` refuses to change an app that exists (Conflict)."""
        name, created = await self._c.desired.register(document, update=update)
        return await self.get_app(name), created

    async def preview_register(self, document: dict[str, Any] | str | bytes) -> RegisterPreview:
        """A dry run of register and up: also whether the spec's image could start a replica, so that
        `orchestry apply` refuses before registering an app that `up` could not start."""
        preview = await self._c.desired.preview_register(document)
        try:
            available = await self._c.runtime.image_available(preview.image)
        except RuntimeUnavailable:
            available = True  # cannot tell while Docker is away; `up` says so itself
        if not available:
            engine = "the Swarm's registry" if self.settings.runtime == "swarm" else "this Docker engine"
            preview.image_problem = (
                f"spec.image '{preview.image}' is not on {engine} and no registry it can reach has it: "
                "build, pull or load it (`docker images` lists the images there), or fix spec.image"
            )
        return preview

    async def up(self, name: str) -> UpResult:
        return await self._c.desired.up(name)

    async def down(self, name: str, force: bool = False) -> int:
        """Returns the number of containers stopped; ``force`` skips the drain and the grace period."""
        return await self._c.desired.down(name, force=force)

    async def delete(self, name: str) -> None:
        await self._c.desired.delete(name)

    async def scale(self, name: str, replicas: int, reason: str = "") -> ScaleResult:
        return await self._c.desired.scale(name, replicas, reason)

    async def restart(self, name: str, slot: int | None = None) -> list[int]:
        return await self._c.desired.restart(name, slot)

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return await self._c.desired.set_policy(name, changes)

    async def set_mode(self, name: str, mode: str) -> dict[str, Any]:
        return await self.set_policy(name, {"mode": mode})

    async def clear_instances(self, name: str) -> None:
        await self._c.desired.clear_instances(name)

    # --- apps: reads --------------------------------------------------------------------------
    async def get_app(self, name: str) -> AppView:
        """Status + describe: spec/raw redacted, replicas with live cpu/memory.  NotFound if unknown."""
        return await self._c.views.get_app(name)

    async def list_apps(self) -> list[AppView]:
        return await self._c.views.list_apps()

    async def listed_apps(self) -> AppListing | None:
        """Every app of ``list_apps`` with a key of what its list entry shows (records, statuses,
        ready counts) and its view on demand; None when that cannot be told without the store (a
        follower).  Reads the store only when the leader's kept records are out of date."""
        return await self._parts.views.listed_apps() if self._parts is not None else None

    async def rollout(self, name: str) -> RolloutView:
        return await self._c.views.rollout(name)

    async def overview(self, detail: Collection[str] | None = None) -> Overview:
        """Every app with its latest figures (what a dashboard draws each tick).  ``detail``: the apps
        whose replicas the answer carries (the others as summaries, on the leader); None: every app's."""
        return await self._c.views.overview(detail)

    def live_app(self, name: str) -> AppView | None:
        """The app's view (replicas and current figures) if the leader can build it without waiting."""
        return self._c.views.live_app(name)

    async def series(self, name: str, seconds: int = 300) -> AppSeries:
        """Chart history of one app over the last ``seconds`` (at most SERIES_SECONDS_MAX)."""
        return await self._c.views.series(name, min(seconds, SERIES_SECONDS_MAX))

    # --- observation --------------------------------------------------------------------------
    async def events(
        self,
        app: str | None = None,
        category: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Newest first."""
        return await self.event_log.query(app=app, category=category, since=since, limit=limit)

    def subscribe(self, app: str | None = None) -> Any:
        return self.bus.subscribe(app=app)

    async def logs(
        self, name: str, tail: int | None = 100, since: float | None = None, until: float | None = None
    ) -> list[LogLine]:
        """Merged across replicas, oldest first."""
        return await self._c.logs.logs(name, tail=tail, since=since, until=until)

    def follow_logs(
        self, name: str, tail: int | None = 10, since: float | None = None
    ) -> AsyncIterator[LogLine]:
        """The last ``tail`` lines (since ``since``), then new lines as they come, from replicas as they
        come and go."""
        return self._c.logs.follow_logs(name, tail=tail, since=since)

    async def app_metrics(self, name: str) -> dict[str, Any]:
        record = await self._c.views.app_record(name)
        return self.scaling.metrics_view(record, self.reconciler.spec_of(record))

    async def backtest(
        self, name: str, changes: dict[str, Any] | None = None, since: Any = None, trace: Any = None
    ) -> BacktestRun:
        """What the app's policy, and the policy with ``changes``, would have done over its recorded
        load of the last ``since`` seconds (or a synthetic ``trace``); changes nothing."""
        record = await self._c.views.app_record(name)
        policy = self.reconciler.spec_of(record).scaling
        return await self._c.backtests.run(name, policy, changes, since, trace)

    async def metric_history(self, name: str, since: float, until: float | None = None) -> list[MetricSample]:
        """The app's recorded figures per period (core/history.py) ending in [since, until], oldest first."""
        return await self._c.views.metric_history(name, since, until)

    async def scaling_history(self, name: str, limit: int = 50) -> list[ScalingRecord]:
        await self._c.views.app_record(name)
        return await self.store.read(self.store.scaling.list, name, limit)

    async def simulate_metrics(
        self, name: str, sample: dict[str, Any], evaluate: bool = True
    ) -> dict[str, Any]:
        record = await self._c.views.app_record(name)
        return await self.scaling.simulate(record, self.reconciler.spec_of(record), sample, evaluate)

    async def cluster_metrics(self) -> dict[str, Any]:
        return await self._c.status.cluster_metrics()

    # --- cluster / node -----------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """Fast: never waits on Docker.  The database check is bounded by a short timeout."""
        return await self._c.status.health()

    async def cluster_status(self) -> dict[str, Any]:
        return await self._c.status.cluster_status()

    # --- nodes ---------------------------------------------------------------------------------
    @property
    def node_service(self) -> NodeService:
        return self._c.nodes

    async def nodes(self) -> list[NodeInfo]:
        """The runtime's nodes (one for a single Docker host) with this installation's use of each."""
        return await self.node_service.list()

    async def drain_node(self, node: str) -> DrainStarted:
        """Move this installation's replicas off ``node`` (new ones ready and routed first), then let
        Swarm drain it; returns at once, events say when it is done."""
        self._require_leader()
        return await self.node_service.drain(node)

    async def activate_node(self, node: str) -> NodeInfo:
        self._require_leader()
        return await self.node_service.activate(node)

    @property
    def serving(self) -> bool:
        """Whether the front ends may use this engine: started, and stop() has not begun (from then on
        its store, runtime and lease go away one by one)."""
        return self._parts is not None and not self._stopping

    def is_leader(self) -> bool:
        """Whether this node holds the lease now (a local check: free to call often)."""
        return self.cluster.is_leader()

    def not_leader(self) -> NotLeader:
        """The refusal of a change on this node, naming the leader (503 + X-Current-Leader)."""
        return self.cluster.not_leader()

    def leadership(self) -> LeadershipView:
        """Who leads, as this node sees it now."""
        return self.cluster.view()

    def _require_leader(self) -> None:
        if not self.is_leader():
            raise self.not_leader()

    async def cluster_overview(self) -> dict[str, Any]:
        """Every controller (state, heartbeat age, database, version), the lease and the term history."""
        return await self._c.status.cluster_overview()

    async def release_leadership(self) -> None:
        self._require_leader()
        await self.cluster.release()

    # --- secrets ------------------------------------------------------------------------------
    async def set_secret(self, name: str, fields: dict[str, str]) -> list[str]:
        return await self._c.secret_commands.set_secret(name, fields)

    async def secret_fields(self, name: str) -> list[str]:
        return await self._c.secret_commands.secret_fields(name)

    async def list_secrets(self) -> dict[str, list[str]]:
        return await self._c.secret_commands.list_secrets()

    async def delete_secret(self, name: str) -> None:
        await self._c.secret_commands.delete_secret(name)

    # --- diagnostics --------------------------------------------------------------------------
    async def diagnostic_snapshot(self) -> bytes:
        """The support bundle: a .tar.gz that answers the troubleshooting guide (secrets redacted)."""
        from core.diagnostics import build_snapshot

        return await build_snapshot(self)
