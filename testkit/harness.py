"""Helpers for tests and benches that drive a whole Engine against real Docker, nginx and a store."""

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
    """Sends requests through nginx and counts every one: no request is retried.

    Each request goes out on a connection of its own (no client keep-alive), so a connection an old
    nginx worker closes after a reload can never be mistaken for a drop, and any error or non-2xx answer
    is a failure. ``methods`` are taken in turn: nginx resends a failed idempotent GET to the next
    upstream, but never a POST, so a POST that fails shows a replica refused or reset it (a replica
    stopped before it left the upstream, say). ``pause`` (seconds between one worker's requests) sets a
    lighter load. Leaving the ``async with`` prints the figures.
    """

    def __init__(
        self,
        url: str,
        concurrency: int = 4,
        methods: tuple[str, ...] = ("GET", "POST"),
        pause: float = 0.005,
        label: str = "traffic",
    ) -> None:
        self.url = url
        self.concurrency = concurrency
        self.methods = methods
        self.pause = pause
        self.label = label
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []  # requests that got no answer at all
        self.bad_answers: list[str] = []  # answers other than 200
        self.bodies: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def figures(self) -> str:
        by_method = ", ".join(f"{m} {self.sent[m]} sent / {self.failed[m]} failed" for m in self.methods)
        return f"{self.label}: {self.total} requests sent, {self.failures} failed ({by_method})"

    async def _one(self, session: aiohttp.ClientSession, method: str) -> None:
        self.sent[method] += 1
        data = b"orchestry-test-body" if method == "POST" else None
        try:
            async with session.request(
                method, self.url, data=data, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                body = await resp.text()
                self.statuses[resp.status] += 1
                if resp.status == 200:
                    self.bodies[body.strip()[:80]] += 1
                else:
                    self.failed[method] += 1
                    self.bad_answers.append(f"{method} {resp.status}: {body.strip()[:120]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failed[method] += 1
            self.errors.append(f"{method} {exc!r}")

    async def _worker(self, first: int) -> None:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            turn = first
            while not self._stop.is_set():
                await self._one(session, self.methods[turn % len(self.methods)])
                turn += 1
                await asyncio.sleep(self.pause)

    async def __aenter__(self) -> TrafficClient:
        self._tasks = [asyncio.create_task(self._worker(n)) for n in range(self.concurrency)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        print(f"\n{self.figures()}")

    def assert_none_failed(self, at_least: int = 1) -> None:
        """Every method was sent and nothing failed; the message carries the figures and last errors."""
        assert all(self.sent[m] > 0 for m in self.methods) and self.total >= at_least, self.figures()
        assert self.failures == 0, (self.figures(), self.statuses, self.errors[-5:], self.bad_answers[-5:])


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
