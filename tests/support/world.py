"""The whole engine on the in-memory runtime, a recording load balancer and a fake clock.

The REAL engine, reconciler, health checker, store (SQLite in the test's tmp dir), lease election and
scaling loop run; only Docker, nginx, sockets and the reconciler's and probes' sense of time are
replaced.  ``runtime.journal`` holds, in order, every create/stop/remove of the runtime and every
route/unroute of the load balancer, so tests can assert what happened first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from core.engine import Engine
from core.lb.memory import MemoryNginx
from core.runtime.memory import MemoryContainer, MemoryPorts, MemoryRuntime
from core.settings import load_settings
from tests.support.clock import FakeClock

IMAGE = "orchestry/demo:latest"


def app_document(name: str, *, replicas: int = 1, mode: str = "manual", **spec: Any) -> dict[str, Any]:
    """A valid app document; ``spec`` keys override the container spec (e.g. command=[...])."""
    return {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {"image": IMAGE, "command": ["/bin/serve"], "terminationGracePeriodSeconds": 10, **spec},
        "scaling": {"mode": mode, "minReplicas": replicas, "maxReplicas": max(replicas, 10)},
        "healthCheck": {"path": "/health", "periodSeconds": 1, "failureThreshold": 2},
    }


class MemoryWorld:
    def __init__(self, engine: Engine, runtime: MemoryRuntime, nginx: MemoryNginx, clock: FakeClock) -> None:
        self.engine = engine
        self.runtime = runtime
        self.nginx = nginx
        self.clock = clock
        self.drain_waits: list[int] = []  # ports whose in-flight requests were awaited, in order

    @property
    def journal(self) -> list[tuple[str, ...]]:
        return self.runtime.journal

    async def drained(self, port: int, timeout: float, host: str = "127.0.0.1") -> bool:
        self.drain_waits.append(port)
        self.journal.append(("drained", str(port)))
        await asyncio.sleep(0)
        return True

    async def settle(
        self, predicate: Callable[[], Any], what: str, step: float = 0.1, limit: int = 400
    ) -> Any:
        """Advance the fake clock ``step`` at a time (letting store threads finish in between) until
        ``predicate()`` holds; AssertionError naming ``what`` after ``limit`` steps."""
        for _ in range(limit):
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await self.clock.advance(step)
            await asyncio.sleep(0.01)  # real time: store calls run in threads
        raise AssertionError(f"never happened: {what}")

    def running_slots(self, app: str) -> list[int]:
        return [c.slot for c in self.runtime.running(app)]

    def routed_slots(self, app: str) -> list[int]:
        by_port = {c.request.host_port: c.slot for c in self.runtime.containers.values()}
        return sorted(by_port[p] for p in self.nginx.servers(app) if p in by_port)

    async def ready(self, app: str, replicas: int) -> None:
        """Wait (in fake time) until ``app`` has ``replicas`` running containers, all routed."""

        def done() -> bool:
            running = self.running_slots(app)
            return len(running) == replicas and self.routed_slots(app) == sorted(running)

        await self.settle(done, f"{app} with {replicas} ready and routed replicas")

    async def started(self, prefix: str = "m", replicas: int = 1, **spec: Any) -> str:
        """A new app (named ``prefix``-…) of ``replicas`` registered, up, ready and routed: its name."""
        name = unique_app(prefix)
        await self.engine.register(app_document(name, replicas=replicas, **spec))
        await self.engine.up(name)
        await self.ready(name, replicas)
        return name

    def container(self, app: str, slot: int) -> MemoryContainer:
        found = self.runtime.find(f"{app}-{slot}")
        assert found is not None, f"no container for {app}-{slot}"
        return found


def unique_app(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@asynccontextmanager
async def memory_world(
    state_dir: Path,
    runtime: MemoryRuntime | None = None,
    clock: FakeClock | None = None,
    stop_apps: bool = True,
    **settings: Any,
) -> AsyncIterator[MemoryWorld]:
    """A started engine on the in-memory runtime; stopped afterwards, its apps too unless told.

    Pass the ``runtime`` and ``clock`` of an earlier world to restart a controller over the containers
    it left running (same ``state_dir``: same store)."""
    clock = clock or FakeClock()
    runtime = runtime or MemoryRuntime(clock=clock.time)
    nginx = MemoryNginx(journal=runtime.journal)
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "node_id": f"mem-{uuid.uuid4().hex[:6]}",
        "relist_interval": 30.0,
        "scaler_interval": 3600.0,  # the scaler decides only when a test asks it to
        "metrics_interval": 3600.0,
        "drain_timeout": 5.0,
        "lease_ttl": 30,
    }
    values.update(settings)
    world: MemoryWorld | None = None

    async def drained(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
        assert world is not None
        return await world.drained(port, timeout)

    engine = Engine(
        load_settings(env_file=None, **values),
        runtime=runtime,
        clock=clock,
        probe=runtime.probe,
        drained=drained,
        nginx=nginx,
        ports=MemoryPorts(),
    )
    world = MemoryWorld(engine, runtime, nginx, clock)
    await engine.start()
    try:
        yield world
    finally:
        await engine.stop(stop_apps=stop_apps)
