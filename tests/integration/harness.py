"""Helpers for tests that drive a whole Engine against the real Docker engine, nginx and a store."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from core.engine import Engine
from core.settings import load_settings

DEMO_IMAGE = "orchestry/demo:latest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def demo_app(name: str, **overrides: Any) -> dict[str, Any]:
    """A demo-image app with fast probes; ``overrides`` replace whole top-level sections."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {
            "image": DEMO_IMAGE,
            "command": ["/bin/serve"],
            "ports": [{"containerPort": 8080}],
            "terminationGracePeriodSeconds": 5,
        },
        "scaling": {"mode": "manual", "minReplicas": 1, "maxReplicas": 10},
        "healthCheck": {"path": "/health", "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
    }
    doc.update(overrides)
    return doc


def engine_settings(state_dir: Path, database_url: str | None = None, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "lb_listen": f"127.0.0.1:{free_port()}",
        "port": free_port(),
        "node_id": f"test-{uuid.uuid4().hex[:6]}",
        "relist_interval": 5.0,
        "scaler_interval": 1.0,
        "metrics_interval": 1.0,
        "drain_timeout": 5.0,
        "lease_ttl": 6,
    }
    if database_url:
        values["database_url"] = database_url
    values.update(extra)
    return load_settings(**values)


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}; last value {last!r}")


async def ready_count(eng: Engine, name: str) -> int:
    view = await eng.get_app(name)
    return view.ready_replicas


async def ready_is(eng: Engine, name: str, n: int) -> bool:
    return await ready_count(eng, name) == n


def lb(eng: Engine, name: str, path: str = "") -> str:
    """The app's URL through the engine's nginx."""
    return f"http://{eng.settings.lb_listen}/{name}/{path}"


class TrafficClient:
    """Sends requests through nginx without pause and counts the answers.

    A request that fails on a reused keep-alive connection (closed by an old nginx worker after a reload)
    is retried once on a fresh connection, as any HTTP client does (NOTES.md).
    """

    def __init__(self, url: str, concurrency: int = 4) -> None:
        self.url = url
        self.concurrency = concurrency
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.bodies: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    @property
    def failures(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + len(self.errors)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)

    async def _one(self, session: aiohttp.ClientSession) -> None:
        for attempt in range(2):
            try:
                async with session.get(self.url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    body = await resp.text()
                    self.statuses[resp.status] += 1
                    if resp.status == 200:
                        self.bodies[body.strip()[:80]] += 1
                    return
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if attempt == 0:
                    continue
                self.errors.append(repr(exc))
                return
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.errors.append(repr(exc))
                return

    async def _worker(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                await self._one(session)
                await asyncio.sleep(0.005)

    async def __aenter__(self) -> TrafficClient:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def get_text(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(
                url, headers=headers or {}, timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                return resp.status, await resp.text()
    return 0, ""


async def docker(*args: str) -> str:
    """Run the docker CLI without blocking the loop; raise with its stderr on failure."""
    proc = await asyncio.create_subprocess_exec(
        "docker", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode()
