"""Helpers for tests that drive a whole Engine on the Swarm lab (``swarm_lab`` fixture) and real nginx."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import docker

from core.engine import Engine
from tests.integration.harness import engine_settings, get_text, lb

REPLICA = re.compile(r"replica=(\S+)")


def swarm_settings(lab: Any, state_dir: Path, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "runtime": "swarm",
        "docker_url": lab.manager_url,
        "relist_interval": 5.0,
    }
    values.update(extra)
    return engine_settings(state_dir, **values)


@asynccontextmanager
async def swarm_engine(
    lab: Any, state_dir: Path, stop_apps: bool = True, **extra: Any
) -> AsyncIterator[Engine]:
    engine = Engine(swarm_settings(lab, state_dir, **extra))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop(stop_apps=stop_apps)


def swarm_app(lab: Any, name: str, **overrides: Any) -> dict[str, Any]:
    """A demo-image app from the lab's registry, manual scaling, fast probes."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {
            "image": lab.image,
            "command": ["/bin/serve"],
            "ports": [{"containerPort": 8080}],
            "terminationGracePeriodSeconds": 5,
        },
        "scaling": {"mode": "manual", "minReplicas": 1, "maxReplicas": 10},
        "healthCheck": {"path": "/health", "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
    }
    doc.update(overrides)
    return doc


def app_name(prefix: str = "sw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def manager(lab: Any) -> docker.DockerClient:
    return docker.DockerClient(base_url=lab.manager_url)


def services_of(lab: Any, app: str) -> dict[str, str]:
    """Service name → id of the app's Swarm services."""
    client = manager(lab)
    try:
        return {s.name: s.id for s in client.services.list(filters={"label": f"orchestry.app={app}"})}
    finally:
        client.close()


async def ready_hosts(engine: Engine, name: str) -> list[str]:
    """The node address of every replica that is ready and routed."""
    view = await engine.get_app(name)
    return [r.host for r in view.replicas if r.ready]


async def replicas_answering(engine: Engine, name: str, attempts: int = 300) -> set[str]:
    """The replica names seen answering through nginx over up to ``attempts`` requests (stops once
    every ready replica has answered)."""
    view = await engine.get_app(name)
    wanted = {r.name for r in view.replicas if r.ready}
    seen: set[str] = set()
    for _ in range(attempts):
        status, body = await get_text(lb(engine, name))
        match = REPLICA.search(body) if status == 200 else None
        if match:
            seen.add(match.group(1))
        if wanted <= seen:
            break
    return seen
