"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``.

Kept true by ``tests/api/test_openapi.py`` (its paths and methods equal the router's) and by the
schemathesis fuzz test (every answer matches the schema documented for its status).
"""

from __future__ import annotations

from typing import Any

from core.api.params import APP_NAME
from core.api.serializers import CHART_METRICS

Schema = dict[str, Any]

NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """An object whose listed properties are all required unless named in ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


POINT: Schema = {"type": "array", "prefixItems": [NUMBER, NUMBER], "minItems": 2, "maxItems": 2}
SERIES_KEYS = ("desired", *CHART_METRICS)
APP_STATUS: Schema = {"type": "string", "enum": ["running", "degraded", "stopped", "error"]}
MODE: Schema = {"type": "string", "enum": ["auto", "manual"]}

SCHEMAS: dict[str, Schema] = {
    "Error": obj({"detail": STRING}),
    "AppDocument": {
        "type": "object",
        "description": "An app spec (API.md 'App spec'); the engine validates it and names any bad field.",
        "properties": {
            "apiVersion": STRING,
            "kind": STRING,
            "metadata": obj({"name": STRING, "labels": {"type": "object"}}, optional=("labels",)),
            "spec": OBJECT,
            "scaling": OBJECT,
            "healthCheck": OBJECT,
        },
        "required": ["metadata", "spec"],
    },
    "Health": obj(
        {
            "status": {"type": "string", "enum": ["healthy", "degraded"]},
            "timestamp": NUMBER,
            "version": STRING,
            "database": obj(
                {"status": {"type": "string", "enum": ["ok", "error"]}, "detail": STRING}, ("detail",)
            ),
            "node_id": STRING,
            "is_leader": BOOLEAN,
        }
    ),
    "Registered": obj({"status": {"const": "registered"}, "app": STRING, "message": STRING}),
    "Started": obj(
        {
            "status": {"const": "started"},
            "app": STRING,
            "replicas": INTEGER,
            "adopted": INTEGER,
            "started": INTEGER,
        }
    ),
    "Stopped": obj({"status": {"const": "stopped"}, "app": STRING, "containers_stopped": INTEGER}),
    "Deleted": obj({"status": {"const": "deleted"}, "app": STRING, "message": STRING}),
    "Instance": obj(
        {
            "container_id": {"type": "string", "maxLength": 12},
            "ip": STRING,
            "port": INTEGER,
            "state": STRING,
            "cpu_percent": NUMBER,
            "memory_percent": NUMBER,
            "failures": INTEGER,
        }
    ),
    "AppStatus": obj(
        {
            "app": STRING,
            "status": APP_STATUS,
            "replicas": INTEGER,
            "ready_replicas": INTEGER,
            "instances": array(ref("Instance")),
            "mode": MODE,
        }
    ),
    "Scaled": obj(
        {"status": {"type": "string", "enum": ["scaled", "no_change"]}, "app": STRING, "replicas": INTEGER}
    ),
    "PolicyUpdated": obj({"status": {"const": "updated"}, "app": STRING, "policy": OBJECT}),
    "ParsedApp": obj(
        {
            "name": STRING,
            "spec": OBJECT,
            "status": APP_STATUS,
            "created_at": NUMBER,
            "updated_at": NUMBER,
            "replicas": INTEGER,
            "last_scaled_at": NULLABLE_NUMBER,
            "mode": MODE,
        }
    ),
    "LegacyAppList": obj({"apps": array({"allOf": [ref("ParsedApp"), obj({"ready_replicas": INTEGER})]})}),
    "RawApp": obj({"name": STRING, "raw": OBJECT, "parsed": ref("ParsedApp")}),
    "LegacyLogs": obj(
        {
            "app": STRING,
            "total_containers": INTEGER,
            "logs": array(
                obj(
                    {
                        "timestamp": NUMBER,
                        "container": {"type": "string", "maxLength": 12},
                        "container_full": STRING,
                        "message": STRING,
                    }
                )
            ),
        }
    ),
    "CurrentMetrics": obj(
        {
            "rps": NUMBER,
            "p95_latency_ms": NUMBER,
            "active_connections": INTEGER,
            "cpu_percent": NUMBER,
            "memory_percent": NUMBER,
            "healthy_replicas": INTEGER,
            "total_replicas": INTEGER,
        }
    ),
    "ScalingRecord": obj(
        {
            "id": INTEGER,
            "app_name": STRING,
            "from_replicas": INTEGER,
            "to_replicas": INTEGER,
            "trigger_reason": STRING,
            "metrics_snapshot": OBJECT,
            "timestamp": NUMBER,
        }
    ),
    "LegacyAppMetrics": obj(
        {
            "app": STRING,
            "metrics": obj({"metrics": ref("CurrentMetrics"), "scale_factors": OBJECT, "policy": OBJECT}),
            "scaling_history": array(ref("ScalingRecord")),
        }
    ),
    "SimulatedMetrics": {
        "type": "object",
        "properties": {
            "rps": {"type": "number", "minimum": 0},
            "p95LatencyMs": {"type": "number", "minimum": 0},
            "activeConnections": {"type": "number", "minimum": 0},
            "cpuPercent": {"type": "number", "minimum": 0},
            "memoryPercent": {"type": "number", "minimum": 0},
            "healthyReplicas": {"type": "number", "minimum": 0},
            "evaluate": BOOLEAN,
        },
    },
    "SimulationResult": obj(
        {
            "app": STRING,
            "metrics_added": OBJECT,
            "evaluation": {"type": ["object", "null"]},
            "action": {"type": ["object", "null"]},
        }
    ),
    "ClusterMetrics": {
        **obj({"timestamp": NUMBER, "cluster": OBJECT, "apps": OBJECT, "instances": OBJECT, "nginx": OBJECT}),
        "description": "JSON by default; Prometheus text with Accept: text/plain, OpenMetrics on request.",
    },
    "LegacyEvents": obj(
        {
            "events": array(
                obj(
                    {
                        "id": INTEGER,
                        "app_name": NULLABLE_STRING,
                        "event_type": STRING,
                        "message": STRING,
                        "timestamp": NUMBER,
                        "details": OBJECT,
                    }
                )
            )
        }
    ),
    "ClusterStatus": obj(
        {
            "node_id": STRING,
            "hostname": STRING,
            "state": {"type": "string", "enum": ["leader", "follower", "candidate"]},
            "term": INTEGER,
            "is_leader": BOOLEAN,
            "leader_id": NULLABLE_STRING,
            "cluster_size": INTEGER,
            "nodes": array(OBJECT),
            "lease": {"type": ["object", "null"]},
            "election_status": STRING,
        }
    ),
    "ClusterOverview": obj(
        {
            "now": NUMBER,
            "node_id": STRING,
            "term": {"type": ["integer", "null"]},
            "leader_id": NULLABLE_STRING,
            "lease": {
                "type": ["object", "null"],
                "description": "the newest lease row; remaining = seconds left by the database clock",
            },
            "nodes": array(
                obj(
                    {
                        "node_id": STRING,
                        "hostname": STRING,
                        "api_url": STRING,
                        "state": {"type": "string", "enum": ["leader", "follower", "candidate", "down"]},
                        "last_heartbeat": NUMBER,
                        "heartbeat_age": NUMBER,
                        "is_healthy": BOOLEAN,
                        "reachable": BOOLEAN,
                        "database": {"type": "string", "enum": ["ok", "error", "unknown"]},
                        "version": NULLABLE_STRING,
                    }
                )
            ),
            "history": array(
                obj(
                    {
                        "term": INTEGER,
                        "leader_id": STRING,
                        "hostname": STRING,
                        "acquired_at": NUMBER,
                        "ended_at": NULLABLE_NUMBER,
                        "ended": {
                            "type": ["string", "null"],
                            "enum": ["released", "expired", "fenced", None],
                        },
                    }
                )
            ),
        }
    ),
    "ClusterLeader": obj(
        {
            "leader_id": STRING,
            "hostname": STRING,
            "api_url": STRING,
            "external_api_url": STRING,
            "term": INTEGER,
            "lease_expires_at": NUMBER,
        }
    ),
    "ClusterHealth": obj(
        {
            "status": {"type": "string", "enum": ["healthy", "degraded"]},
            "clustering": {"type": "string", "enum": ["enabled", "disabled"]},
            "node_id": STRING,
            "state": STRING,
            "is_leader": BOOLEAN,
            "leader_id": NULLABLE_STRING,
            "cluster_size": INTEGER,
            "cluster_ready": BOOLEAN,
            "timestamp": NUMBER,
            "version": STRING,
        }
    ),
    # --- /api/v1 ---
    "AppSummary": obj(
        {
            "name": STRING,
            "status": APP_STATUS,
            "status_reason": STRING,
            "mode": MODE,
            "desired_replicas": INTEGER,
            "ready_replicas": INTEGER,
            "image": STRING,
            "created_at": NUMBER,
            "updated_at": NUMBER,
            "last_scaled_at": NULLABLE_NUMBER,
        }
    ),
    "AppList": obj({"apps": array(ref("AppSummary"))}),
    "Replica": obj(
        {
            "slot": INTEGER,
            "name": STRING,
            "container_id": {"type": "string", "maxLength": 12},
            "host": STRING,
            "port": INTEGER,
            "state": STRING,
            "ready": BOOLEAN,
            "failures": INTEGER,
            "restarts": INTEGER,
            "cpu_percent": NULLABLE_NUMBER,
            "memory_percent": NULLABLE_NUMBER,
            "started_at": NULLABLE_NUMBER,
            "reason": STRING,
            "node": {"type": "string", "description": "hostname of the node it runs on ('' until known)"},
            "figures_reason": {
                "type": "string",
                "description": "why cpu_percent/memory_percent are null ('' if measured or not sampled yet)",
            },
        }
    ),
    "Node": obj(
        {
            "id": STRING,
            "hostname": STRING,
            "address": {"type": "string", "description": "where replicas published on this node are reached"},
            "role": {"type": "string", "enum": ["manager", "worker", "standalone"]},
            "state": {"type": "string", "description": "ready, down, unknown or disconnected"},
            "availability": {"type": "string", "enum": ["active", "pause", "drain", "draining"]},
            "leader": BOOLEAN,
            "tasks": {"type": "integer", "description": "this installation's running replicas on the node"},
            "engine_version": STRING,
            "cpu_cores": NULLABLE_NUMBER,
            "memory_bytes": {"type": ["integer", "null"]},
            "cpu_reserved_cores": NULLABLE_NUMBER,
            "memory_reserved_bytes": {"type": ["integer", "null"]},
            "cpu_percent": {
                "type": ["number", "null"],
                "description": "CPU of this installation's replicas there (100 = one core); null: see reason",
            },
            "reason": {
                "type": ["string", "null"],
                "description": "why figures are null (node down, API unreachable)",
            },
        }
    ),
    "NodeList": obj({"nodes": array(ref("Node"))}),
    "NodeDrain": obj(
        {
            "node": ref("Node"),
            "moving": {"type": "integer", "description": "replicas being replaced on other nodes first"},
            "apps": array(STRING),
        }
    ),
    "NodeActivated": obj({"node": ref("Node")}),
    "App": {
        "allOf": [
            ref("AppSummary"),
            obj(
                {
                    "labels": {"type": "object", "additionalProperties": STRING},
                    "policy": OBJECT,
                    "spec": OBJECT,
                    "raw": OBJECT,
                    "replicas": array(ref("Replica")),
                }
            ),
        ]
    },
    "RegisterResult": obj({"created": BOOLEAN, "app": ref("App")}),
    "UpResult": obj({"app": STRING, "replicas": INTEGER, "adopted": INTEGER, "started": INTEGER}),
    "DownResult": obj({"app": STRING, "containers_stopped": INTEGER}),
    "RestartRequest": {
        "type": "object",
        "properties": {"replica": {"type": "integer", "minimum": 1, "maximum": 1000}},
    },
    "RestartResult": obj({"app": STRING, "restarted": array(INTEGER)}),
    "ScaleRequest": obj({"replicas": {"type": "integer", "minimum": 0, "maximum": 100}}),
    "ScaleResult": obj(
        {
            "app": STRING,
            "status": {"type": "string", "enum": ["scaled", "no_change"]},
            "replicas": INTEGER,
            "requested": INTEGER,
            "clamped": BOOLEAN,
            "message": STRING,
        }
    ),
    "PolicyRequest": obj({"policy": OBJECT}),
    "ScalingChanges": {
        "type": "object",
        "description": 'mode and any scaling key of the app spec (camelCase), e.g. {"maxReplicas": 8}',
        "properties": {"mode": MODE},
    },
    "ScalingResult": obj({"app": STRING, "policy": OBJECT}),
    "RegisterPreview": {
        **obj(
            {
                "app": STRING,
                "change": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                "spec_hash": STRING,
                "missing_secrets": array(obj({"variable": STRING, "secret": STRING, "field": STRING})),
            }
        ),
        "description": "what registering the document would do; missing_secrets: what `up` would "
        "refuse to start without",
    },
    "Rollout": obj(
        {
            "app": STRING,
            "status": APP_STATUS,
            "status_reason": STRING,
            "desired_replicas": {"type": "integer", "description": "what the engine aims at, 0 if stopped"},
            "ready_replicas": INTEGER,
            "updated_replicas": {
                "type": "integer",
                "description": "replicas on the current container spec with no restart pending",
            },
            "updated_ready_replicas": INTEGER,
            "terminating_replicas": INTEGER,
            "complete": {
                "type": "boolean",
                "description": "desired replicas are all ready and updated, and none is terminating",
            },
            "replicas": array(
                obj(
                    {
                        "slot": INTEGER,
                        "name": STRING,
                        "state": STRING,
                        "ready": BOOLEAN,
                        "updated": BOOLEAN,
                        "reason": STRING,
                    }
                )
            ),
        }
    ),
    "AppDeleted": obj({"status": {"const": "deleted"}, "app": STRING}),
    "InstancesCleared": obj({"app": STRING, "status": {"const": "cleared"}}),
    "Event": obj(
        {
            "id": INTEGER,
            "app": NULLABLE_STRING,
            "category": {"type": "string", "enum": ["lifecycle", "scaling", "health", "error", "cluster"]},
            "kind": STRING,
            "message": STRING,
            "details": OBJECT,
            "timestamp": NUMBER,
        }
    ),
    "Events": obj({"events": array(ref("Event"))}),
    "LogLine": obj(
        {
            "timestamp": NUMBER,
            "container_id": {"type": "string", "maxLength": 12},
            "replica": STRING,
            "stream": STRING,
            "message": STRING,
        }
    ),
    "Logs": obj({"app": STRING, "lines": array(ref("LogLine"))}),
    "AppMetrics": obj(
        {
            "app": STRING,
            "current": ref("CurrentMetrics"),
            "window": OBJECT,
            "policy": OBJECT,
            "last_decision": {"type": ["object", "null"]},
        }
    ),
    "Figures": {
        **obj(
            {
                "rps": NULLABLE_NUMBER,
                "p95_latency_ms": NULLABLE_NUMBER,
                "cpu_percent": NULLABLE_NUMBER,
                "memory_percent": NULLABLE_NUMBER,
            }
        ),
        "description": "the last 10 s; null while nothing was measured; CPU % of the limit, else of one core",
    },
    "Overview": obj(
        {
            "timestamp": NUMBER,
            "lb_listen": STRING,
            "runtime": {"type": "string", "enum": ["docker", "swarm"]},
            "apps": array({"allOf": [ref("App"), obj({"figures": ref("Figures")})]}),
        }
    ),
    "Series": obj(
        {
            "app": STRING,
            "seconds": INTEGER,
            "timestamp": NUMBER,
            "series": {
                **obj({k: array(POINT) for k in SERIES_KEYS}),
                "description": "[epoch second, value] points, oldest first; desired is 0 while stopped",
            },
        }
    ),
    "BacktestRequest": {
        **obj(
            {
                "policy": {"type": "object", "description": "scaling keys of the candidate, as in apply"},
                "since": {"type": "number", "description": "seconds of recorded history (21600)"},
                "trace": {"type": "string", "enum": ["step", "ramp", "spike", "sine"]},
            },
            optional=("policy", "since", "trace"),
        ),
        "additionalProperties": False,
    },
    "BacktestRun": obj(
        {
            "policy": OBJECT,
            "replicas": array(POINT),
            "decisions": array(
                obj(
                    {
                        "at": NUMBER,
                        "from_replicas": INTEGER,
                        "to_replicas": INTEGER,
                        "reason": STRING,
                        "deciding_metric": NULLABLE_STRING,
                    }
                )
            ),
            "summary": obj(
                {
                    "samples": INTEGER,
                    "duration_seconds": NUMBER,
                    "scale_events": INTEGER,
                    "scale_outs": INTEGER,
                    "scale_ins": INTEGER,
                    "replica_minutes": NUMBER,
                    "under_provisioned_minutes": NUMBER,
                    "under_provisioned_by_metric": {"type": "object", "additionalProperties": NUMBER},
                    "peak_replicas": INTEGER,
                    "flaps": INTEGER,
                    "flap_horizon_seconds": NUMBER,
                }
            ),
            "last_reason": STRING,
        }
    ),
    "Backtest": obj(
        {
            "app": STRING,
            "source": STRING,
            "since": NUMBER,
            "start": NULLABLE_NUMBER,
            "end": NULLABLE_NUMBER,
            "samples": INTEGER,
            "model": STRING,
            "load": {"type": "object", "additionalProperties": array(POINT)},
            "current": ref("BacktestRun"),
            "candidate": ref("BacktestRun"),
        }
    ),
    "LeadershipReleased": obj({"status": {"const": "released"}, "node_id": STRING}),
    "SecretFields": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": STRING,
        "description": 'field name → value, e.g. {"password": "..."}; values are never returned',
    },
    "Secret": obj({"name": STRING, "fields": array(STRING)}),
    "SecretList": obj({"secrets": array(ref("Secret"))}),
    "SecretDeleted": obj({"status": {"const": "deleted"}, "name": STRING}),
}

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
    response: str | dict[str, Any],
    errors: tuple[str, ...] = COMMON_ERRORS,
    *,
    body: str | None = None,
    body_required: bool = True,
    parameters: list[dict[str, Any]] | None = None,
    status: str = "200",
    extra_responses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content = _json(ref(response)) if isinstance(response, str) else response
    responses: dict[str, Any] = {status: {"description": summary, "content": content}}
    responses.update(extra_responses or {})
    for code in (*errors, "500"):
        responses[code] = {"description": ERROR_DESCRIPTIONS[code], "content": _json(ref("Error"))}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {"required": body_required, "content": _json(ref(body))}
    return op


def _app(summary: str, response: str, errors: tuple[str, ...] = APP_ERRORS, **kw: Any) -> dict[str, Any]:
    kw["parameters"] = [NAME_PARAMETER, *kw.get("parameters", [])]
    return operation(summary, response, errors, **kw)


NODE_PARAMETER = {
    "name": "node",
    "in": "path",
    "required": True,
    "description": "node id, unique id prefix or hostname",
    "schema": {"type": "string"},
}


def _node(summary: str, response: str) -> dict[str, Any]:
    return operation(summary, response, (*APP_ERRORS, "409"), parameters=[NODE_PARAMETER])


METRICS_CONTENT = {
    **_json(ref("ClusterMetrics")),
    "text/plain": {"schema": STRING},
    "application/openmetrics-text": {"schema": STRING},
}
NDJSON_CONTENT = {**_json(ref("Logs")), "application/x-ndjson": {"schema": STRING}}

PATHS: dict[str, dict[str, Any]] = {
    "/health": {"get": operation("Liveness and database state; never waits on Docker", "Health", ())},
    "/apps/register": {
        "post": operation("Register or update an app", "Registered", WRITE_ERRORS, body="AppDocument")
    },
    "/apps/{name}/up": {"post": _app("Start the app's replicas", "Started", WRITE_ERRORS)},
    "/apps/{name}/down": {"post": _app("Stop the app's replicas", "Stopped")},
    "/apps/{name}": {"delete": _app("Stop and forget the app", "Deleted")},
    "/apps/{name}/status": {"get": _app("Status and replicas", "AppStatus")},
    "/apps/{name}/scale": {
        "post": _app("Set the replica count", "Scaled", WRITE_ERRORS, body="ScaleRequest")
    },
    "/apps/{name}/policy": {
        "post": _app("Change the scaling policy", "PolicyUpdated", WRITE_ERRORS, body="PolicyRequest")
    },
    "/apps": {"get": operation("Every app", "LegacyAppList")},
    "/apps/{name}/raw": {"get": _app("The document as submitted (secrets redacted)", "RawApp")},
    "/apps/{name}/logs": {
        "get": _app(
            "Recent replica logs, newest first",
            "LegacyLogs",
            parameters=[
                query("lines", {"type": "integer", "minimum": 1, "maximum": 10000}, "how many lines")
            ],
        )
    },
    "/apps/{name}/metrics": {"get": _app("Current metrics, policy and scaling history", "LegacyAppMetrics")},
    "/apps/{name}/simulateMetrics": {
        "post": _app(
            "Feed a metrics sample (tests and demos)",
            "SimulationResult",
            WRITE_ERRORS,
            body="SimulatedMetrics",
            body_required=False,
        )
    },
    "/metrics": {"get": operation("Cluster metrics (JSON) or Prometheus exposition", METRICS_CONTENT)},
    "/events": {
        "get": operation(
            "Events, newest first",
            "LegacyEvents",
            parameters=[query("app", STRING, "only this app's events"), CATEGORY, LIMIT],
        )
    },
    "/cluster/status": {"get": operation("This node's view of the cluster", "ClusterStatus")},
    "/cluster/leader": {"get": operation("The current leader (503 when none)", "ClusterLeader")},
    "/cluster/health": {"get": operation("Cluster readiness", "ClusterHealth")},
    "/api/v1/openapi.json": {"get": operation("This document", _json(OBJECT), ())},
    "/api/v1/apps": {
        "get": operation("Every app", "AppList"),
        "post": operation(
            "Register an app (409 if it exists unless replace=true)",
            "RegisterResult",
            WRITE_ERRORS,
            body="AppDocument",
            status="201",
            parameters=[query("replace", BOOL_QUERY, "update an existing app instead of failing")],
            extra_responses={"200": {"description": "Replaced", "content": _json(ref("RegisterResult"))}},
        ),
    },
    "/api/v1/validate": {
        "post": operation(
            "Dry run of register: validate a document and say what registering it would change",
            "RegisterPreview",
            (*COMMON_ERRORS, "422"),
            body="AppDocument",
        )
    },
    "/api/v1/apps/{name}": {
        "get": _app("Describe an app (spec with secrets redacted)", "App"),
        "delete": _app("Stop and forget the app", "AppDeleted"),
    },
    "/api/v1/apps/{name}/rollout": {
        "get": _app("Progress towards the desired replicas on the current spec (leader only)", "Rollout")
    },
    "/api/v1/apps/{name}/up": {"post": _app("Start the app's replicas", "UpResult", WRITE_ERRORS)},
    "/api/v1/apps/{name}/down": {
        "post": _app(
            "Stop the app's replicas",
            "DownResult",
            parameters=[query("force", BOOL_QUERY, "kill without waiting for the grace period")],
        )
    },
    "/api/v1/apps/{name}/restart": {
        "post": _app(
            "Rolling restart (or one replica)",
            "RestartResult",
            WRITE_ERRORS,
            body="RestartRequest",
            body_required=False,
        )
    },
    "/api/v1/apps/{name}/scale": {
        "post": _app(
            "Set the replica count (clamped in auto mode)", "ScaleResult", WRITE_ERRORS, body="ScaleRequest"
        )
    },
    "/api/v1/apps/{name}/scaling": {
        "put": _app("Change mode and scaling keys", "ScalingResult", WRITE_ERRORS, body="ScalingChanges")
    },
    "/api/v1/apps/{name}/instances": {
        "delete": _app("Forget runtime state; replicas are recreated from the spec", "InstancesCleared")
    },
    "/api/v1/apps/{name}/events": {
        "get": _app(
            "The app's events, newest first",
            "Events",
            parameters=[CATEGORY, LIMIT, query("since", TIME_QUERY, "only events after this time")],
        )
    },
    "/api/v1/events": {
        "get": operation(
            "Every event, newest first",
            "Events",
            parameters=[CATEGORY, LIMIT, query("since", TIME_QUERY, "only events after this time")],
        )
    },
    "/api/v1/apps/{name}/logs": {
        "get": _app(
            "Merged replica logs, oldest first; follow=true streams newline-delimited JSON",
            NDJSON_CONTENT,  # type: ignore[arg-type]
            parameters=[
                query("tail", {"type": "integer", "minimum": 0, "maximum": 10000}, "lines per replica"),
                query("since", TIME_QUERY, "only lines after this time"),
                query("until", TIME_QUERY, "only lines before this time"),
                query("follow", BOOL_QUERY, "keep streaming new lines"),
            ],
        )
    },
    "/api/v1/apps/{name}/metrics": {
        "get": _app("Current figures, window, policy, last decision", "AppMetrics")
    },
    "/api/v1/apps/{name}/series": {
        "get": _app(
            "Chart history: desired and ready replicas, requests/s, p95 latency, CPU, memory",
            "Series",
            parameters=[
                query("seconds", {"type": "integer", "minimum": 10, "maximum": 900}, "how far back (300)")
            ],
        )
    },
    "/api/v1/apps/{name}/backtest": {
        "post": _app(
            "What the current and a candidate scaling policy would have done over the recorded load",
            "Backtest",
            (*APP_ERRORS, "422"),
            body="BacktestRequest",
            body_required=False,
        )
    },
    "/api/v1/overview": {
        "get": operation("Every app described, with its latest figures and the LB address", "Overview")
    },
    "/api/v1/nodes": {"get": operation("The runtime's nodes (one for a single Docker host)", "NodeList")},
    "/api/v1/nodes/{node}/drain": {
        "post": _node(
            "Move this installation's replicas off the node (new ones routed first), then drain it",
            "NodeDrain",
        )
    },
    "/api/v1/nodes/{node}/activate": {"post": _node("The node takes new replicas again", "NodeActivated")},
    "/api/v1/cluster/status": {"get": operation("This node's view of the cluster", "ClusterStatus")},
    "/api/v1/cluster/leader": {"get": operation("The current leader (503 when none)", "ClusterLeader")},
    "/api/v1/cluster/overview": {
        "get": operation(
            "Every controller (state, heartbeat age, database, version), the lease and the term history",
            "ClusterOverview",
        )
    },
    "/api/v1/cluster/leadership": {
        "delete": operation("The leader releases its lease", "LeadershipReleased")
    },
    "/api/v1/secrets": {"get": operation("Every secret's field names (never values)", "SecretList")},
    "/api/v1/secrets/{name}": {
        "put": _app("Set a secret's fields", "Secret", WRITE_ERRORS, body="SecretFields"),
        "get": _app("A secret's field names (never values)", "Secret"),
        "delete": _app("Delete a secret", "SecretDeleted"),
    },
    "/api/v1/diagnostics": {
        "post": operation(
            "A diagnostic snapshot (.tar.gz, secrets redacted)",
            {"application/gzip": {"schema": {"type": "string", "contentEncoding": "binary"}}},
        )
    },
}


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
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }
