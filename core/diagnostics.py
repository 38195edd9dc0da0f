"""Diagnostic snapshot: one .tar.gz an operator can attach to a bug report.

Holds settings (secrets as ***), apps (specs redacted), replicas, the last events, scaling history,
the generated nginx config and its error log tail, cluster state, versions and background-task state.
Everything passes through the redactor before it is written.
"""

from __future__ import annotations

import asyncio
import io
import json
import platform
import tarfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import __version__
from core.redaction import default_redactor

if TYPE_CHECKING:
    from core.engine import Engine

MAX_FILE_BYTES = 512 * 1024


def _json(data: Any) -> bytes:
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    return default_redactor.redact(text).encode()


def _tail(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return default_redactor.redact(handle.read().decode(errors="replace")).encode()
    except OSError:
        return b""


async def build_snapshot(engine: Engine) -> bytes:
    apps = await engine.list_apps()
    events = await engine.events(limit=1000)
    history = {app.name: [asdict(r) for r in await engine.scaling_history(app.name, 200)] for app in apps}
    files: dict[str, bytes] = {
        "snapshot.json": _json(
            {
                "created_at": time.time(),
                "version": __version__,
                "python": platform.python_version(),
                "platform": platform.platform(),
                "node_id": engine.node_id,
                "background_tasks": engine.supervisor.names(),
                "task_restarts": engine.supervisor.restarts,
                "docker": engine.runtime_error or "reachable",
            }
        ),
        "settings.json": _json(engine.settings.public_dict()),
        "apps.json": _json([asdict(app) for app in apps]),
        "events.json": _json([asdict(e) for e in events]),
        "scaling_history.json": _json(history),
        "cluster.json": _json(await engine.cluster_status()),
        "nginx/status.json": _json(engine.nginx.status()),
    }
    prefix = engine.settings.state_dir / "nginx"
    for path in sorted(prefix.rglob("*.conf")) + sorted(prefix.rglob("*.locations")):
        files[f"nginx/{path.relative_to(prefix)}"] = _tail(path)
    files["nginx/error.log"] = _tail(prefix / "error.log", 64 * 1024)

    def pack() -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            stamp = time.time()
            for name, content in files.items():
                info = tarfile.TarInfo(f"orchestry-snapshot/{name}")
                info.size = len(content)
                info.mtime = int(stamp)
                archive.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    return await asyncio.to_thread(pack)
