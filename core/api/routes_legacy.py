"""The unprefixed routes: the Orchestry 1.0 wire contract, kept byte-compatible for old clients."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core import __version__
from core.api import params, wire
from core.api.context import engine_of, ensure_leader, is_leader, json_response, node_id_of
from core.api.kept_answers import KEPT_ANSWERS
from core.metrics.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_CONTENT_TYPE,
    exposition,
    wants_exposition,
    wants_openmetrics,
)

if TYPE_CHECKING:
    from core.engine import Engine

routes = web.RouteTableDef()

# /health must answer even when the database hangs: it is what load balancers probe.
HEALTH_DATABASE_TIMEOUT = 2.0

# API.md's names, passed on as they are: the metrics collector takes these (and names them back).
SIMULATED_METRIC_FIELDS = (
    "rps",
    "p95LatencyMs",
    "activeConnections",
    "cpuPercent",
    "memoryPercent",
    "healthyReplicas",
)


async def database_health(engine: Engine) -> dict[str, Any]:
    try:
        async with asyncio.timeout(HEALTH_DATABASE_TIMEOUT):  # not wait_for: no task per probe
            report = await engine.health()
    except TimeoutError:
        return {"status": "error", "detail": f"database did not answer within {HEALTH_DATABASE_TIMEOUT:g} s"}
    return report.get("database") or {"status": "error", "detail": "engine reported no database status"}


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    engine = engine_of(request)
    database = await database_health(engine)
    body = wire.Health.of(database, node_id_of(request), is_leader(engine), __version__, time.time())
    return json_response(body)


@routes.post("/apps/register")
async def register(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    document = await params.json_body(request)
    view, _created = await engine.register(document)
    return json_response(wire.Registered(app=view.name))


@routes.post("/apps/{name}/up")
async def up(request: web.Request) -> web.Response:
    result = await ensure_leader(request).up(params.app_name(request))
    return json_response(wire.Started.of(result))


@routes.post("/apps/{name}/down")
async def down(request: web.Request) -> web.Response:
    name = params.app_name(request)
    stopped = await ensure_leader(request).down(name)
    return json_response(wire.Stopped(app=name, containers_stopped=stopped))


@routes.delete("/apps/{name}")
async def delete(request: web.Request) -> web.Response:
    name = params.app_name(request)
    await ensure_leader(request).delete(name)
    return json_response(wire.Deleted.of(name))


@routes.get("/apps/{name}/status")
async def status(request: web.Request) -> web.Response:
    app = await engine_of(request).get_app(params.app_name(request))
    return json_response(wire.AppStatus.of(app))


@routes.post("/apps/{name}/scale")
async def scale(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    body = await params.json_body(request)
    replicas = params.int_field(body, "replicas", 0, 100)
    assert replicas is not None
    result = await engine.scale(params.app_name(request), replicas)
    return json_response(wire.Scaled.of(result))


@routes.post("/apps/{name}/policy")
async def policy(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    name = params.app_name(request)
    changes = params.object_field(await params.json_body(request), "policy")
    effective = await engine.set_policy(name, changes)
    return json_response(wire.PolicyUpdated(app=name, policy=effective))


@routes.get("/apps")
async def list_apps(request: web.Request) -> web.Response:
    engine = engine_of(request)

    async def build() -> wire.LegacyAppList:
        return wire.LegacyAppList(apps=[wire.LegacyAppSummary.of(a) for a in await engine.list_apps()])

    return await request.app[KEPT_ANSWERS].respond(engine, "legacy-apps", build, wire.LegacyAppSummary.of)


@routes.get("/apps/{name}/raw")
async def raw(request: web.Request) -> web.Response:
    app = await engine_of(request).get_app(params.app_name(request))
    return json_response(wire.RawApp.of(app))


@routes.get("/apps/{name}/logs")
async def logs(request: web.Request) -> web.Response:
    engine = engine_of(request)
    name = params.app_name(request)
    lines = params.query_int(request, "lines", 100, 1, params.MAX_LOG_LINES)
    app = await engine.get_app(name)
    log_lines = await engine.logs(name, tail=lines)
    newest = sorted(log_lines, key=lambda line: line.timestamp)[-lines:] if lines else log_lines
    return json_response(wire.LegacyLogs.of(name, len(app.replicas), newest))


@routes.get("/apps/{name}/metrics")
async def app_metrics(request: web.Request) -> web.Response:
    engine = engine_of(request)
    name = params.app_name(request)
    metrics, history = await asyncio.gather(engine.app_metrics(name), engine.scaling_history(name))
    return json_response(wire.LegacyAppMetrics.of(name, metrics, history))


@routes.post("/apps/{name}/simulateMetrics")
async def simulate_metrics(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    name = params.app_name(request)
    body = await params.json_body(request, required=False)
    sample: dict[str, float] = {}
    for wire_name in SIMULATED_METRIC_FIELDS:
        value = params.number_field(body, wire_name)
        if value is not None:
            sample[wire_name] = value
    evaluate = params.bool_field(body, "evaluate", True)
    result = await engine.simulate_metrics(name, sample, evaluate=evaluate)
    return json_response(
        wire.SimulationResult(
            app=name,
            metrics_added=result.get("metrics_added", sample),
            evaluation=result.get("evaluation"),
            action=result.get("action"),
        )
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    engine = engine_of(request)
    accept = request.headers.get("Accept", "")
    if wants_exposition(accept):
        openmetrics = wants_openmetrics(accept)
        text = await exposition(engine, openmetrics)
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else PROMETHEUS_CONTENT_TYPE
        return web.Response(body=text.encode(), headers={"Content-Type": content_type})
    found = await engine.cluster_metrics()
    body = {key: found.get(key) or {} for key in ("cluster", "apps", "instances", "nginx")}
    if not body["cluster"]:
        body["cluster"] = {"node_id": node_id_of(request), "is_leader": is_leader(engine)}
    return json_response(wire.ClusterMetrics(**body, timestamp=time.time()))


@routes.get("/events")
async def events(request: web.Request) -> web.Response:
    app = request.query.get("app") or None
    category = params.query_category(request)
    limit = params.query_int(request, "limit", 100, 1, params.MAX_EVENTS)
    assert limit is not None
    if app is not None and not params.APP_NAME.match(app):
        # A name no app can have has no events: asking the store (PostgreSQL refuses a NUL byte in a
        # string) would only risk a 500.
        return json_response(wire.LegacyEvents.of([]))
    found = await engine_of(request).events(app=app, category=category, limit=limit)
    return json_response(wire.LegacyEvents.of(found))


@routes.get("/cluster/status")
async def cluster_status(request: web.Request) -> web.Response:
    status = await engine_of(request).cluster_status()
    return json_response(wire.ClusterStatus.of(status, node_id_of(request)))


@routes.get("/cluster/leader")
async def cluster_leader(request: web.Request) -> web.Response:
    status = await engine_of(request).cluster_status()
    leader = wire.ClusterLeader.of(status)
    if leader is None:
        return json_response(wire.Error(detail="No leader elected, cluster not ready"), status=503)
    return json_response(leader)


@routes.get("/cluster/health")
async def cluster_health(request: web.Request) -> web.Response:
    status = await engine_of(request).cluster_status()
    body = wire.ClusterHealth.of(status, node_id_of(request), __version__, time.time())
    return json_response(body)
