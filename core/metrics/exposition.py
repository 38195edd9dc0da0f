"""Prometheus / OpenMetrics text exposition for ``GET /metrics``: what a scrape gathers from the engine,
and the page it renders.

Counters and histograms of events come from ``core.metrics.instruments`` (counted where the events
happen); the gauges below describe the present and are read at scrape time: each app's replicas and
the figures its scaler sees, this node's leadership, and the process's CPU and memory. Every family
uses base units (seconds, bytes, ratios) so ``promtool check metrics`` accepts the page.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core import __version__
from core.errors import NotFound, OrchestryError
from core.metrics import instruments
from core.metrics.instruments import REGISTRY
from core.metrics.registry import Family, Gauge, ScrapeCounter, render

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class AppSample:
    """One app as its scaler sees it over its window (percentages and milliseconds as the engine keeps
    them); None for a figure not measured (no requests in the window, no memory limit): not exported,
    since a 0 would read as "fine" to an alert."""

    name: str
    desired_replicas: int
    ready_replicas: int
    rps: float | None
    p95_latency_ms: float | None
    cpu_percent: float | None
    memory_percent: float | None
    connections: float | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    autoscaling: bool | None = None
    status: str | None = None
    replica_states: tuple[str, ...] | None = None  # one per replica; None when not known


# A replica's states (core.models): orchestry_app_replicas_by_state counts each, 0 included.
REPLICA_STATES = ("starting", "ready", "unhealthy", "draining", "CrashLoopBackOff", "failed")
# An app's statuses (core.models): the state set orchestry_app_status exports, one series each.
APP_STATUSES = ("running", "degraded", "stopped", "error")


class ScrapedEngine(Protocol):
    """What a scrape reads of the engine (``core.engine.Engine``, which this layer may not import)."""

    async def list_apps(self) -> list[Any]: ...

    async def app_metrics(self, name: str) -> dict[str, Any]: ...

    async def health(self) -> dict[str, Any]: ...

    def leadership(self) -> Any: ...

    @property
    def nginx(self) -> Any: ...

    def is_leader(self) -> bool: ...


def wants_exposition(accept: str) -> bool:
    accept = accept.lower()
    return "text/plain" in accept or "application/openmetrics-text" in accept


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept.lower()


def _app_families(apps: Iterable[AppSample]) -> list[Family]:
    desired = Gauge(
        "orchestry_app_replicas_desired", "Replicas the app should run (0 while stopped)", ("app",)
    )
    ready = Gauge(
        "orchestry_app_replicas_ready", "Replicas that passed their health check and are routed", ("app",)
    )
    rps = Gauge(
        "orchestry_app_window_requests_per_second",
        "Requests per second over the app's scaling window, as its scaler sees them",
        ("app",),
    )
    p95 = Gauge(
        "orchestry_app_window_latency_p95_seconds",
        "95th percentile of the app's client-visible request duration (nginx $request_time) over its scaling "
        "window, as its scaler sees it",
        ("app",),
    )
    cpu = Gauge(
        "orchestry_app_window_cpu_ratio",
        "Mean CPU of the app's ready replicas over its scaling window, as a fraction of their CPU limit "
        "(of one core without a limit)",
        ("app",),
    )
    memory = Gauge(
        "orchestry_app_window_memory_ratio",
        "Mean memory of the app's replicas over its scaling window, as a fraction of their limit",
        ("app",),
    )
    connections = Gauge(
        "orchestry_app_window_connections",
        "Mean in-flight connections to all the app's replicas over its scaling window",
        ("app",),
    )
    lowest = Gauge("orchestry_app_replicas_min", "minReplicas of the app's scaling policy", ("app",))
    highest = Gauge("orchestry_app_replicas_max", "maxReplicas of the app's scaling policy", ("app",))
    auto = Gauge(
        "orchestry_app_autoscaling",
        "Whether the scaler drives the app (1, mode auto) or not (0, manual)",
        ("app",),
    )
    status = Gauge(
        "orchestry_app_status",
        "1 for the app's status (running, degraded, stopped, error), 0 for the others",
        ("app", "status"),
    )
    by_state = Gauge(
        "orchestry_app_replicas_by_state",
        "The app's replicas in each state (starting, ready, unhealthy, draining, CrashLoopBackOff, failed)",
        ("app", "state"),
    )
    for app in apps:
        if app.replica_states is not None:
            for each in REPLICA_STATES:
                by_state.set(app.replica_states.count(each), app=app.name, state=each)
        if app.status is not None:
            for each in APP_STATUSES:
                status.set(1 if app.status == each else 0, app=app.name, status=each)
        desired.set(app.desired_replicas, app=app.name)
        ready.set(app.ready_replicas, app=app.name)
        for gauge, bound in (
            (lowest, app.min_replicas),
            (highest, app.max_replicas),
            (auto, app.autoscaling),
        ):
            if bound is not None:
                gauge.set(bound, app=app.name)
        for gauge, value, scale in (
            (rps, app.rps, 1.0),
            (p95, app.p95_latency_ms, 1000.0),
            (cpu, app.cpu_percent, 100.0),
            (memory, app.memory_percent, 100.0),
            (connections, app.connections, 1.0),
        ):
            if value is not None:
                gauge.set(value / scale, app=app.name)
    return [status, by_state, desired, ready, lowest, highest, auto, rps, p95, cpu, memory, connections]


def _reachable(status: dict[str, Any] | None) -> float | None:
    return None if status is None else 1.0 if status.get("status") == "ok" else 0.0


def _node_families(
    is_leader: bool, term: int, health: dict[str, Any] | None = None, nginx: dict[str, Any] | None = None
) -> list[Family]:
    leader = Gauge("orchestry_is_leader", "Whether this node holds the leader lease (1) or not (0)")
    leader.set(1 if is_leader else 0)
    lease_term = Gauge("orchestry_leader_term", "Term of the newest leader lease this node knows")
    lease_term.set(term)
    dropped = ScrapeCounter(
        "orchestry_metrics_series_dropped_total",
        "Observations dropped because their family already held its maximum number of label sets",
    )
    dropped.set(REGISTRY.dropped_series())
    database = Gauge(
        "orchestry_database_up",
        "Whether this node's state store answered its check (1) or not (0) this scrape",
    )
    docker = Gauge("orchestry_docker_up", "Whether this node reaches its container runtime (1) or not (0)")
    for gauge, key in ((database, "database"), (docker, "docker")):
        value = _reachable((health or {}).get(key))
        if value is not None:
            gauge.set(value)
    # The apps' nginx, as the leader that drives it sees it (followers leave it to the leader).
    nginx_up = Gauge("orchestry_nginx_up", "Whether the apps' nginx master is running (1) or not (0)")
    if nginx is not None:
        nginx_up.set(1 if nginx.get("running") else 0)
    build = Gauge("orchestry_build_info", "Always 1; the Orchestry version this node runs", ("version",))
    build.set(1, version=__version__)
    return [leader, lease_term, dropped, database, docker, nginx_up, build, *_process_families()]


def _process_families() -> list[Family]:
    """The standard process_* families of Prometheus clients, read from /proc (Linux)."""
    times = os.times()
    cpu = ScrapeCounter("process_cpu_seconds_total", "User and system CPU time spent by the controller")
    cpu.set(times.user + times.system)
    families: list[Family] = [cpu]
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        open_fds = len(os.listdir("/proc/self/fd"))
    except (OSError, ValueError, StopIteration):
        return families
    memory = Gauge("process_resident_memory_bytes", "Resident memory of the controller")
    memory.set(resident_pages * os.sysconf("SC_PAGE_SIZE"))
    started = Gauge("process_start_time_seconds", "Start time of the controller since the Unix epoch")
    started.set(boot + start_ticks / os.sysconf("SC_CLK_TCK"))
    fds = Gauge("process_open_fds", "Open file descriptors of the controller")
    fds.set(open_fds)
    max_fds = Gauge("process_max_fds", "Maximum number of open file descriptors of the controller")
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit != resource.RLIM_INFINITY:
        max_fds.set(soft_limit)
    return [*families, memory, started, fds, max_fds]


def render_exposition(
    apps: Iterable[AppSample],
    is_leader: bool,
    term: int,
    openmetrics: bool = False,
    health: dict[str, Any] | None = None,
    nginx: dict[str, Any] | None = None,
) -> str:
    nodes = _node_families(is_leader, term, health, nginx if is_leader else None)
    families = [*REGISTRY.families(), *_app_families(apps), *nodes]
    return render(families, openmetrics)


def _figure(figures: dict[str, Any], key: str) -> float | None:
    value = figures.get(key)
    return None if value is None else float(value)


def _whole(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


async def _app_sample(engine: ScrapedEngine, app: Any) -> AppSample | None:
    name = app.name
    try:
        metrics = await engine.app_metrics(name)
    except NotFound:
        return None  # deleted between the listing and now
    except OrchestryError:
        # The store is away (its record is read there); the listing still came from the leader's kept
        # records: export the app's state, which alerts need most during an outage, without figures.
        metrics = {}
    # The scaler's window, not "current" (the last 10 s the console shows): what the gauges say they are.
    window = metrics.get("window") or {}
    policy = app.policy or {}
    return AppSample(
        name=name,
        desired_replicas=app.desired_replicas if app.status != "stopped" else 0,
        ready_replicas=app.ready_replicas,
        rps=_figure(window, "rps"),
        p95_latency_ms=_figure(window, "p95_latency_ms"),
        cpu_percent=_figure(window, "cpu_percent"),
        memory_percent=_figure(window, "memory_percent"),
        connections=_figure(window, "active_connections"),
        min_replicas=_whole(policy.get("minReplicas")),
        max_replicas=_whole(policy.get("maxReplicas")),
        autoscaling=app.mode == "auto",
        status=app.status,
        # From the listing's view (no store read of its own per app).
        replica_states=tuple(replica.state for replica in getattr(app, "replicas", ())),
    )


async def exposition(engine: ScrapedEngine, openmetrics: bool) -> str:
    """The page one scrape of this node gets.

    An app's state (desired and ready replicas, the scaler's figures) is exported by the leader alone:
    every node can read it, but three copies would triple a ``sum()`` and leave alerts firing on a
    follower's stale or empty copy (followers measure no traffic: their figures read 0). Select the
    cluster's view with no ``orchestry_is_leader`` join: whichever node leads exports it."""
    leading = engine.is_leader()
    # The term from this node's own view of the lease, and the store's health through the bounded
    # check /health uses: a store outage is a page saying orchestry_database_up 0, not a failed
    # scrape that Prometheus could not tell from a dead controller.
    health, apps = await asyncio.gather(engine.health(), _listed(engine))
    samples: list[AppSample | None] = []
    if apps is not None:
        instruments.track_apps({app.name for app in apps})
        if leading:
            samples = list(await asyncio.gather(*(_app_sample(engine, app) for app in apps)))
    return render_exposition(
        [s for s in samples if s is not None],
        is_leader=leading,
        term=int(getattr(engine.leadership(), "term", None) or 0),
        openmetrics=openmetrics,
        health=health,
        nginx=engine.nginx.status() if leading else None,
    )


async def _listed(engine: ScrapedEngine) -> list[Any] | None:
    """The apps, or None while the store cannot say (their counters are kept, not pruned)."""
    try:
        return await engine.list_apps()
    except OrchestryError:
        return None


def exposed_series() -> dict[str, tuple[str, ...]]:
    """Every series name the page can hold (a histogram's _bucket, _count and _sum) and its label names
    (``le`` for buckets): what a dashboard may query."""
    series: dict[str, tuple[str, ...]] = {}
    for family in [*REGISTRY.families(), *_app_families([]), *_node_families(False, 0)]:
        if family.kind == "histogram":
            series[f"{family.name}_bucket"] = (*family.labelnames, "le")
            series[f"{family.name}_count"] = family.labelnames
            series[f"{family.name}_sum"] = family.labelnames
        else:
            series[family.name] = family.labelnames
    return series


__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "PROMETHEUS_CONTENT_TYPE",
    "AppSample",
    "exposed_series",
    "exposition",
    "render_exposition",
    "wants_exposition",
    "wants_openmetrics",
]
