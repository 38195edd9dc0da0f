"""The ``/api/v1`` routes: this project's documented API (described in ``openapi.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import asdict

from aiohttp import web

from core.api import params, wire
from core.api.context import CLOSING, engine_of, ensure_leader, json_response, node_id_of, redacted_dumps
from core.api.kept_answers import KEPT_ANSWERS
from core.errors import BadRequest
from core.runtime.base import LogLine
from core.services.app_views import SERIES_SECONDS_MAX

routes = web.RouteTableDef()

PREFIX = "/api/v1"
NDJSON = "application/x-ndjson"
# How often a quiet log stream checks whether its client is still there.
CLIENT_CHECK_SECONDS = 1.0
# A quiet log stream sends an empty line this often: a proxy in between (the controller LB, whose read
# timeout for a followed log is 300 s, or any other) would otherwise close it as idle, and the CLI would
# report the daemon gone. Readers of NDJSON skip empty lines (both of ours do).
KEEPALIVE_SECONDS = 30.0


@routes.get(f"{PREFIX}/apps")
async def list_apps(request: web.Request) -> web.Response:
    engine = engine_of(request)

    async def build() -> wire.AppList:
        return wire.AppList(apps=[wire.AppSummary.of(a) for a in await engine.list_apps()])

    return await request.app[KEPT_ANSWERS].respond(engine, "v1-apps", build, wire.AppSummary.of)


@routes.post(f"{PREFIX}/apps")
async def register(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    update = params.query_bool(request, "replace")
    document = await params.json_body(request)
    view, created = await engine.register(document, update=update)
    answer = wire.RegisterResult(created=created, app=wire.App.of(view))
    return json_response(answer, status=201 if created else 200)


@routes.post(f"{PREFIX}/validate")
async def validate(request: web.Request) -> web.Response:
    """A dry run of register (and of the secrets up needs): checks everything, changes nothing."""
    document = await params.json_body(request)
    preview = await engine_of(request).preview_register(document)
    return json_response(wire.RegisterPreviewAnswer.of(preview))


@routes.get(f"{PREFIX}/apps/{{name}}")
async def describe(request: web.Request) -> web.Response:
    app = await engine_of(request).get_app(params.app_name(request))
    return json_response(wire.App.of(app))


@routes.delete(f"{PREFIX}/apps/{{name}}")
async def delete(request: web.Request) -> web.Response:
    name = params.app_name(request)
    await ensure_leader(request).delete(name)
    return json_response(wire.AppDeleted(app=name))


@routes.get(f"{PREFIX}/apps/{{name}}/rollout")
async def rollout(request: web.Request) -> web.Response:
    rollout = await engine_of(request).rollout(params.app_name(request))
    return json_response(wire.Rollout.of(rollout))


@routes.post(f"{PREFIX}/apps/{{name}}/up")
async def up(request: web.Request) -> web.Response:
    result = await ensure_leader(request).up(params.app_name(request))
    return json_response(wire.UpAnswer.of(result))


@routes.post(f"{PREFIX}/apps/{{name}}/down")
async def down(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    name = params.app_name(request)
    stopped = await engine.down(name, force=params.query_bool(request, "force"))
    return json_response(wire.DownAnswer(app=name, containers_stopped=stopped))


@routes.post(f"{PREFIX}/apps/{{name}}/restart")
async def restart(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    name = params.app_name(request)
    body = await params.json_body(request, required=False)
    slot = params.int_field(body, "replica", 1, 1000, required=False)
    restarted = await engine.restart(name, slot)
    return json_response(wire.RestartAnswer(app=name, restarted=restarted))


@routes.post(f"{PREFIX}/apps/{{name}}/scale")
async def scale(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    body = await params.json_body(request)
    replicas = params.int_field(body, "replicas", 0, 100)
    assert replicas is not None
    result = await engine.scale(params.app_name(request), replicas)
    return json_response(wire.ScaleAnswer.of(result))


@routes.put(f"{PREFIX}/apps/{{name}}/scaling")
async def set_scaling(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    name = params.app_name(request)
    changes = await params.json_body(request)
    policy = await engine.set_policy(name, changes)
    return json_response(wire.ScalingAnswer(app=name, policy=policy))


@routes.delete(f"{PREFIX}/apps/{{name}}/instances")
async def clear_instances(request: web.Request) -> web.Response:
    name = params.app_name(request)
    await ensure_leader(request).clear_instances(name)
    return json_response(wire.InstancesCleared(app=name))


async def _events(request: web.Request, app: str | None) -> web.Response:
    engine = engine_of(request)
    category = params.query_category(request)
    limit = params.query_int(request, "limit", 100, 1, params.MAX_EVENTS)
    since = params.query_time(request, "since")
    assert limit is not None
    if app is not None:
        await engine.get_app(app)  # 404 for an unknown app rather than an empty list
    found = await engine.events(app=app, category=category, since=since, limit=limit)
    return json_response(wire.Events.of(found))


@routes.get(f"{PREFIX}/apps/{{name}}/events")
async def app_events(request: web.Request) -> web.Response:
    return await _events(request, params.app_name(request))


@routes.get(f"{PREFIX}/events")
async def all_events(request: web.Request) -> web.Response:
    return await _events(request, None)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _stream_logs(request: web.Request, lines: AsyncIterator[LogLine]) -> web.StreamResponse:
    """Write each line as one JSON object per line until the client leaves, the server stops or the
    stream ends.

    A quiet stream (no replica logging) still notices a departed client within a second, so no task
    or Docker log stream outlives its reader.  A stopping server ends the stream at once, cleanly:
    aiohttp would otherwise hold its stop 60 s for the request to finish, then 60 s more once
    cancelled, and the console's quit with it."""
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-cache"})
    await response.prepare(request)
    closing = asyncio.ensure_future(request.app[CLOSING].wait())
    iterator = aiter(lines)
    pending: asyncio.Future[LogLine] | None = None
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    try:
        while True:
            pending = asyncio.ensure_future(anext(iterator))
            while not pending.done() and not closing.done():
                await asyncio.wait(
                    {pending, closing}, timeout=CLIENT_CHECK_SECONDS, return_when="FIRST_COMPLETED"
                )
                if not pending.done() and _client_gone(request):
                    return response
                if not pending.done() and loop.time() - last_write >= KEEPALIVE_SECONDS:
                    await response.write(b"\n")
                    last_write = loop.time()
            if not pending.done():
                break  # the server stops: the stream's end is written below
            try:
                line = pending.result()
            except StopAsyncIteration:
                break
            await response.write(redacted_dumps(wire.LogLineAnswer.of(line).dump()).encode() + b"\n")
            last_write = loop.time()
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left mid-write: an ordinary end for a follow stream, not an error
    finally:
        closing.cancel()
        # The generator must be idle before it can be closed: cancel and await its pending step first.
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
    return response


