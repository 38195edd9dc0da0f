"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``, generated from the wire models.

Each operation names the wire model (core/api/wire.py) it answers with and the one its body is read
as; the component schemas are pydantic's JSON schemas of exactly those models, so the document cannot
drift from what the handlers send.  Kept true by ``tests/api/test_openapi.py`` (its paths and methods
equal the router's), ``tests/api/test_wire_contract.py`` and the schemathesis fuzz test (every answer
matches the schema documented for its status).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.api import wire
from core.api.params import APP_NAME

Schema = dict[str, Any]
Mode = Literal["serialization", "validation"]

STRING: Schema = {"type": "string"}
OBJECT: Schema = {"type": "object"}
REF_TEMPLATE = "#/components/schemas/{model}"

# Every model an operation refers to, with how it travels: answers are serialized, bodies validated.
_MODELS: dict[type[BaseModel], Mode] = {}


def ref(model: type[BaseModel], mode: Mode = "serialization") -> Schema:
    _MODELS.setdefault(model, mode)
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


ERROR_DESCRIPTIONS = {
    "400": "Bad request: the detail names the parameter or field",
    "401": "Missing or wrong bearer token (only when the API is bound outside loopback)",
    "404": "Unknown app, secret or node",
    "409": "The name already exists, or the node cannot change (a single Docker host has no other node)",
    "422": "Invalid spec, missing image or secret",
    "500": "Unexpected failure; the daemon log has the traceback",
    "503": "Not the leader (X-Current-Leader names it), no leader yet, or the store/Docker is unavailable",
}
# Any route may meet a bad parameter, a missing token, an unavailable store or an engine failure.
COMMON_ERRORS = ("400", "401", "503")
APP_ERRORS = (*COMMON_ERRORS, "404")
WRITE_ERRORS = (*APP_ERRORS, "409", "422")


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": APP_NAME.pattern},
}


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


TIME_QUERY: Schema = {"type": "string", "description": "epoch seconds, or a duration ago: 90s, 5m, 1h, 2d"}
BOOL_QUERY: Schema = {"type": "string", "enum": ["true", "false"]}
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many, newest first")
CATEGORY = query(
    "type",
    {"type": "string", "enum": ["lifecycle", "scaling", "health", "error", "cluster"]},
    "event category",
)


