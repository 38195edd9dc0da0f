"""Active HTTP health probes per replica → readiness transitions.

A replica joins the upstream only after it passes (``successThreshold`` in a row) and leaves it after
``failureThreshold`` failures in a row.  Until its first success a replica is probed quickly (like a
Kubernetes startup probe: right after its start, then after 20, 40, 80 ms and every 100 ms) so a
scale-out is routed within a few tens of ms of the process listening (while its port refuses
connections in its first half second, every 5 ms); once ready, every ``periodSeconds``.  A replica that
never passes within its start-up deadline is reported as ``never_ready`` so the engine can replace it
and say why.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.clock import SYSTEM_CLOCK, Clock
from core.metrics import instruments
from core.spec import HealthCheck
from core.supervisor import DEFAULT_BACKOFF
from core.timeline import FIRST_PROBE, PASSED, ReplicaTimeline

log = logging.getLogger(__name__)

READY = "ready"
UNHEALTHY = "unhealthy"
NEVER_READY = "never_ready"

# Until its first pass a replica is probed again after FIRST_STARTUP_POLL_SECONDS, then twice that, and
# so on up to STARTUP_POLL_SECONDS: a process that listens within a few tens of ms of its start (most do)
# is seen then, not a whole poll later; a slow starter costs three more probes than at a flat 100 ms.
FIRST_STARTUP_POLL_SECONDS = 0.02
STARTUP_POLL_SECONDS = 0.1
# A refused connection in a replica's first REFUSED_FAST_SECONDS says its process is about to listen (the
# probe came between Docker's start and the app's bind): probe again after REFUSED_POLL_SECONDS instead
# of the back-off, so it is routed within a few ms of listening, not up to 40 ms later (a scale-out's
# last replica waited that long; on a loaded host 4 in 10 of a scale-out's first probes were refused).
# A refused loopback connect costs tens of µs; the window bounds a slow starter at 100 such probes.
REFUSED_POLL_SECONDS = 0.005
REFUSED_FAST_SECONDS = 0.5
# Behind a published port (bridge mode) Docker's userland proxy accepts every connection at once and,
# when nothing listens on the container port behind it, closes it again within a millisecond or so.  A
# TCP probe there must see the connection stay open this long before it counts as the app's own.
PROXY_SETTLE_SECONDS = 0.15
# A ready replica's next probe may come this share of its period late (at most READY_PROBE_SLACK_MAX
# seconds): the probes of a fleet due within one such slot then share one wakeup of the event loop
# (Clock.sleep's slack).  At 1,000 replicas probed every 10 s that is 4 wakeups a second instead of ~35,
# and a failing replica is seen at most 0.25 s later than its period says.  Start-up probes keep their
# exact pace: they decide how soon a new replica is routed.
READY_PROBE_SLACK_SHARE = 0.05
READY_PROBE_SLACK_MAX = 0.25
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
    # Bridge mode: the container port that ``port`` publishes (probes then go through Docker's proxy).
    container_port: int | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_detail: str = ""
    last_checked_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    loop_failures: int = 0  # its probe loop's failures in a row (each restart waits longer)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "200 OK in 3 ms", "connection refused", "timeout after 2 s", "GET /health → 500"
    refused: bool = False  # nothing listened on the port (yet)


Transition = Callable[[ProbeTarget, str, str], Awaitable[None]]
# One probe of ``host:port`` (check, container port behind a published port) → its result.  The default
# opens a socket; an in-memory runtime (core/runtime/memory.py) answers from its records instead.
Probe = Callable[[str, int, "HealthCheck | None", "int | None"], Awaitable["ProbeResult"]]


def startup_deadline(check: HealthCheck | None) -> float:
    if check is None:
        return MIN_STARTUP_SECONDS
    budget = (
        check.initial_delay_seconds + check.period_seconds * check.failure_threshold + check.timeout_seconds
    )
    return max(MIN_STARTUP_SECONDS, budget)


class HealthChecker:
    """Owns one probe loop per tracked replica; reports transitions through ``on_transition``."""

    def __init__(
        self, on_transition: Transition, probe: Probe | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        """``probe`` replaces the socket probe (an in-memory runtime's replicas have no sockets);
        ``clock`` paces the probe loops and their start-up deadlines."""
        self._on_transition = on_transition
        self._probe = probe
        self._clock = clock
        self._targets: dict[str, ProbeTarget] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reactions: set[asyncio.Task[None]] = set()
        self.timeline: ReplicaTimeline | None = None  # set by Reconciler.record_timeline

    def track(self, target: ProbeTarget) -> None:
        if target.container_id in self._targets:
            return
        target.started_at = self._clock.monotonic()
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

    def rearm(self, container_id: str) -> None:
        """Probe a tracked replica as if it had just started: not ready, no passes counted, a fresh
        start-up deadline and the fast start-up pace, so its next passing probe(s) report READY again
        (for a replica the engine unrouted while its probes still passed: a signal that did not stop
        it).  The old loop may sleep a whole period: a new one probes within FIRST_STARTUP_POLL_SECONDS."""
        target = self._targets.get(container_id)
        if target is None:
            return
        target.ready = False
        target.consecutive_successes = 0
        target.consecutive_failures = 0
        target.started_at = self._clock.monotonic()
        task = self._tasks.get(container_id)
        if task is not None and task is asyncio.current_task():
            return  # called from its own loop: that loop goes on with the reset target
        if task is not None:
            task.cancel()
        self._tasks[container_id] = asyncio.create_task(
            self._loop(target), name=f"health:{target.app}-{target.slot}"
        )

    async def probe(
        self, host: str, port: int, check: HealthCheck | None, container_port: int | None = None
    ) -> ProbeResult:
        """One probe of ``host:port``; ``container_port`` says it is a published port (bridge mode), so
        a failure names both ends and what the app inside must do."""
        if self._probe is not None:
            return await self._probe(host, port, check, container_port)
        if check is None:
            return await self._probe_tcp(host, port, 2.0, container_port)
        # In bridge mode the address alone explains nothing: say which published port led where.
        where = f" on {host}:{port} (container port {container_port})" if container_port else ""
        started = time.monotonic()
        try:
            # asyncio.timeout, not wait_for: no extra task per probe.
            async with asyncio.timeout(check.timeout_seconds):
                status = await http_status(host, port, check)
        except TimeoutError:
            return ProbeResult(False, f"GET {check.path}{where} timed out after {check.timeout_seconds:g} s")
        except ConnectionRefusedError as exc:
            return ProbeResult(False, f"GET {check.path}{where}: connection refused ({exc})", refused=True)
        except ConnectionResetError as exc:
            if container_port:
                return ProbeResult(False, f"GET {check.path}{where}: {_nothing_behind(container_port)}")
            return ProbeResult(False, f"GET {check.path}: {type(exc).__name__}: {exc}")
        except OSError as exc:
            return ProbeResult(False, f"GET {check.path}{where}: {type(exc).__name__}: {exc}")
        except ValueError as exc:  # an answer that is not HTTP: the message quotes it
            if container_port and str(exc) == CLOSED_WITHOUT_ANSWER:
                return ProbeResult(False, f"GET {check.path}{where}: {_nothing_behind(container_port)}")
            return ProbeResult(False, f"GET {check.path}{where}: {exc}")
        elapsed_ms = (time.monotonic() - started) * 1000
        if 200 <= status < 400:
            return ProbeResult(True, f"GET {check.path} → {status} in {elapsed_ms:.0f} ms")
        return ProbeResult(False, f"GET {check.path}{where} → {status}")

    async def _probe_tcp(
        self, host: str, port: int, timeout: float, container_port: int | None = None
    ) -> ProbeResult:
        loop = asyncio.get_running_loop()
        sock = _probe_socket(host)
        where = f"TCP {host}:{port}" + (f" (container port {container_port})" if container_port else "")
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (host, port))
            if container_port and not await _stays_open(loop, sock):
                return ProbeResult(False, f"{where}: {_nothing_behind(container_port)}")
        except ConnectionRefusedError as exc:
            return ProbeResult(False, f"{where}: {exc}", refused=True)
        except (OSError, TimeoutError) as exc:
            return ProbeResult(False, f"{where}: {exc or 'timeout'}")
        finally:
            sock.close()
        return ProbeResult(True, f"{where} accepts connections")

    async def _loop(self, target: ProbeTarget) -> None:
        check = target.check
        period = check.period_seconds if check else 5.0
        success_threshold = check.success_threshold if check else 1
        failure_threshold = check.failure_threshold if check else 3
        initial_delay = check.initial_delay_seconds if check else 0.0
        deadline = target.started_at + startup_deadline(check)
        startup_poll = FIRST_STARTUP_POLL_SECONDS
        ready_slack = min(READY_PROBE_SLACK_MAX, period * READY_PROBE_SLACK_SHARE)
        try:
            if initial_delay:
                await self._clock.sleep(max(0.0, target.started_at + initial_delay - self._clock.monotonic()))
            while target.container_id in self._targets:
                result = await self.probe(target.host, target.port, check, target.container_port)
                if self.timeline is not None and target.last_checked_at is None:
                    self.timeline.mark(f"{target.app}-{target.slot}", FIRST_PROBE)
                target.last_checked_at = self._clock.time()
                target.last_detail = result.detail
                if result.ok:
                    target.consecutive_successes += 1
                    target.consecutive_failures = 0
                    if not target.ready and target.consecutive_successes >= success_threshold:
                        target.ready = True
                        if self.timeline is not None:
                            self.timeline.mark(f"{target.app}-{target.slot}", PASSED)
                        await self._react(target, READY, result.detail)
                else:
                    if target.ready:  # a serving replica failed; startup probes fail by design
                        instruments.HEALTH_CHECK_FAILURES.inc(app=target.app)
                    target.consecutive_failures += 1
                    target.consecutive_successes = 0
                    if target.ready and target.consecutive_failures >= failure_threshold:
                        target.ready = False
                        await self._react(target, UNHEALTHY, result.detail)
                    elif not target.ready and self._clock.monotonic() > deadline:
                        await self._react(target, NEVER_READY, result.detail)
                        return
                # Probe fast until the replica first becomes ready, then at the spec's period.
                slack = 0.0
                if target.ready:
                    pause, slack = period, ready_slack
                elif result.refused and self._clock.monotonic() - target.started_at < REFUSED_FAST_SECONDS:
                    pause = REFUSED_POLL_SECONDS
                else:
                    pause = startup_poll
                    startup_poll = min(STARTUP_POLL_SECONDS, startup_poll * 2)
                # Not kept through the pause (its detail is in the target): one object fewer for each
                # of a fleet's sleeping checks to carry into the oldest generation (see Clock.sleep).
                del result
                target.loop_failures = 0
                await self._clock.sleep(pause, slack)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A probe loop must never end silently: log it and start a fresh loop for the replica, later
            # each time it fails again in a row (a bug hit on every probe of a fleet must not log a
            # traceback per replica every second).
            target.loop_failures += 1
            delay = DEFAULT_BACKOFF[min(target.loop_failures, len(DEFAULT_BACKOFF)) - 1]
            log.exception(
                "health probe loop for %s-%s failed; restarting it in %.1f s", target.app, target.slot, delay
            )
            if target.container_id in self._targets:
                await self._clock.sleep(delay)
                self._tasks[target.container_id] = asyncio.create_task(
                    self._loop(target), name=f"health:{target.app}-{target.slot}"
                )

    async def _react(self, target: ProbeTarget, transition: str, detail: str) -> None:
        """Hand a transition to the reconciler in a task of its own: the pass that replaces a replica
        untracks it (cancelling this loop) as soon as the reaction marks it, while the reaction is still
        announcing why; cancelled with the loop, that event and the status save were lost."""
        reaction = asyncio.ensure_future(self._on_transition(target, transition, detail))
        self._reactions.add(reaction)
        reaction.add_done_callback(lambda done: self._reaction_done(done, target))
        await asyncio.shield(reaction)

    def _reaction_done(self, reaction: asyncio.Task[None], target: ProbeTarget) -> None:
        self._reactions.discard(reaction)
        if reaction.cancelled() or reaction.exception() is None:
            return
        # A loop still tracked gets the error and logs it (and restarts with back-off); one untracked
        # meanwhile was cancelled, so the failure is said here rather than lost.
        if target.container_id not in self._targets:
            log.error(
                "reacting to a health transition of %s-%s failed",
                target.app,
                target.slot,
                exc_info=reaction.exception(),
            )

    async def close(self) -> None:
        tasks = [*self._tasks.values(), *self._reactions]
        self._tasks.clear()
        self._targets.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def http_status(host: str, port: int, check: HealthCheck) -> int:
    """One HTTP/1.0 GET on a fresh connection; the status code of the answer.

    A probe only needs the status line.  A whole HTTP client per probe was the engine's largest idle cost
    with a hundred replicas, and even asyncio's stream objects cost twice the kernel's work for a loopback
    connection, so this drives a bare non-blocking socket through the loop: what a kubelet probe amounts to.
    """
    loop = asyncio.get_running_loop()
    sock = _probe_socket(host)
    try:
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, _request_bytes(host, port, check))
        answer = b""
        while b"\n" not in answer and len(answer) < _MAX_STATUS_LINE:
            chunk = await loop.sock_recv(sock, 1024)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    if not answer:
        raise ValueError(CLOSED_WITHOUT_ANSWER)
    parts = answer.split(b"\n", 1)[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {answer[:60]!r}")
    return int(parts[1])


_MAX_STATUS_LINE = 4096

CLOSED_WITHOUT_ANSWER = "the replica closed the connection without answering"


def _probe_socket(host: str) -> socket.socket:
    """A fresh non-blocking TCP socket for ``host`` (an IPv4 or IPv6 literal) for the loop's sock_* calls."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def _stays_open(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bool:
    """False when the peer closes or resets a fresh connection within PROXY_SETTLE_SECONDS (a proxy
    that found nothing behind it); True when it stays open, or the app speaks first."""
    try:
        async with asyncio.timeout(PROXY_SETTLE_SECONDS):
            return bool(await loop.sock_recv(sock, 1))
    except TimeoutError:
        return True
    except ConnectionError:
        return False


def _nothing_behind(container_port: int) -> str:
    return (
        f"Docker accepted on the published port but nothing answers on container port {container_port}: "
        f"the app must listen on 0.0.0.0:{container_port} inside its container ($BIND_HOST:$PORT), "
        f"or spec.ports[0].containerPort must name the port it listens on"
    )


def _request_bytes(host: str, port: int, check: HealthCheck) -> bytes:
    lines = [f"GET {check.path} HTTP/1.0", f"Host: {host}:{port}", "User-Agent: orchestry-health/2"]
    lines += [f"{h.name}: {h.value}" for h in check.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