@routes.get(f"{PREFIX}/apps/{{name}}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    name = params.app_name(request)
    tail = params.query_int(request, "tail", 100, 0, params.MAX_LOG_LINES)
    since = params.query_time(request, "since")
    until = params.query_time(request, "until")
    if params.query_bool(request, "follow"):
        if until is not None:
            raise BadRequest("query parameter 'until' cannot be combined with follow=true: drop one of them")
        await engine.get_app(name)  # 404 before the stream starts, not inside it
        # since: `orchestry logs -f` resumes a stream cut by a daemon's restart from its last line.
        return await _stream_logs(request, engine.follow_logs(name, tail=tail, since=since))
    lines = await engine.logs(name, tail=tail, since=since, until=until)
    return json_response(wire.Logs.of(name, lines))


@routes.get(f"{PREFIX}/apps/{{name}}/metrics")
async def app_metrics(request: web.Request) -> web.Response:
    name = params.app_name(request)
    metrics = await engine_of(request).app_metrics(name)
    return json_response(wire.AppMetrics.of(name, metrics))


SERIES_SECONDS_DEFAULT = 300


@routes.get(f"{PREFIX}/overview")
async def overview(request: web.Request) -> web.Response:
    """Every app described, with its latest figures, in one answer: what a dashboard draws each tick."""
    engine = engine_of(request)
    found = await engine.overview()
    figures = {name: wire.Figures(**asdict(f)) for name, f in found.figures.items()}
    return json_response(
        wire.Overview.data(found.apps, figures, found.lb_listen, found.timestamp, engine.settings.runtime)
    )


@routes.get(f"{PREFIX}/apps/{{name}}/series")
async def app_series(request: web.Request) -> web.Response:
    """Chart history of one app: desired and ready replicas, requests/s, p95 latency, CPU and memory."""
    name = params.app_name(request)
    seconds = params.query_int(request, "seconds", SERIES_SECONDS_DEFAULT, 10, SERIES_SECONDS_MAX)
    assert seconds is not None
    found = await engine_of(request).series(name, seconds)
    return json_response(wire.Series.of(found.app, found.seconds, found.timestamp, found.series))


@routes.post(f"{PREFIX}/apps/{{name}}/backtest")
async def app_backtest(request: web.Request) -> web.Response:
    """What the app's policy and a candidate would have done over its recorded load; changes nothing."""
    body = await params.json_body(request, required=False)
    unknown = sorted(set(body) - {"policy", "since", "trace"})
    if unknown:
        raise BadRequest(f"field '{unknown[0]}' is not known: send policy, since and/or trace")
    changes = params.object_field(body, "policy") if body.get("policy") is not None else None
    run = await engine_of(request).backtest(
        params.app_name(request), changes, since=body.get("since"), trace=body.get("trace")
    )
    return json_response(wire.Backtest.of(run))


@routes.get(f"{PREFIX}/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    nodes = await engine_of(request).nodes()
    return json_response(wire.NodeList(nodes=[wire.Node.of(n) for n in nodes]))


@routes.post(f"{PREFIX}/nodes/{{node}}/drain")
async def drain_node(request: web.Request) -> web.Response:
    started = await ensure_leader(request).drain_node(request.match_info["node"])
    return json_response(
        wire.NodeDrain(node=wire.Node.of(started.node), moving=started.moving, apps=started.apps)
    )


@routes.post(f"{PREFIX}/nodes/{{node}}/activate")
async def activate_node(request: web.Request) -> web.Response:
    node = await ensure_leader(request).activate_node(request.match_info["node"])
    return json_response(wire.NodeActivated(node=wire.Node.of(node)))


@routes.get(f"{PREFIX}/cluster/status")
async def cluster_status(request: web.Request) -> web.Response:
    status = await engine_of(request).cluster_status()
    return json_response(wire.ClusterStatus.of(status, node_id_of(request)))


@routes.get(f"{PREFIX}/cluster/leader")
async def cluster_leader(request: web.Request) -> web.Response:
    status = await engine_of(request).cluster_status()
    leader = wire.ClusterLeader.of(status)
    if leader is None:
        return json_response(wire.Error(detail="No leader elected, cluster not ready"), status=503)
    return json_response(leader)


@routes.get(f"{PREFIX}/cluster/overview")
async def cluster_overview(request: web.Request) -> web.Response:
    return json_response(wire.ClusterOverview(**await engine_of(request).cluster_overview()))


@routes.delete(f"{PREFIX}/cluster/leadership")
async def release_leadership(request: web.Request) -> web.Response:
    await ensure_leader(request).release_leadership()
    return json_response(wire.LeadershipReleased(node_id=node_id_of(request)))


def _secret_fields(body: dict[str, object]) -> dict[str, str]:
    if not body:
        raise BadRequest('request body must name at least one field, e.g. {"password": "..."}')
    for field, value in body.items():
        if not isinstance(value, str):
            raise BadRequest(f"secret field '{field}' must be a string")
    return {field: str(value) for field, value in body.items()}


@routes.get(f"{PREFIX}/secrets")
async def list_secrets(request: web.Request) -> web.Response:
    secrets = await engine_of(request).list_secrets()
    return json_response(
        wire.SecretList(secrets=[wire.SecretAnswer(name=n, fields=f) for n, f in sorted(secrets.items())])
    )


@routes.put(f"{PREFIX}/secrets/{{name}}")
async def set_secret(request: web.Request) -> web.Response:
    engine = ensure_leader(request)
    name = params.app_name(request)
    fields = await engine.set_secret(name, _secret_fields(await params.json_body(request)))
    return json_response(wire.SecretAnswer(name=name, fields=fields))


@routes.get(f"{PREFIX}/secrets/{{name}}")
async def secret_fields(request: web.Request) -> web.Response:
    name = params.app_name(request)
    return json_response(wire.SecretAnswer(name=name, fields=await engine_of(request).secret_fields(name)))


@routes.delete(f"{PREFIX}/secrets/{{name}}")
async def delete_secret(request: web.Request) -> web.Response:
    name = params.app_name(request)
    await ensure_leader(request).delete_secret(name)
    return json_response(wire.SecretDeleted(name=name))


@routes.post(f"{PREFIX}/diagnostics")
async def diagnostics(request: web.Request) -> web.Response:
    snapshot = await engine_of(request).diagnostic_snapshot()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    filename = f"orchestry-diagnostics-{stamp}.tar.gz"
    return web.Response(
        body=snapshot,
        headers={
            "Content-Type": "application/gzip",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