def operation(
    summary: str,
    response: type[BaseModel] | dict[str, Any],
    errors: tuple[str, ...] = COMMON_ERRORS,
    *,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    parameters: list[dict[str, Any]] | None = None,
    status: str = "200",
    extra_responses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content = response if isinstance(response, dict) else _json(ref(response))
    responses: dict[str, Any] = {status: {"description": summary, "content": content}}
    responses.update(extra_responses or {})
    for code in (*errors, "500"):
        responses[code] = {"description": ERROR_DESCRIPTIONS[code], "content": _json(ref(wire.Error))}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {"required": body_required, "content": _json(ref(body, "validation"))}
    return op


def _app(
    summary: str, response: type[BaseModel] | dict[str, Any], errors: tuple[str, ...] = APP_ERRORS, **kw: Any
) -> dict[str, Any]:
    kw["parameters"] = [NAME_PARAMETER, *kw.get("parameters", [])]
    return operation(summary, response, errors, **kw)


NODE_PARAMETER = {
    "name": "node",
    "in": "path",
    "required": True,
    "description": "node id, unique id prefix or hostname",
    "schema": {"type": "string"},
}


def _node(summary: str, response: type[BaseModel]) -> dict[str, Any]:
    return operation(summary, response, (*APP_ERRORS, "409"), parameters=[NODE_PARAMETER])


METRICS_CONTENT = {
    **_json(ref(wire.ClusterMetrics)),
    "text/plain": {"schema": STRING},
    "application/openmetrics-text": {"schema": STRING},
}
NDJSON_CONTENT = {**_json(ref(wire.Logs)), "application/x-ndjson": {"schema": STRING}}

PATHS: dict[str, dict[str, Any]] = {
    "/health": {"get": operation("Liveness and database state; never waits on Docker", wire.Health, ())},
    "/apps/register": {
        "post": operation("Register or update an app", wire.Registered, WRITE_ERRORS, body=wire.AppDocument)
    },
    "/apps/{name}/up": {"post": _app("Start the app's replicas", wire.Started, WRITE_ERRORS)},
    "/apps/{name}/down": {"post": _app("Stop the app's replicas", wire.Stopped)},
    "/apps/{name}": {"delete": _app("Stop and forget the app", wire.Deleted)},
    "/apps/{name}/status": {"get": _app("Status and replicas", wire.AppStatus)},
    "/apps/{name}/scale": {
        "post": _app("Set the replica count", wire.Scaled, WRITE_ERRORS, body=wire.ScaleRequest)
    },
    "/apps/{name}/policy": {
        "post": _app("Change the scaling policy", wire.PolicyUpdated, WRITE_ERRORS, body=wire.PolicyRequest)
    },
    "/apps": {"get": operation("Every app", wire.LegacyAppList)},
    "/apps/{name}/raw": {"get": _app("The document as submitted (secrets redacted)", wire.RawApp)},
    "/apps/{name}/logs": {
        "get": _app(
            "Recent replica logs, newest first",
            wire.LegacyLogs,
            parameters=[
                query("lines", {"type": "integer", "minimum": 1, "maximum": 10000}, "how many lines")
            ],
        )
    },
    "/apps/{name}/metrics": {
        "get": _app("Current metrics, policy and scaling history", wire.LegacyAppMetrics)
    },
    "/apps/{name}/simulateMetrics": {
        "post": _app(
            "Feed a metrics sample (tests and demos)",
            wire.SimulationResult,
            WRITE_ERRORS,
            body=wire.SimulatedMetrics,
            body_required=False,
        )
    },
    "/metrics": {"get": operation("Cluster metrics (JSON) or Prometheus exposition", METRICS_CONTENT)},
    "/events": {
        "get": operation(
            "Events, newest first",
            wire.LegacyEvents,
            parameters=[query("app", STRING, "only this app's events"), CATEGORY, LIMIT],
        )
    },
    "/cluster/status": {"get": operation("This node's view of the cluster", wire.ClusterStatus)},
    "/cluster/leader": {"get": operation("The current leader (503 when none)", wire.ClusterLeader)},
    "/cluster/health": {"get": operation("Cluster readiness", wire.ClusterHealth)},
    "/api/v1/openapi.json": {"get": operation("This document", _json(OBJECT), ())},
    "/api/v1/apps": {
        "get": operation("Every app", wire.AppList),
        "post": operation(
            "Register an app (409 if it exists unless replace=true)",
            wire.RegisterResult,
            WRITE_ERRORS,
            body=wire.AppDocument,
            status="201",
            parameters=[query("replace", BOOL_QUERY, "update an existing app instead of failing")],
            extra_responses={"200": {"description": "Replaced", "content": _json(ref(wire.RegisterResult))}},
        ),
    },
    "/api/v1/validate": {
        "post": operation(
            "Dry run of register: validate a document and say what registering it would change",
            wire.RegisterPreviewAnswer,
            (*COMMON_ERRORS, "422"),
            body=wire.AppDocument,
        )
    },
    "/api/v1/apps/{name}": {
        "get": _app("Describe an app (spec with secrets redacted)", wire.App),
        "delete": _app("Stop and forget the app", wire.AppDeleted),
    },
    "/api/v1/apps/{name}/rollout": {
        "get": _app("Progress towards the desired replicas on the current spec (leader only)", wire.Rollout)
    },
    "/api/v1/apps/{name}/up": {"post": _app("Start the app's replicas", wire.UpAnswer, WRITE_ERRORS)},
    "/api/v1/apps/{name}/down": {
        "post": _app(
            "Stop the app's replicas",
            wire.DownAnswer,
            parameters=[query("force", BOOL_QUERY, "kill without waiting for the grace period")],
        )
    },
    "/api/v1/apps/{name}/restart": {
        "post": _app(
            "Rolling restart (or one replica)",
            wire.RestartAnswer,
            WRITE_ERRORS,
            body=wire.RestartRequest,
            body_required=False,
        )
    },
    "/api/v1/apps/{name}/scale": {
        "post": _app(
            "Set the replica count (clamped in auto mode)",
            wire.ScaleAnswer,
            WRITE_ERRORS,
            body=wire.ScaleRequest,
        )
    },
    "/api/v1/apps/{name}/scaling": {
        "put": _app(
            "Change mode and scaling keys", wire.ScalingAnswer, WRITE_ERRORS, body=wire.ScalingChanges
        )
    },
    "/api/v1/apps/{name}/instances": {
        "delete": _app("Forget runtime state; replicas are recreated from the spec", wire.InstancesCleared)
    },
    "/api/v1/apps/{name}/events": {
        "get": _app(
            "The app's events, newest first",
            wire.Events,
            parameters=[CATEGORY, LIMIT, query("since", TIME_QUERY, "only events after this time")],
        )
    },
    "/api/v1/events": {
        "get": operation(
            "Every event, newest first",
            wire.Events,
            parameters=[CATEGORY, LIMIT, query("since", TIME_QUERY, "only events after this time")],
        )
    },
    "/api/v1/apps/{name}/logs": {
        "get": _app(
            "Merged replica logs, oldest first; follow=true streams newline-delimited JSON (an empty "
            "line every 30 s of silence keeps proxies from closing it: skip empty lines)",
            NDJSON_CONTENT,
            parameters=[
                query("tail", {"type": "integer", "minimum": 0, "maximum": 10000}, "lines per replica"),
                query("since", TIME_QUERY, "only lines after this time"),
                query("until", TIME_QUERY, "only lines before this time"),
                query("follow", BOOL_QUERY, "keep streaming new lines"),
            ],
        )
    },
    "/api/v1/apps/{name}/metrics": {
        "get": _app("Current figures, window, policy, last decision", wire.AppMetrics)
    },
    "/api/v1/apps/{name}/series": {
        "get": _app(
            "Chart history: desired and ready replicas, requests/s, p95 latency, CPU, memory",
            wire.Series,
            parameters=[
                query("seconds", {"type": "integer", "minimum": 10, "maximum": 900}, "how far back (300)")
            ],
        )
    },
    "/api/v1/apps/{name}/backtest": {
        "post": _app(
            "What the current and a candidate scaling policy would have done over the recorded load",
            wire.Backtest,
            (*APP_ERRORS, "422"),
            body=wire.BacktestRequest,
            body_required=False,
        )
    },
    "/api/v1/overview": {
        "get": operation("Every app described, with its latest figures and the LB address", wire.Overview)
    },
    "/api/v1/nodes": {"get": operation("The runtime's nodes (one for a single Docker host)", wire.NodeList)},
    "/api/v1/nodes/{node}/drain": {
        "post": _node(
            "Move this installation's replicas off the node (new ones routed first), then drain it",
            wire.NodeDrain,
        )
    },
    "/api/v1/nodes/{node}/activate": {"post": _node("The node takes new replicas again", wire.NodeActivated)},
    "/api/v1/cluster/status": {"get": operation("This node's view of the cluster", wire.ClusterStatus)},
    "/api/v1/cluster/leader": {"get": operation("The current leader (503 when none)", wire.ClusterLeader)},
    "/api/v1/cluster/overview": {
        "get": operation(
            "Every controller (state, heartbeat age, database, version), the lease and the term history",
            wire.ClusterOverview,
        )
    },
    "/api/v1/cluster/leadership": {
        "delete": operation("The leader releases its lease", wire.LeadershipReleased)
    },
    "/api/v1/secrets": {"get": operation("Every secret's field names (never values)", wire.SecretList)},
    "/api/v1/secrets/{name}": {
        "put": _app("Set a secret's fields", wire.SecretAnswer, WRITE_ERRORS, body=wire.SecretFields),
        "get": _app("A secret's field names (never values)", wire.SecretAnswer),
        "delete": _app("Delete a secret", wire.SecretDeleted),
    },
    "/api/v1/diagnostics": {
        "post": operation(
            "A diagnostic snapshot (.tar.gz, secrets redacted)",
            {"application/gzip": {"schema": {"type": "string", "contentEncoding": "binary"}}},
        )
    },
}


def component_schemas() -> dict[str, Schema]:
    """pydantic's JSON schema of every model the operations refer to (and of the models inside them)."""
    _, top = models_json_schema(list(_MODELS.items()), ref_template=REF_TEMPLATE)
    return dict(sorted(top.get("$defs", {}).items()))


def openapi_document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Orchestry API",
            "version": version,
            "description": "Unprefixed routes: the Orchestry 1.0 wire format; /api/v1: the current API.",
        },
        "servers": [{"url": "/"}],
        "paths": PATHS,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }
