"""The support bundle (diagnostic snapshot): one .tar.gz that answers the troubleshooting guide offline.

Members (``orchestry-snapshot/...``; README.txt inside says which file answers which question):

- ``snapshot.json``, ``versions.json``: when, which node, background tasks; Orchestry, Python, Docker and
  nginx versions.
- ``settings.json``, ``database.json``, ``cluster.json``: effective settings; the store's reachability,
  round trip and migration revision; leadership and nodes.
- ``controller.log``: the controller's own recent log (an in-memory ring, ``core.recent_log``).
- ``events.json``, ``scaling_history.json``, ``apps.json``: what happened; every app's spec and replicas.
- ``apps/<app>/replicas.json``: each replica's container state (exit code, OOM kill, restarts, crash
  back-off); ``apps/<app>/health.json``: its probes; ``apps/<app>/metrics.json``: the windows the
  scaler reads and its last decision; ``apps/<app>/logs/<container>.log``: its recent output.
- ``nginx/``: the generated configuration, ``nginx -t`` and its error log.

Every member passes through the redactor (secret values, the API token, the database password and
the key that encrypts secrets are registered in it) before it is written; specs are redacted documents.
A part that cannot be collected says why in its place instead of failing the bundle.
"""

from __future__ import annotations

import asyncio
import io
import json
import platform
import tarfile
import time
from collections.abc import Awaitable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from core import __version__, recent_log
from core.models import AppView, Event, ScalingRecord
from core.reconciler import Reconciler
from core.redaction import default_redactor
from core.runtime.base import Runtime
from core.settings import Settings
from core.store import Store
from core.supervisor import Supervisor


class Engine(Protocol):
    """What the bundle reads: the facade's reads and the node's components (never imported from
    core.engine, which sits above this module)."""

    node_id: str
    settings: Settings
    supervisor: Supervisor

    @property
    def runtime(self) -> Runtime: ...

    @property
    def nginx(self) -> Any: ...

    @property
    def store(self) -> Store: ...

    @property
    def reconciler(self) -> Reconciler: ...

    @property
    def runtime_error(self) -> str: ...

    async def list_apps(self) -> list[AppView]: ...

    async def events(self, limit: int = 100) -> list[Event]: ...

    async def scaling_history(self, name: str, limit: int = 50) -> list[ScalingRecord]: ...

    async def cluster_status(self) -> dict[str, Any]: ...

    async def app_metrics(self, name: str) -> dict[str, Any]: ...


MAX_FILE_BYTES = 512 * 1024
LOG_LINES_PER_REPLICA = 200
PART_TIMEOUT = 10.0  # seconds any one part may take (a hung Docker or database must not hang the bundle)
ROOT = "orchestry-snapshot"

GUIDE = """Which file answers which question (docs/troubleshooting.md has the whole guide):

Is the service up? Which versions?       snapshot.json, versions.json, cluster.json
Is the database reachable and migrated?  database.json
What did the controller do or complain?  controller.log, events.json
Why will an app not start / keep dying?  apps/<app>/replicas.json (exit code, OOM kill, restarts,
                                         back-off reason), apps/<app>/logs/<container>.log
Why is a replica not routed?             apps/<app>/health.json (last probe result per replica)
Why did (or didn't) it scale?            apps/<app>/metrics.json (the scaler's window and last
                                         decision), scaling_history.json
Why does the load balancer fail?         nginx/nginx-t.txt, nginx/error.log, nginx/conf.d/*.conf
What is configured?                      settings.json, apps.json (specs, secrets redacted)
"""


def _json(data: Any) -> bytes:
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    return default_redactor.redact(text).encode()


def _text(text: str) -> bytes:
    return default_redactor.redact(text).encode()


