"""Every JSON route's answer for one fixed scenario, compared with the golden files in tests/api/golden/.

The files were captured from the hand-written serializers before the wire models replaced them, so the
wire format (keys, their order, value types, fixed values) is what an Orchestry 1.0 client and this
project's console read.  Values that differ from run to run (times, ids, ports, node names) are
replaced by their JSON type ("<number>", "<string>", ...); lists whose length depends on timing
(events, logs, history, chart points) keep their first item only.  ORCHESTRY_WRITE_GOLDEN=1 rewrites
the files (review the diff: it is the wire contract).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from tests.support.world import MemoryWorld, app_document, memory_world

GOLDEN = Path(__file__).parent / "golden"
VOLATILE = {
    "timestamp",
    "created_at",
    "updated_at",
    "last_scaled_at",
    "started_at",
    "acquired_at",
    "expires_at",
    "renewed_at",
    "lease_expires_at",
    "last_heartbeat",
    "container_id",
    "container_full",
    "container",
    "id",
    "node_id",
    "leader_id",
    "hostname",
    "api_url",
    "external_api_url",
    "spec_hash",
    "port",
    "version",
    "message",
    "reason",
    "status_reason",
    "last_reload_at",
    "pid",
    "details",
    "metrics_snapshot",
    "start",
    "end",
    "at",
    "listen",
    "lb_listen",
    "election_status",
    "trigger_reason",
    "last_decision",
    "window",
    "scale_factors",
    "evaluation",
    "action",
    "seconds_ago",
    "term",
    "now",
    "heartbeat_age",
    "remaining",
    "started",
    "adopted",
    "containers_stopped",
}
# Answers computed from timing (a synthetic trace, chart points): only their shape and types are fixed.
SHAPE_ONLY = ("/backtest", "/series", "/events")
TIMING_LISTS = {"events", "logs", "lines", "scaling_history", "decisions", "nodes"}
POINT_LISTS = {"desired", "ready_replicas", "rps", "p95_latency_ms", "cpu_percent", "memory_percent"}


def _type(value: Any) -> str:
    if value is None:
        return "<null>"
    if isinstance(value, bool):
        return "<boolean>"
    if isinstance(value, int | float):
        return "<number>"
    if isinstance(value, str):
        return "<string>"
    if isinstance(value, list):
        return "<array>"
    return "<object>"


def shape(value: Any, key: str = "") -> Any:
    """Keys and value types only (free-form and volatile values: their type); a list keeps one item."""
    if key in VOLATILE:
        return _type(value)
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return _type(value)


def normalize(value: Any, key: str = "", inside: tuple[str, ...] = ()) -> Any:
    if key in VOLATILE:
        return _type(value)
    if isinstance(value, dict):
        return {k: normalize(v, k, (*inside, key)) for k, v in value.items()}
    if isinstance(value, list):
        if key in TIMING_LISTS or (key in POINT_LISTS and inside[-1:] in (("series",), ("load",))):
            value = value[:1]
        if inside[-1:] == ("load",) or (key == "replicas" and value and isinstance(value[0], list)):
            value = value[:1]
        return [normalize(v, "", (*inside, key)) for v in value]
    if isinstance(value, float) and key.endswith(("percent", "_ms", "rps", "minutes", "seconds")):
        return "<number>"
    return value


async def scenario(world: MemoryWorld, api: TestClient) -> list[tuple[str, str, Any, int, Any]]:
    """Runs the fixed scenario; returns (method, path, body, status, normalized answer) per request."""
    engine = world.engine
    web = app_document("web", replicas=2)
    web["metadata"]["labels"] = {"team": "demo"}
    web["spec"]["environment"] = [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "MODE", "value": "x"}]
    await engine.register(web)
    await engine.up("web")
    await world.ready("web", 2)
    world.runtime.log("web-1", "hello from web-1")
    await engine.set_secret("db", {"password": "s3cret"})

    requests: list[tuple[str, str, Any]] = [
        ("GET", "/health", None),
        ("GET", "/apps", None),
        ("GET", "/apps/web/status", None),
        ("GET", "/apps/web/raw", None),
        ("GET", "/apps/web/logs?lines=5", None),
        ("GET", "/apps/web/metrics", None),
        ("POST", "/apps/web/simulateMetrics", {"rps": 10, "evaluate": False}),
        ("GET", "/metrics", None),
        ("GET", "/events?limit=3", None),
        ("GET", "/cluster/status", None),
        ("GET", "/cluster/leader", None),
        ("GET", "/cluster/health", None),
        ("POST", "/apps/register", app_document("api", replicas=1)),
        ("POST", "/apps/api/scale", {"replicas": 1}),
        ("POST", "/apps/api/policy", {"policy": {"maxReplicas": 4}}),
        ("POST", "/apps/api/up", None),
        ("POST", "/apps/api/down", None),
        ("DELETE", "/apps/api", None),
        ("GET", "/apps/nope/status", None),
        ("POST", "/apps/web/scale", {"replicas": "three"}),
        ("GET", "/api/v1/apps", None),
        ("POST", "/api/v1/apps", app_document("batch", replicas=1)),
        ("POST", "/api/v1/apps", app_document("batch", replicas=1)),
        ("POST", "/api/v1/apps?replace=true", app_document("batch", replicas=1)),
        ("POST", "/api/v1/validate", app_document("batch", replicas=1)),
        ("POST", "/api/v1/apps", {"metadata": {"name": "bad"}, "spec": {"image": "x", "replicaz": 3}}),
        ("GET", "/api/v1/apps/web", None),
        ("GET", "/api/v1/apps/web/rollout", None),
        ("POST", "/api/v1/apps/batch/up", None),
        ("POST", "/api/v1/apps/batch/scale", {"replicas": 2}),
        ("PUT", "/api/v1/apps/batch/scaling", {"mode": "manual"}),
        ("GET", "/api/v1/apps/web/events?limit=2", None),
        ("GET", "/api/v1/events?limit=2", None),
        ("GET", "/api/v1/apps/web/logs?tail=5", None),
        ("GET", "/api/v1/apps/web/metrics", None),
        ("GET", "/api/v1/overview", None),
        ("GET", "/api/v1/apps/web/series?seconds=60", None),
        ("POST", "/api/v1/apps/web/backtest", {"trace": "step"}),
        ("GET", "/api/v1/nodes", None),
        ("POST", "/api/v1/nodes/memory/activate", None),
        ("GET", "/api/v1/cluster/status", None),
        ("GET", "/api/v1/cluster/leader", None),
        ("GET", "/api/v1/secrets", None),
        ("PUT", "/api/v1/secrets/api-key", {"token": "abc"}),
        ("GET", "/api/v1/secrets/api-key", None),
        ("DELETE", "/api/v1/secrets/api-key", None),
        ("POST", "/api/v1/apps/batch/restart", None),
        ("DELETE", "/api/v1/apps/batch/instances", None),
        ("POST", "/api/v1/apps/batch/down", None),
        ("DELETE", "/api/v1/apps/batch", None),
        ("GET", "/api/v1/apps/nope", None),
        ("GET", "/api/v1/cluster/overview", None),
    ]
    answers = []
    for method, path, body in requests:
        response = await api.request(method, path, json=body)
        answer = await response.json()
        fixed = shape(answer) if path.split("?")[0].endswith(SHAPE_ONLY) else normalize(answer)
        answers.append((method, path, body, response.status, fixed))
    return answers


def golden_name(index: int, method: str, path: str) -> str:
    slug = path.strip("/").replace("/", "_").replace("?", "_").replace("=", "-").replace("&", "_")
    return f"{index:02d}-{method.lower()}-{slug or 'root'}.json"


async def test_every_route_answers_as_the_golden_files_say(tmp_path: Path) -> None:
    async with memory_world(tmp_path / "state", node_id="golden-node") as world:
        client = TestClient(TestServer(create_app(world.engine, world.engine.settings.node_id)))
        await client.start_server()
        try:
            answers = await scenario(world, client)
        finally:
            await client.close()
    write = os.environ.get("ORCHESTRY_WRITE_GOLDEN") == "1"
    if write:
        GOLDEN.mkdir(exist_ok=True)
    mismatches = []
    for index, (method, path, _body, status, answer) in enumerate(answers):
        # Key order is part of the format: compare the text, not the parsed objects.
        text = json.dumps({"request": f"{method} {path}", "status": status, "answer": answer}, indent=1)
        file = GOLDEN / golden_name(index, method, path)
        if write:
            file.write_text(text + "\n")
        elif not file.exists() or file.read_text() != text + "\n":
            mismatches.append(f"{file.name}:\n{text}")
    assert not mismatches, "answers differ from the golden files:\n" + "\n".join(mismatches)
