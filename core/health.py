"""Active HTTP health probes per replica → readiness transitions.

A replica joins the upstream only after it passes (``successThreshold`` in a row) and leaves it after
``failureThreshold`` failures in a row.  Until its first success a replica is probed quickly (like a
Kubernetes startup probe) so a scale-out is routed within a fraction of a second of the process
listening; after that every ``periodSeconds``.  A replica that never passes within its start-up
deadline is reported as ``never_ready`` so the engine can replace it and say why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from core.spec import HealthCheck

log = logging.getLogger(__name__)

READY = "ready"
UNHEALTHY = "unhealthy"
NEVER_READY = "never_ready"

STARTUP_POLL_SECONDS = 0.1
# A replica gets at least this long to come up, however short its probe settings are.
MIN_STARTUP_SECONDS = 10.0


@dataclass
class ProbeTarget:
    app: str
    slot: int
    container_id: str
    host: str
    port: int
    check: HealthCheck | None
    ready: bool = False
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_detail: str = ""
    last_checked_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "200 OK in 3 ms", "connection refused", "timeout after 2 s", "GET /health → 500"


Transition = Callable[[ProbeTarget, str, str], Awaitable[None]]


def startup_deadline(check: HealthCheck | None) -> float:
    if check is None:
        return MIN_STARTUP_SECONDS
    budget = (
        check.initial_delay_seconds + check.period_seconds * check.failure_threshold + check.timeout_seconds
    )
    return max(MIN_STARTUP_SECONDS, budget)


class HealthChecker:
    """Owns one probe loop per tracked replica; reports transitions through ``on_transition``."""

    def __init__(self, on_transition: Transition) -> None:
        self._on_transition = on_transition
        self._targets: dict[str, ProbeTarget] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No keep-alive: a probe must open a fresh connection, as a new client would.
            connector = aiohttp.TCPConnector(force_close=True, limit=200)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def track(self, target: ProbeTarget) -> None:
        if target.container_id in self._targets:
            return
        self._targets[target.container_id] = target
        task = asyncio.create_task(self._loop(target), name=f"health:{target.app}-{target.slot}")
        self._tasks[target.container_id] = task

    def untrack(self, container_id: str) -> None:
        self._targets.pop(container_id, None)
        task = self._tasks.pop(container_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def target(self, container_id: str) -> ProbeTarget | None:
        return self._targets.get(container_id)

    async def probe(self, host: str, port: int, check: HealthCheck | None) -> ProbeResult:
        if check is None:
            return await self._probe_tcp(host, port, 2.0)
        url = f"http://{host}:{port}{check.path}"
        headers = {h.name: h.value for h in check.headers}
        started = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=check.timeout_seconds)
            async with self._client().get(
                url, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                await resp.read()
                elapsed_ms = (time.monotonic() - started) * 1000
                if 200 <= resp.status < 400:
                    return ProbeResult(True, f"GET {check.path} → {resp.status} in {elapsed_ms:.0f} ms")
                return ProbeResult(False, f"GET {check.path} → {resp.status}")
        except TimeoutError:
            return ProbeResult(False, f"GET {check.path} timed out after {check.timeout_seconds} s")
        except aiohttp.ClientConnectorError as exc:
            return ProbeResult(False, f"GET {check.path}: connection refused ({exc.os_error or exc})")
        except (aiohttp.ClientError, OSError) as exc:
            return ProbeResult(False, f"GET {check.path}: {type(exc).__name__}: {exc}")

    async def _probe_tcp(self, host: str, port: int, timeout: float) -> ProbeResult:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            return ProbeResult(False, f"TCP {host}:{port}: {exc or 'timeout'}")
        writer.close()
        return ProbeResult(True, f"TCP {host}:{port} accepts connections")

    async def _loop(self, target: ProbeTarget) -> None:
        check = target.check
        period = check.period_seconds if check else 5.0
        success_threshold = check.success_threshold if check else 1
        failure_threshold = check.failure_threshold if check else 3
        initial_delay = check.initial_delay_seconds if check else 0.0
        deadline = target.started_at + startup_deadline(check)
        try:
            if initial_delay:
                await asyncio.sleep(max(0.0, target.started_at + initial_delay - time.monotonic()))
            while target.container_id in self._targets:
                result = await self.probe(target.host, target.port, check)
                target.last_checked_at = time.time()
                target.last_detail = result.detail
                if result.ok:
                    target.consecutive_successes += 1
                    target.consecutive_failures = 0
                    if not target.ready and target.consecutive_successes >= success_threshold:
                        target.ready = True
                        await self._on_transition(target, READY, result.detail)
                else:
                    target.consecutive_failures += 1
                    target.consecutive_successes = 0
                    if target.ready and target.consecutive_failures >= failure_threshold:
                        target.ready = False
                        await self._on_transition(target, UNHEALTHY, result.detail)
                    elif not target.ready and time.monotonic() > deadline:
                        await self._on_transition(target, NEVER_READY, result.detail)
                        return
                # Probe fast until the replica first becomes ready, then at the spec's period.
                await asyncio.sleep(period if target.ready else STARTUP_POLL_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A probe loop must never end silently: log it and start a fresh loop for the replica.
            log.exception("health probe loop for %s-%s failed; restarting it", target.app, target.slot)
            if target.container_id in self._targets:
                await asyncio.sleep(1.0)
                self._tasks[target.container_id] = asyncio.create_task(
                    self._loop(target), name=f"health:{target.app}-{target.slot}"
                )

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._targets.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