def _tail(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return _text(handle.read().decode(errors="replace"))
    except OSError:
        return b""


async def _part(work: Awaitable[Any]) -> Any:
    """The part's value, or ``{"error": why}`` when it failed or took too long."""
    try:
        return await asyncio.wait_for(work, PART_TIMEOUT)
    except TimeoutError:
        return {"error": f"did not answer within {PART_TIMEOUT:.0f} s"}
    except Exception as exc:  # a diagnostic must report a failure, not become one
        return {"error": f"{type(exc).__name__}: {exc}"}


async def _versions(engine: Engine) -> dict[str, Any]:
    runtime_version = getattr(engine.runtime, "version", None)
    nginx_diagnose = getattr(engine.nginx, "diagnose", None)
    docker = await _part(runtime_version()) if runtime_version else {"error": "runtime reports no version"}
    nginx = await _part(nginx_diagnose()) if nginx_diagnose else {"error": "load balancer reports nothing"}
    return {
        "orchestry": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "docker": docker,
        "nginx": nginx,
    }


async def _database(engine: Engine) -> dict[str, Any]:
    from core.settings import redact_url
    from core.store.db import current_revision

    found: dict[str, Any] = {
        "url": redact_url(engine.settings.database_url),
        "dialect": engine.store.dialect,
    }
    started = time.monotonic()
    ping = await _part(engine.store.read(engine.store.ping))
    found["reachable"] = not (isinstance(ping, dict) and "error" in ping)
    found["round_trip_ms"] = round((time.monotonic() - started) * 1000, 1)
    if not found["reachable"]:
        found["error"] = ping["error"]
        return found
    revision = await _part(asyncio.to_thread(current_revision, engine.settings.database_url))
    found["migration_revision"] = revision
    return found


def _health(engine: Engine, app: str) -> list[dict[str, Any]]:
    targets = getattr(engine.reconciler.health, "_targets", {}) or {}
    return [
        {
            "replica": f"{t.app}-{t.slot}",
            "slot": t.slot,
            "container_id": t.container_id[:12],
            "address": f"{t.host}:{t.port}",
            "ready": t.ready,
            "consecutive_failures": t.consecutive_failures,
            "consecutive_successes": t.consecutive_successes,
            "last_result": t.last_detail,
            "last_checked_at": t.last_checked_at,
            "check": t.check.model_dump(by_alias=True) if t.check is not None else None,
        }
        for t in sorted(list(targets.values()), key=lambda t: t.slot)
        if t.app == app
    ]


def _crash_backoff(engine: Engine, app: str) -> dict[str, Any]:
    state = engine.reconciler.apps.get(app)
    if state is None:
        return {}
    return {
        str(slot): {"crashes": entry.crashes, "retry_at": entry.retry_at, "reason": entry.reason}
        for slot, entry in sorted(state.backoff.items())
    }


async def _app_members(engine: Engine, app: Any) -> dict[str, bytes]:
    name = app.name
    containers = await _part(engine.runtime.list_managed(name))
    if isinstance(containers, dict):
        containers_found: list[Any] = []
        container_error = containers["error"]
    else:
        containers_found, container_error = containers, ""
    metrics = await _part(engine.app_metrics(name))
    members = {
        f"apps/{name}/replicas.json": _json(
            {
                "replicas": [asdict(r) for r in app.replicas],
                "containers": [
                    {
                        "name": c.name,
                        "id": c.id[:12],
                        "slot": c.slot,
                        "state": c.state,
                        "exit_code": c.exit_code,
                        "oom_killed": c.oom_killed,
                        "error": c.error,
                        "started_at": c.started_at,
                        "finished_at": c.finished_at,
                        "address": f"{c.host}:{c.port}",
                        "spec_hash": c.spec_hash,
                    }
                    for c in containers_found
                ],
                "containers_error": container_error,
                "crash_backoff": _crash_backoff(engine, name),
            }
        ),
        f"apps/{name}/health.json": _json(_health(engine, name)),
        f"apps/{name}/metrics.json": _json(metrics),
    }
    logs = await asyncio.gather(
        *(
            _part(engine.runtime.logs(c.id, tail=LOG_LINES_PER_REPLICA, since=None, until=None))
            for c in containers_found
        )
    )
    for container, lines in zip(containers_found, logs, strict=True):
        if isinstance(lines, dict):
            text = f"(logs unavailable: {lines['error']})\n"
        else:
            text = "".join(
                f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(line.timestamp))}Z {line.message}\n"
                for line in lines
            )
        members[f"apps/{name}/logs/{container.name}.log"] = _text(text)
    return members


async def collect(engine: Engine) -> dict[str, bytes]:
    """Every member of the bundle, by name, each already redacted."""
    apps = await engine.list_apps()
    events = await engine.events(limit=1000)
    history = {app.name: [asdict(r) for r in await engine.scaling_history(app.name, 200)] for app in apps}
    versions, database, cluster = await asyncio.gather(
        _versions(engine), _database(engine), _part(engine.cluster_status())
    )
    files: dict[str, bytes] = {
        "README.txt": GUIDE.encode(),
        "snapshot.json": _json(
            {
                "created_at": time.time(),
                "version": __version__,
                "node_id": engine.node_id,
                "background_tasks": engine.supervisor.names(),
                "task_restarts": engine.supervisor.restarts,
                "docker": engine.runtime_error or "reachable",
            }
        ),
        "versions.json": _json(versions),
        "settings.json": _json(engine.settings.public_dict()),
        "database.json": _json(database),
        "cluster.json": _json(cluster),
        "controller.log": _text("".join(line + "\n" for line in recent_log.recent_lines())),
        "apps.json": _json([asdict(app) for app in apps]),
        "events.json": _json([asdict(e) for e in events]),
        "scaling_history.json": _json(history),
        "nginx/status.json": _json(engine.nginx.status()),
    }
    nginx = versions.get("nginx") or {}
    files["nginx/nginx-t.txt"] = _text(
        f"$ {nginx.get('test_command', 'nginx -t')}\n{nginx.get('test_output', nginx.get('error', ''))}\n"
        f"exit status: {nginx.get('test_exit_code', 'unknown')}\n"
    )
    for members in await asyncio.gather(*(_app_members(engine, app) for app in apps)):
        files.update(members)
    prefix = engine.settings.state_dir / "nginx"
    for path in sorted(prefix.rglob("*.conf")) + sorted(prefix.rglob("*.locations")):
        files[f"nginx/{path.relative_to(prefix)}"] = _tail(path)
    files["nginx/error.log"] = _tail(prefix / "error.log", 64 * 1024)
    return files


def pack(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        stamp = int(time.time())
        for name, content in files.items():
            info = tarfile.TarInfo(f"{ROOT}/{name}")
            info.size = len(content)
            info.mtime = stamp
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


async def build_snapshot(engine: Engine) -> bytes:
    return await asyncio.to_thread(pack, await collect(engine))
