"""Engine: the one facade every front end (console, API, CLI) drives.

Front ends never touch Docker, nginx or the database; they call these methods and subscribe to the
event bus.  Every method that changes state raises ``NotLeader`` on a node that does not hold the
lease.  Errors are the typed ones of ``core.errors``; nothing here blocks the event loop (the store
and the Docker SDK run in threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from core import __version__, presence, recent_log
from core.backtest_runner import BacktestRun, BacktestRunner
from core.clock import SYSTEM_CLOCK, Clock
from core.cluster import LEADER, LeaseElection
from core.documents import read_document
from core.errors import (
    AppBlocked,
    BadRequest,
    Conflict,
    NotFound,
    OrchestryError,
    RuntimeUnavailable,
    SpecError,
)
from core.events import EventBus, EventLog
from core.health import Probe
from core.history import MetricSample
from core.lb.memory import MemoryNginx
from core.lb.nginx import NginxController
from core.metrics import instruments
from core.metrics.collector import MetricsCollector, ReplicaTarget
from core.metrics.history import MetricHistoryRecorder
from core.models import (
    APP_RUNNING,
    APP_STOPPED,
    AppView,
    Event,
    MissingSecret,
    RegisterPreview,
    ReplicaView,
    RolloutReplica,
    RolloutView,
    ScaleResult,
    ScalingRecord,
    UpResult,
)
from core.nodes import DrainStarted, NodeService
from core.reconciler import Drained, Reconciler, ReconcilerConfig
from core.redaction import default_redactor, register_controller_secrets
from core.routing import NginxRouter
from core.runtime.base import LogLine, NodeInfo, Runtime
from core.runtime.ports import PortAllocator
from core.scaling_loop import ScalingLoop
from core.secrets import SecretStore, load_or_create_key
from core.settings import Settings
from core.spec import AppSpec, parse_app_spec, redact_document, validate_policy_update
from core.store import AppRecord, Store
from core.supervisor import Supervisor

log = logging.getLogger(__name__)

MAX_REPLICAS = 100


def load_document(document: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """YAML or JSON text (through the guarded door of core.documents) or a dict → dict; SpecError else."""
    if isinstance(document, dict):
        return document
    loaded = read_document(document, "the app spec")
    if not isinstance(loaded, dict):
        raise SpecError("the app spec must be a mapping with metadata and spec: see examples/web.yml")
    return loaded


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
        self._clock = clock
        self._probe = probe
        self._drained = drained
        self._nginx_override = nginx
        self._ports = ports
        self.node_id = settings.node_id
        self.hostname = socket.gethostname()
        self.bus = EventBus()
        self.supervisor = Supervisor(on_error=self._background_failed)
        self._runtime_override = runtime
        self.started_at: float | None = None
        self._store: Store | None = None
        self._runtime: Runtime | None = None
        self._events: EventLog | None = None
        self._secrets: SecretStore | None = None
        self._nginx: NginxController | MemoryNginx | None = None
        self._cluster: LeaseElection | None = None
        self._reconciler: Reconciler | None = None
        self._metrics: MetricsCollector | None = None
        self._scaling: ScalingLoop | None = None
        self._backtests: BacktestRunner | None = None
        self._nodes: NodeService | None = None
        self.runtime_error: str = ""
        self._presence: Path | None = None
        self._redaction_cache: dict[tuple[str, str, str, float], dict[str, Any]] = {}

    # --- wiring (properties fail clearly when used before start) ------------------------------
    @property
    def store(self) -> Store:
        assert self._store is not None, "Engine.start() was not called"
        return self._store

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "Engine.start() was not called"
        return self._runtime

    @property
    def event_log(self) -> EventLog:
        assert self._events is not None, "Engine.start() was not called"
        return self._events

    @property
    def secrets(self) -> SecretStore:
        assert self._secrets is not None, "Engine.start() was not called"
        return self._secrets

    @property
    def nginx(self) -> NginxController | MemoryNginx:
        assert self._nginx is not None, "Engine.start() was not called"
        return self._nginx

    @property
    def cluster(self) -> LeaseElection:
        assert self._cluster is not None, "Engine.start() was not called"
        return self._cluster

    @property
    def reconciler(self) -> Reconciler:
        assert self._reconciler is not None, "Engine.start() was not called"
        return self._reconciler

    @property
    def metrics(self) -> MetricsCollector:
        assert self._metrics is not None, "Engine.start() was not called"
        return self._metrics

    @property
    def scaling(self) -> ScalingLoop:
        assert self._scaling is not None, "Engine.start() was not called"
        return self._scaling

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
        settings = self.settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        recent_log.install()  # the support bundle's controller.log
        self._store = await asyncio.to_thread(Store.open, settings.database_url)
        self._events = EventLog(self.bus, self._store, default_redactor)
        secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
        key = await asyncio.to_thread(load_or_create_key, settings.state_dir, secret_key)
        token = settings.api_token.get_secret_value() if settings.api_token else None
        register_controller_secrets(default_redactor, settings.database_url, token, key)
        self._secrets = SecretStore(self._store, key, default_redactor)
        await asyncio.to_thread(self._secrets.register_all)
        if self._runtime_override is not None:
            self._runtime = self._runtime_override
        else:
            from core.runtime.docker import DockerRuntime

            self._runtime = DockerRuntime(settings.docker_url)
        # Label new containers with this cluster's id and leave other installations' alone.
        self._runtime.cluster_id = await asyncio.to_thread(self._store.identity.cluster_id)
        self._nginx = self._nginx_override or NginxController(
            prefix=settings.state_dir / "nginx",
            listen_host=settings.lb_host,
            listen_port=settings.lb_port,
            domain=settings.domain,
            nginx_binary=settings.nginx_binary,
            external_conf_dir=settings.nginx_conf_dir,
            reload_command=settings.nginx_reload_command,
            on_event=self._nginx_event,
            may_act=self._leads,
        )
        self._cluster = LeaseElection(
            self._store, self.node_id, settings.api_url, settings.lease_ttl, on_change=self._cluster_changed
        )
        access_log = self._nginx.access_log_path or settings.state_dir / "external-nginx-access.log"
        self._metrics = MetricsCollector(
            self._runtime, access_log, interval=settings.metrics_interval, clock=self._clock.time
        )
        self._reconciler = Reconciler(
            runtime=self._runtime,
            store=self._store,
            emit=self.emit,
            router=NginxRouter(self._nginx),
            leadership=self._cluster,
            ports=self._ports or PortAllocator(),
            resolve_secret=self._secrets.resolve,
            config=ReconcilerConfig(
                network_mode=settings.network_mode,
                drain_timeout=settings.drain_timeout,
                relist_interval=settings.relist_interval,
            ),
            on_replicas_changed=self._replicas_changed,
            on_runtime_state=self._runtime_state,
            clock=self._clock,
            probe=self._probe,
            drained=self._drained,
        )
        history = MetricHistoryRecorder(
            self._store.history,
            self._metrics.take_period,
            settings.scaler_interval,
            settings.metrics_retention,
        )
        self._scaling = ScalingLoop(self, interval=settings.scaler_interval, history=history)
        self._nodes = NodeService(self._runtime, self._reconciler, self._metrics, self.emit, self._leads)
        self._backtests = BacktestRunner(
            self._store.history, settings.scaler_interval, settings.metrics_retention
        )
        # Only the lease holder drives nginx: it starts in standby and _cluster_changed takes it over
        # when this node wins a term (nodes on one host share the prefix, so the leader's nginx is
        # adopted through its pid file, even after its owner died with kill -9).
        await self._nginx.start(active=False)
        try:
            await self._cluster.step()
        except OrchestryError:
            with contextlib.suppress(OrchestryError):
                await self._cluster.release()  # a peer need not wait out the lease we cannot use
            raise
        try:
            await self._runtime.ping()
        except RuntimeUnavailable as exc:
            await self._runtime_state(str(exc))
        self.started_at = time.time()
        # Named by `orchestry stop` and by a second controller whose nginx finds the LB port taken.
        self._presence = await asyncio.to_thread(
            presence.announce, settings.state_dir, self.node_id, settings.api_url, settings.lb_listen
        )
        sup = self.supervisor
        sup.start("cluster.election", self._cluster.run)
        sup.start("cluster.heartbeat", self._cluster.heartbeat)
        sup.start("runtime.events", self._consume_runtime_events)
        sup.start("runtime.watchdog", self._watch_runtime)
        sup.start("nginx.watchdog", self._nginx.watch)
        sup.start("metrics", self._metrics.run)
        sup.start("scaler", self._scaling.run)
        sup.start("apps.watch", self._watch_apps)
        sup.start("nodes.watch", self._nodes.watch)
        await self._ensure_workers()
        await self.emit(
            "lifecycle",
            "engine_started",
            f"engine {__version__} started on node {self.node_id} "
            f"({self.cluster.state}, term {self.cluster.term})",
            details={"node_id": self.node_id, "lb": settings.lb_listen},
        )

    async def stop(
        self, stop_apps: bool = False, release_lease: bool = True, stop_nginx: bool | None = None
    ) -> None:
        """Stop background tasks; containers keep running and nginx keeps serving unless told.

        ``stop_apps`` stops every app's replicas (force) and, unless ``stop_nginx`` says otherwise, nginx.
        """
        if self._reconciler is None:
            return
        if stop_nginx is None:
            stop_nginx = stop_apps
        if stop_apps and self.cluster.is_leader():
            for record in await asyncio.to_thread(self.store.apps.list):
                if record.status != APP_STOPPED:
                    try:
                        await self.down(record.name, force=True)
                    except OrchestryError as exc:
                        log.warning("could not stop %s: %s", record.name, exc)
        await self.supervisor.stop()
        await self.reconciler.close()
        # Before the lease goes: pending route changes are applied (or nginx stopped) while we lead.
        await self.nginx.stop(keep_serving=not stop_nginx)
        if release_lease and self._cluster is not None:
            try:
                await self.cluster.release()
            except OrchestryError as exc:
                log.warning("could not release the lease: %s", exc)
        await self.runtime.close()
        await asyncio.to_thread(self.store.close)
        self._reconciler = None
        await asyncio.to_thread(presence.withdraw, self._presence)

    async def _background_failed(self, name: str, exc: BaseException, delay: float) -> None:
        if self._events is not None:
            await self.emit(
                "error",
                "task_failed",
                f"background task {name} failed ({type(exc).__name__}: {exc}); restarting in {delay:.0f} s",
            )

    async def _nginx_event(self, category: str, kind: str, message: str, details: dict[str, Any]) -> None:
        await self.emit(category, kind, message, details=details)

    async def _cluster_changed(self, state: str, why: str, details: dict[str, Any]) -> None:
        if self._events is not None:
            await self.emit(
                "cluster", f"became_{state}", f"node {self.node_id} is now {state}: {why}", details=details
            )
        if state != LEADER:
            await self.nginx.stand_by()
            self._forget_replicas()
            return
        try:
            await self.nginx.activate()
        except OrchestryError as exc:
            if self.started_at is None:
                raise  # start() fails with nginx's reason, as a lone node always did
            await self.emit(
                "error",
                "nginx_takeover_failed",
                f"node {self.node_id} leads but could not take over nginx ({exc}); its watchdog retries",
            )
        if self._reconciler is not None:
            await self._ensure_workers()
            self.reconciler.wake_all()

    def _leads(self) -> bool:
        return self._cluster is not None and self._cluster.is_leader()

    def _forget_replicas(self) -> None:
        """A node that stopped leading keeps no view of the replicas: it stops probing them (a follower
        must not announce health changes beside the leader), and a term it wins later adopts them
        afresh from Docker instead of trusting what it saw before."""
        if self._reconciler is None:
            return
        for state in self.reconciler.apps.values():
            for container_id in list(state.replicas):
                self.reconciler.health.untrack(container_id)
            state.replicas.clear()
            state.stopping.clear()
            state.routed_once = False

    async def _ensure_workers(self) -> None:
        for record in await asyncio.to_thread(self.store.apps.list):
            self.reconciler.ensure_worker(record.name)

    async def _watch_apps(self) -> None:
        """Safety net: every app in the store has a worker (a new leader picks up apps a peer added)."""
        while True:
            await asyncio.sleep(max(1.0, self.settings.relist_interval / 3))
            if self.cluster.is_leader():
                await self._ensure_workers()

    async def _watch_runtime(self) -> None:
        """Keep trying an unreachable Docker engine with backoff and say so once, not in a loop."""
        delay = 1.0
        while True:
            try:
                await self.runtime.ping()
                await self._runtime_state("")
                delay = 5.0
            except RuntimeUnavailable as exc:
                await self._runtime_state(str(exc))
                delay = min(30.0, delay * 2)
            await asyncio.sleep(delay)

    async def _runtime_state(self, reason: str) -> None:
        """Docker does not answer (``reason``) or answers again (""), as found by the watchdog, the
        reconciler or the events stream: one event per transition, however many of them notice."""
        if reason:
            if not self.runtime_error:
                log.warning("Docker engine unreachable: %s", reason)
                self.runtime_error = reason
                await self.emit("error", "docker_unreachable", reason)
                self.reconciler.wake_all()  # each app's pass finds out and its status says why
            else:
                self.runtime_error = reason  # the same outage, perhaps worded differently
        elif self.runtime_error:
            self.runtime_error = ""
            log.info("Docker engine is reachable again")
            await self.emit("lifecycle", "docker_reachable", "Docker engine is reachable again")
            self.reconciler.wake_all()

    async def _consume_runtime_events(self) -> None:
        async for event in self.runtime.events():
            if event.action == "reconnected":
                await self._runtime_state("")  # the stream reopened: Docker answers
                self.reconciler.wake_all()  # and events were missed: every app relists
                continue
            if event.app not in self.reconciler.apps:
                continue
            if event.action in ("die", "oom", "kill", "stop", "destroy"):
                await self.reconciler.on_container_died(event.app, event.container_id)

    def _replicas_changed(self, app: str) -> None:
        state = self.reconciler.apps.get(app)
        if state is None:
            self.metrics.forget(app)
            return
        self.metrics.set_targets(
            app,
            [
                ReplicaTarget(
                    slot=r.slot,
                    container_id=r.container_id,
                    host=r.host,
                    port=r.port,
                    ready=r.ready,
                    cpu_limit_millis=None,
                )
                for r in state.replicas.values()
                if not r.draining
            ],
        )

    # --- helpers -------------------------------------------------------------------------------
    def _require_leader(self) -> None:
        if not self.cluster.is_leader():
            raise self.cluster.not_leader()

    async def _record(self, name: str) -> AppRecord:
        record = await asyncio.to_thread(self.store.apps.get, name)
        if record is None:
            raise NotFound(f"app '{name}' is not registered: register it first (orchestry register FILE)")
        return record

    def _spec(self, record: AppRecord) -> AppSpec:
        return self.reconciler.spec_of(record)

    # --- apps ---------------------------------------------------------------------------------
    async def register(
        self, document: dict[str, Any] | str | bytes, replace: bool = True
    ) -> tuple[AppView, bool]:
        """Validate then store atomically.  Returns (view, created).  A running app rolls to the new spec."""
        raw = load_document(document)
        spec = parse_app_spec(raw)
        self._require_leader()
        doc = spec.to_document()
        existing = await asyncio.to_thread(self.store.apps.get, spec.name)
        if existing is not None and not replace:
            raise Conflict(
                f"app '{spec.name}' already exists: use ?replace=true (or `orchestry register`) to update it"
            )
        policy = doc.get("scaling", {})
        bounds = (spec.scaling.min_replicas, spec.scaling.max_replicas)
        if existing is None:
            record = AppRecord(
                name=spec.name,
                spec=doc,
                raw=raw,
                spec_hash=spec.spec_hash(),
                status=APP_STOPPED,
                mode=spec.scaling.mode,
                desired_replicas=min(max(1, bounds[0]), bounds[1]),
                policy=policy,
            )
            try:
                await asyncio.to_thread(self.store.apps.create, record)
            except Conflict:
                if not replace:
                    raise
                existing = await asyncio.to_thread(self.store.apps.get, spec.name)
        if existing is not None:
            desired = existing.desired_replicas
            if spec.scaling.mode == "auto":
                desired = min(max(desired, bounds[0]), bounds[1])
            record = replace_record(
                existing,
                spec=doc,
                raw=raw,
                spec_hash=spec.spec_hash(),
                mode=spec.scaling.mode,
                desired_replicas=desired,
                policy=policy,
            )
            await asyncio.to_thread(self.store.apps.save, record)
        created = existing is None
        rolling = not created and existing is not None and existing.spec.get("spec") != doc.get("spec")
        await self.emit(
            "lifecycle",
            "app_registered" if created else "app_updated",
            f"registered {spec.name}"
            if created
            else f"updated {spec.name}"
            + (
                " (replicas roll to the new spec)"
                if rolling and existing and existing.status != APP_STOPPED
                else ""
            ),
            app=spec.name,
            details={"spec_hash": spec.spec_hash()[:12]},
        )
        self.reconciler.unblock(spec.name)
        self.reconciler.ensure_worker(spec.name)
        self.reconciler.wake(spec.name)
        return await self.get_app(spec.name), created

    async def preview_register(self, document: dict[str, Any] | str | bytes) -> RegisterPreview:
        """What ``register`` then ``up`` would meet, changing nothing: the same validation and errors,
        whether the app would be created, updated or left unchanged, and the secrets ``up`` would miss."""
        spec = parse_app_spec(load_document(document))
        existing = await asyncio.to_thread(self.store.apps.get, spec.name)
        if existing is None:
            change = "created"
        else:
            change = "unchanged" if existing.spec_hash == spec.spec_hash() else "updated"
        missing = [
            MissingSecret(var.name, var.key or "", var.field or "")
            for var in spec.container.environment
            if var.source == "secret"
            and not await asyncio.to_thread(self.secrets.exists, var.key or "", var.field or "")
        ]
        return RegisterPreview(
            app=spec.name,
            change=change,
            spec_hash=spec.spec_hash(),
            missing_secrets=missing,
        )

    async def up(self, name: str) -> UpResult:
        self._require_leader()
        record = await self._record(name)
        spec = self._spec(record)
        for var in spec.container.environment:
            if var.source == "secret":
                await asyncio.to_thread(self.secrets.resolve, var.key or "", var.field or "")
        desired = record.desired_replicas
        if spec.scaling.mode == "auto":
            desired = min(max(desired, spec.scaling.min_replicas), spec.scaling.max_replicas)
        self.reconciler.unblock(name)
        self.reconciler.state(name).force_stop = False
        await asyncio.to_thread(
            self.store.apps.update,
            name,
            status=APP_RUNNING,
            status_reason="starting",
            desired_replicas=desired,
        )
        if record.status == APP_STOPPED:
            await self.emit("lifecycle", "app_up", f"{name} is starting with {desired} replica(s)", app=name)
        result = await self.reconciler.reconcile_now(name)
        state = self.reconciler.apps.get(name)
        if state is not None and state.blocked:
            raise AppBlocked(state.blocked)
        return UpResult(
            app=name, replicas=desired, adopted=result.get("adopted", 0), started=result.get("started", 0)
        )

    async def down(self, name: str, force: bool = False) -> int:
        """Returns the number of containers stopped."""
        self._require_leader()
        record = await self._record(name)
        self.reconciler.state(name).force_stop = force
        await asyncio.to_thread(
            self.store.apps.update, name, status=APP_STOPPED, status_reason="stopped by the operator"
        )
        if record.status != APP_STOPPED:
            await self.emit(
                "lifecycle", "app_down", f"{name} is stopping" + (" (forced)" if force else ""), app=name
            )
        result = await self.reconciler.reconcile_now(name, timeout=self.settings.drain_timeout + 120)
        return result.get("stopped", 0)

    async def delete(self, name: str) -> None:
        self._require_leader()
        await self._record(name)
        self.reconciler.state(name).force_stop = True
        await asyncio.to_thread(self.store.apps.delete, name)
        await self.reconciler.reconcile_now(name, timeout=self.settings.drain_timeout + 120)
        self.metrics.forget(name)
        self.scaling.forget(name)
        instruments.forget_app(name)
        await self.emit("lifecycle", "app_deleted", f"deleted {name}", app=name)

    async def scale(self, name: str, replicas: int, reason: str = "") -> ScaleResult:
        self._require_leader()
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
            raise BadRequest(f"replicas must be an integer from 0 to {MAX_REPLICAS} (got {replicas!r})")
        record = await self._record(name)
        spec = self._spec(record)
        target, clamped, message = replicas, False, ""
        if record.mode == "auto":
            low, high = spec.scaling.min_replicas, spec.scaling.max_replicas
            target = min(max(replicas, low), high)
            if target != replicas:
                clamped = True
                message = (
                    f"{name} is in auto mode with minReplicas {low} and maxReplicas {high}: "
                    f"scaled to {target} instead of {replicas}; switch to manual mode "
                    f"(orchestry mode {name} manual) to go outside"
                )
        if target == record.desired_replicas:
            return ScaleResult(
                app=name,
                status="no_change",
                replicas=target,
                requested=replicas,
                clamped=clamped,
                message=message or f"{name} already has {target} desired replica(s)",
            )
        await self.apply_scale(
            name, record.desired_replicas, target, reason or f"manual scale to {target}", {}
        )
        return ScaleResult(
            app=name, status="scaled", replicas=target, requested=replicas, clamped=clamped, message=message
        )

    async def apply_scale(
        self, name: str, current: int, target: int, reason: str, metrics: dict[str, Any], auto: bool = False
    ) -> None:
        """Persist a new desired count (manual or automatic) with its history, then wake the worker."""
        now = await asyncio.to_thread(self.store.now)
        await asyncio.to_thread(self.store.apps.update, name, desired_replicas=target, last_scaled_at=now)
        await asyncio.to_thread(self.store.scaling.add, name, current, target, reason, metrics, now)
        instruments.SCALING_DECISIONS.inc(
            app=name,
            direction="up" if target > current else "down",
            metric=(metrics.get("deciding_metric") or "unknown") if auto else "manual",
        )
        await self.emit(
            "scaling",
            "scaled_auto" if auto else "scaled",
            f"{name}: {current} → {target} replicas ({reason})",
            app=name,
            details={"from": current, "to": target, "reason": reason, "auto": auto},
        )
        self.reconciler.wake(name)

    async def restart(self, name: str, slot: int | None = None) -> list[int]:
        """Rolling restart of every slot (or one).  Returns the slots restarted."""
        self._require_leader()
        record = await self._record(name)
        if record.status == APP_STOPPED:
            raise Conflict(
                f"app '{name}' is stopped: start it with `orchestry up {name}` instead of restarting"
            )
        state = self.reconciler.state(name)
        chosen = [r for r in state.live() if slot is None or r.slot == slot]
        if slot is not None and not chosen:
            slots = ", ".join(str(r.slot) for r in sorted(state.live(), key=lambda r: r.slot)) or "none"
            raise NotFound(f"app '{name}' has no replica in slot {slot}: its slots are {slots}")
        for replica in chosen:
            replica.restart_requested = True
        await self.emit(
            "lifecycle",
            "restart_requested",
            f"rolling restart of {name}" + (f" slot {slot}" if slot is not None else ""),
            app=name,
        )
        self.reconciler.wake(name)
        return sorted(r.slot for r in chosen)

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge scaling keys (camelCase as in API.md, ``mode`` included), validate, persist."""
        self._require_leader()
        if not isinstance(changes, dict):
            raise BadRequest('the policy must be a JSON object of scaling keys, e.g. {"maxReplicas": 8}')
        record = await self._record(name)
        spec = self._spec(record)
        policy = validate_policy_update(spec.scaling, changes)
        doc = dict(record.spec)
        new_spec = parse_app_spec({**doc, "scaling": policy.to_document()})
        new_doc = new_spec.to_document()
        desired = record.desired_replicas
        if policy.mode == "auto":
            desired = min(max(desired, policy.min_replicas), policy.max_replicas)
        await asyncio.to_thread(
            self.store.apps.update,
            name,
            spec=new_doc,
            spec_hash=new_spec.spec_hash(),
            policy=new_doc["scaling"],
            mode=policy.mode,
            desired_replicas=desired,
        )
        await self.emit(
            "scaling",
            "policy_updated",
            f"scaling policy of {name} updated: " + ", ".join(f"{k}={v}" for k, v in changes.items()),
            app=name,
            details={"changes": changes},
        )
        self.reconciler.wake(name)
        return new_doc["scaling"]

    async def set_mode(self, name: str, mode: str) -> dict[str, Any]:
        return await self.set_policy(name, {"mode": mode})

    async def clear_instances(self, name: str) -> None:
        self._require_leader()
        await self._record(name)
        state = self.reconciler.state(name)
        state.force_stop = True
        await self.reconciler.teardown_now(name)
        await asyncio.to_thread(self.store.instances.delete_app, name)
        await asyncio.to_thread(self.store.scaling.clear, name)
        self.metrics.forget(name)
        self.scaling.forget(name)
        self.reconciler.unblock(name)
        state.force_stop = False
        await self.emit(
            "lifecycle",
            "instances_cleared",
            f"runtime state of {name} cleared; replicas are recreated from the spec",
            app=name,
        )
        self.reconciler.wake(name)

    async def get_app(self, name: str) -> AppView:
        """Status + describe: spec/raw redacted, replicas with live cpu/memory.  NotFound if unknown."""
        record = await self._record(name)
        return await self._view(record)

    async def rollout(self, name: str) -> RolloutView:
        """How far the app's replicas are from its desired count and current container spec.

        Leader only: which container runs which spec (and which awaits a restart) is known to the
        reconciler, not mirrored into the store."""
        self._require_leader()
        record = await self._record(name)
        current = self._spec(record).container_hash()
        desired = record.desired_replicas if record.status != APP_STOPPED else 0
        state = self.reconciler.apps.get(name)
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
        status, reason = self.reconciler.compute_status(state, record, desired)
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

    async def list_apps(self) -> list[AppView]:
        records = await asyncio.to_thread(self.store.apps.list)
        return [await self._view(r) for r in records]

    def _redacted(self, record: AppRecord, which: str) -> dict[str, Any]:
        """Redacted copies are cached per spec hash: listing many apps must not deep-copy each spec."""
        key = (record.name, which, record.spec_hash, record.updated_at if which == "raw" else 0.0)
        cached = self._redaction_cache.get(key)
        if cached is None:
            if len(self._redaction_cache) > 4096:
                self._redaction_cache.clear()
            cached = redact_document(record.spec if which == "spec" else record.raw)
            self._redaction_cache[key] = cached
        return cached

    async def _view(self, record: AppRecord) -> AppView:
        state = self.reconciler.apps.get(record.name) if self._reconciler is not None else None
        if state is not None and self.cluster.is_leader():
            replicas = state.views(time.time())
        else:
            instances = await asyncio.to_thread(self.store.instances.list, record.name)
            replicas = [instance_view(record.name, i) for i in instances]
        if replicas and self._nodes is not None:
            for view in replicas:
                view.node = self._nodes.hostname_of(view.host)
        if replicas:
            latest = self.metrics.replica_metrics(record.name)
            for view in replicas:
                sample = latest.get(view.slot)
                if sample is not None:
                    view.cpu_percent = sample.cpu_percent
                    view.memory_percent = sample.memory_percent
        status, reason = record.status, record.status_reason
        if state is not None and self.cluster.is_leader():
            desired = record.desired_replicas if record.status != APP_STOPPED else 0
            status, reason = self.reconciler.compute_status(state, record, desired)
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
        await self._record(name)
        containers = await self.runtime.list_managed(name)
        batches = await asyncio.gather(
            *(self.runtime.logs(c.id, tail=tail, since=since, until=until) for c in containers),
            return_exceptions=True,
        )
        # A replica replaced between the listing and the read simply has no lines to add.
        lines = sorted(
            (line for batch in batches if not isinstance(batch, BaseException) for line in batch),
            key=lambda line: line.timestamp,
        )
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return [replace(line, message=default_redactor.redact(line.message)) for line in lines]

    async def follow_logs(self, name: str, tail: int | None = 10) -> AsyncIterator[LogLine]:
        """The last ``tail`` lines, then new lines as they come, from replicas as they come and go."""
        for line in await self.logs(name, tail=tail):
            yield line
        queue: asyncio.Queue[LogLine] = asyncio.Queue(maxsize=10_000)
        followers: dict[str, asyncio.Task[None]] = {}
        since = time.time()

        async def pump(container_id: str) -> None:
            async for line in self.runtime.follow_logs(container_id, since=since):
                await queue.put(replace(line, message=default_redactor.redact(line.message)))

        try:
            while True:
                if await asyncio.to_thread(self.store.apps.get, name) is None:
                    return
                for info in await self.runtime.list_managed(name):
                    task = followers.get(info.id)
                    if info.running and (task is None):
                        followers[info.id] = asyncio.create_task(pump(info.id))
                deadline = time.monotonic() + 1.0
                while (remaining := deadline - time.monotonic()) > 0:
                    try:
                        yield await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
        finally:
            for task in followers.values():
                task.cancel()
            await asyncio.gather(*followers.values(), return_exceptions=True)

    async def app_metrics(self, name: str) -> dict[str, Any]:
        record = await self._record(name)
        return self.scaling.metrics_view(record, self._spec(record))

    async def backtest(
        self, name: str, changes: dict[str, Any] | None = None, since: Any = None, trace: Any = None
    ) -> BacktestRun:
        """What the app's policy, and the policy with ``changes``, would have done over its recorded
        load of the last ``since`` seconds (or a synthetic ``trace``); changes nothing."""
        record = await self._record(name)
        assert self._backtests is not None, "Engine.start() was not called"
        return await self._backtests.run(name, self._spec(record).scaling, changes, since, trace)

    async def metric_history(self, name: str, since: float, until: float | None = None) -> list[MetricSample]:
        """The app's recorded figures per period (core/history.py) ending in [since, until], oldest first."""
        await self._record(name)
        return await asyncio.to_thread(self.store.history.range, name, since, until)

    async def scaling_history(self, name: str, limit: int = 50) -> list[ScalingRecord]:
        await self._record(name)
        return await asyncio.to_thread(self.store.scaling.list, name, limit)

    async def simulate_metrics(
        self, name: str, sample: dict[str, Any], evaluate: bool = True
    ) -> dict[str, Any]:
        record = await self._record(name)
        return await self.scaling.simulate(record, self._spec(record), sample, evaluate)

    async def cluster_metrics(self) -> dict[str, Any]:
        records = await asyncio.to_thread(self.store.apps.list)
        views = [await self._view(r) for r in records]
        replicas = [rep for v in views for rep in v.replicas if rep.container_id]
        return {
            "timestamp": time.time(),
            "apps": {"total": len(views), "running": sum(1 for v in views if v.status == APP_RUNNING)},
            "instances": {
                "total": len(replicas),
                "healthy": sum(1 for r in replicas if r.ready),
                "unhealthy": sum(1 for r in replicas if not r.ready),
            },
            "nginx": self.nginx.status(),
        }

    # --- cluster / node -----------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """Fast: never waits on Docker.  The database check is bounded by a short timeout."""
        database: dict[str, Any] = {"status": "ok"}
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), timeout=2.0)
        except (OrchestryError, TimeoutError) as exc:
            database = {"status": "error", "detail": str(exc) or "database did not answer within 2 s"}
        return {
            "status": "healthy" if database["status"] == "ok" else "degraded",
            "timestamp": time.time(),
            "version": __version__,
            "database": database,
            "node_id": self.node_id,
            "is_leader": self.cluster.is_leader(),
            "docker": {"status": "error", "detail": self.runtime_error}
            if self.runtime_error
            else {"status": "ok"},
        }

    async def cluster_status(self) -> dict[str, Any]:
        cluster = self.cluster
        nodes = await asyncio.to_thread(self.store.nodes.list)
        now = await asyncio.to_thread(self.store.now)
        stale_after = max(3.0, cluster.ttl)
        leader_id = cluster.leader_id
        lease = cluster.lease
        node_rows = [
            {
                "node_id": n.node_id,
                "hostname": n.hostname,
                "api_url": n.api_url,
                "state": "leader" if n.node_id == leader_id else "follower",
                "last_heartbeat": n.last_heartbeat,
                "is_healthy": now - n.last_heartbeat <= stale_after,
            }
            for n in nodes
        ]
        healthy = [n for n in node_rows if n["is_healthy"]]
        return {
            "node_id": self.node_id,
            "hostname": self.hostname,
            "state": cluster.state if cluster.state != LEADER or cluster.is_leader() else "candidate",
            "term": lease.term if lease else cluster.term,
            "is_leader": cluster.is_leader(),
            "leader_id": leader_id,
            "cluster_size": max(1, len(healthy)),
            "nodes": node_rows,
            "lease": None
            if lease is None
            else {
                "leader_id": lease.leader_id,
                "term": lease.term,
                "acquired_at": lease.acquired_at,
                "expires_at": lease.expires_at,
                "renewed_at": lease.renewed_at,
                "hostname": lease.hostname,
                "api_url": lease.api_url,
            },
            "election_status": cluster.last_error
            or ("leading" if cluster.is_leader() else f"following {leader_id}" if leader_id else "no leader"),
            "clustering": "enabled" if len(node_rows) > 1 else "disabled",
            "api_url": self.settings.api_url,
        }

    # --- nodes ---------------------------------------------------------------------------------
    @property
    def node_service(self) -> NodeService:
        assert self._nodes is not None, "Engine.start() was not called"
        return self._nodes

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

    async def release_leadership(self) -> None:
        self._require_leader()
        await self.cluster.release()

    # --- secrets ------------------------------------------------------------------------------
    async def set_secret(self, name: str, fields: dict[str, str]) -> list[str]:
        self._require_leader()
        if not isinstance(fields, dict) or not fields:
            raise BadRequest('a secret needs at least one field, e.g. {"password": "..."}')
        for key, value in fields.items():
            if not isinstance(value, str):
                raise BadRequest(f"secret field '{key}' must be a string")
        names = await asyncio.to_thread(self.secrets.set, name, fields)
        await self.emit("lifecycle", "secret_set", f"secret {name} set (fields: {', '.join(names)})")
        return names

    async def secret_fields(self, name: str) -> list[str]:
        return await asyncio.to_thread(self.secrets.field_names, name)

    async def list_secrets(self) -> dict[str, list[str]]:
        return await asyncio.to_thread(self.secrets.list)

    async def delete_secret(self, name: str) -> None:
        self._require_leader()
        await asyncio.to_thread(self.secrets.delete, name)
        await self.emit("lifecycle", "secret_deleted", f"secret {name} deleted")

    # --- diagnostics --------------------------------------------------------------------------
    async def diagnostic_snapshot(self) -> bytes:
        """A .tar.gz of settings (secrets redacted), apps, events, nginx config, versions."""
        from core.diagnostics import build_snapshot

        return await build_snapshot(self)


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


def replace_record(record: AppRecord, **changes: Any) -> AppRecord:
    return replace(record, **changes)
