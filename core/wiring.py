"""The composition root: every component of a node, built from Settings and wired together here only.

Each service receives the collaborators it needs (the store, the runtime, an ``emit`` function, a
leadership check), never the Engine, which is a thin facade over what ``build`` returns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from core import recent_log
from core.backtest_runner import BacktestRunner
from core.clock import SYSTEM_CLOCK, Clock
from core.cluster import LeaseElection
from core.errors import SettingsError
from core.events import EventBus, EventLog
from core.health import Probe
from core.lb.memory import MemoryNginx
from core.lb.nginx import NginxController
from core.metrics.collector import MetricsCollector
from core.metrics.history import MetricHistoryRecorder
from core.nodes import NodeService
from core.reconciler import Drained, Reconciler, ReconcilerConfig
from core.redaction import default_redactor, register_controller_secrets
from core.routing import NginxRouter
from core.runtime.base import Runtime
from core.runtime.ports import PortAllocator
from core.scaling_loop import ScalingLoop
from core.secrets import SecretStore, load_or_create_key
from core.services.app_logs import AppLogs
from core.services.app_records import KeptAppRecords
from core.services.app_views import AppViews
from core.services.desired_state import DesiredState
from core.services.node_status import NodeStatus
from core.services.node_watch import NodeWatch
from core.services.secret_commands import SecretCommands
from core.settings import Settings
from core.store import Store


@dataclass
class Substitutes:
    """Collaborators that replace the real ones (an in-memory runtime with its probe, a fake clock, a
    recording load balancer: tests and bench/); None builds the real one from the settings."""

    runtime: Runtime | None = None
    clock: Clock = SYSTEM_CLOCK
    probe: Probe | None = None
    drained: Drained | None = None
    nginx: NginxController | MemoryNginx | None = None
    ports: PortAllocator | None = None


@dataclass
class Components:
    settings: Settings
    store: Store
    event_log: EventLog
    secrets: SecretStore
    runtime: Runtime
    nginx: NginxController | MemoryNginx
    cluster: LeaseElection
    metrics: MetricsCollector
    reconciler: Reconciler
    scaling: ScalingLoop
    backtests: BacktestRunner
    nodes: NodeService
    desired: DesiredState
    views: AppViews
    logs: AppLogs
    secret_commands: SecretCommands
    status: NodeStatus
    watch: NodeWatch


def build_runtime(settings: Settings) -> Runtime:
    """The container runtime the settings name (ORCHESTRY_RUNTIME): the one place that chooses it
    (imported here: the Docker SDK is slow to load)."""
    if settings.runtime == "swarm":
        from core.runtime.swarm import SwarmRuntime

        return SwarmRuntime(
            settings.docker_url,
            node_docker_urls=settings.swarm_node_docker_urls,
            task_poll_seconds=settings.swarm_poll_interval,
        )
    from core.runtime.docker import DockerRuntime

    return DockerRuntime(settings.docker_url)


def replica_network_mode(settings: Settings) -> str:
    """How replicas listen.  A Swarm task always has its own network namespace and listens on its
    container port, which Swarm publishes on its node: the bridge-mode contract."""
    return "bridge" if settings.runtime == "swarm" else settings.network_mode


async def build(settings: Settings, bus: EventBus, substitutes: Substitutes | None = None) -> Components:
    """Open the store (migrating it), load the secrets key, and build every component, started none."""
    subs = substitutes or Substitutes()
    clock = subs.clock
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"cannot create the state dir {settings.state_dir} ({exc.strerror or exc}): choose a writable "
            "directory with ORCHESTRY_STATE_DIR or --state-dir"
        ) from None
    recent_log.install()  # the support bundle's controller.log
    store = await asyncio.to_thread(Store.open, settings.database_url)
    event_log = EventLog(bus, store, default_redactor)
    emit = event_log.emit
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    key = await asyncio.to_thread(load_or_create_key, settings.state_dir, secret_key)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    register_controller_secrets(default_redactor, settings.database_url, token, key)
    secrets = SecretStore(store, key, default_redactor)
    await store.read(secrets.register_all)
    runtime = subs.runtime or build_runtime(settings)
    # Label new containers with this cluster's id and leave other installations' alone.
    runtime.cluster_id = await store.read(store.identity.cluster_id)

    # Callbacks below reach ``watch``, built last: each component is built before anything runs.
    async def nginx_event(category: str, kind: str, message: str, details: dict[str, Any]) -> None:
        await emit(category, kind, message, details=details)

    async def leadership_changed(state: str, why: str, details: dict[str, Any]) -> None:
        await watch.leadership_changed(state, why, details)

    async def runtime_state(reason: str) -> None:
        await watch.runtime_state(reason)

    def leads() -> bool:
        return cluster.is_leader()

    nginx = subs.nginx or NginxController(
        prefix=settings.state_dir / "nginx",
        listen_host=settings.lb_host,
        listen_port=settings.lb_port,
        domain=settings.domain,
        nginx_binary=settings.nginx_binary,
        external_conf_dir=settings.nginx_conf_dir,
        reload_command=settings.nginx_reload_command,
        on_event=nginx_event,
        may_act=leads,
    )
    cluster = LeaseElection(
        store,
        settings.node_id,
        settings.api_url,
        settings.lease_ttl,
        on_change=leadership_changed,
        node_retention=settings.node_retention,
    )
    access_log = nginx.access_log_path or settings.state_dir / "external-nginx-access.log"
    metrics = MetricsCollector(runtime, access_log, interval=settings.metrics_interval, clock=clock.time)
    reconciler = Reconciler(
        runtime=runtime,
        store=store,
        emit=emit,
        router=NginxRouter(nginx),
        leadership=cluster,
        ports=subs.ports or PortAllocator(),
        resolve_secret=secrets.resolve,
        config=ReconcilerConfig(
            network_mode=replica_network_mode(settings),
            drain_timeout=settings.drain_timeout,
            relist_interval=settings.relist_interval,
        ),
        on_replicas_changed=lambda app: watch.replicas_changed(app),
        on_runtime_state=runtime_state,
        clock=clock,
        probe=subs.probe,
        drained=subs.drained,
    )
    desired = DesiredState(
        store,
        reconciler,
        secrets,
        emit,
        cluster,
        settings.drain_timeout,
        placement_supported=settings.runtime == "swarm",
    )
    # One kept copy of the app records for every frequent reader (the lists, the scaling loop, the
    # reconciler's passes).
    records = KeptAppRecords(store, cluster)
    reconciler.records = records
    desired.records = records
    scaling = ScalingLoop(
        desired=desired,
        list_apps=records.current,
        spec_of=reconciler.spec_of,
        ready_count=reconciler.ready_count,
        live_count=reconciler.live_count,
        metrics=metrics,
        is_leader=cluster.is_leader,
        emit=emit,
        interval=settings.scaler_interval,
        history=MetricHistoryRecorder(
            store.history,
            store.lanes,
            metrics.take_period,
            settings.scaler_interval,
            settings.metrics_retention,
        ),
    )
    desired.on_forget += [metrics.forget, scaling.forget]
    nodes = NodeService(runtime, reconciler, metrics, emit, leads)
    views = AppViews(
        store,
        reconciler,
        cluster,
        records,
        metrics,
        event_log,
        settings.lb_listen,
        nodes.hostname_of,
        # Only a runtime that measures replicas elsewhere (a Swarm node's own API) can miss some.
        figures_gap=lambda container_id: getattr(runtime, "stats_gaps", {}).get(container_id, ""),
    )
    watch = NodeWatch(
        node_id=settings.node_id,
        store=store,
        runtime=runtime,
        nginx=nginx,
        leadership=cluster,
        reconciler=reconciler,
        metrics=metrics,
        emit=emit,
        relist_interval=settings.relist_interval,
        app_records=records.current,
    )
    status = NodeStatus(
        store=store,
        cluster=cluster,
        runtime_error=lambda: watch.runtime_error,
        list_apps=views.list_apps,
        nginx_status=nginx.status,
    )
    return Components(
        settings=settings,
        store=store,
        event_log=event_log,
        secrets=secrets,
        runtime=runtime,
        nginx=nginx,
        cluster=cluster,
        metrics=metrics,
        reconciler=reconciler,
        scaling=scaling,
        nodes=nodes,
        backtests=BacktestRunner(
            store.history, store.lanes, settings.scaler_interval, settings.metrics_retention
        ),
        desired=desired,
        views=views,
        logs=AppLogs(store, runtime, default_redactor, bus),
        secret_commands=SecretCommands(secrets, emit, cluster),
        status=status,
        watch=watch,
    )
