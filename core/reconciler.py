"""Desired vs actual → plan → actions, one serialised worker per app.

Each app's worker wakes on a desired-state change, a runtime event, a health transition, a crash
back-off expiring, or the periodic relist (the safety net).  A pass lists the app's containers by label,
adopts what it does not know (a restarted controller creates nothing twice), clears away dead
containers (counting crashes for back-off), asks the pure planner what to do and does it, in parallel
across slots.  Only the lease holder acts: every pass and every runtime action checks ``is_leader()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core import planner
from core.clock import SYSTEM_CLOCK, Clock
from core.errors import (
    Conflict,
    ContainerStartError,
    ForeignContainer,
    ImageNotFound,
    NotFound,
    OrchestryError,
    RuntimeUnavailable,
    SecretError,
    StoreError,
)
from core.health import NEVER_READY, READY, UNHEALTHY, HealthChecker, Probe, ProbeTarget
from core.metrics import instruments
from core.models import (
    APP_DEGRADED,
    APP_ERROR,
    APP_RUNNING,
    APP_STOPPED,
    REPLICA_DRAINING,
    REPLICA_FAILED,
    REPLICA_READY,
    REPLICA_STARTING,
    REPLICA_UNHEALTHY,
)
from core.net.connections import wait_drained
from core.replicas import AppState, Replica
from core.runtime.base import (
    LABEL_APP,
    LABEL_MANAGED,
    LABEL_SLOT,
    LABEL_SPEC_HASH,
    LABEL_TERM,
    STATE_PENDING,
    ContainerInfo,
    ContainerRequest,
    PublishedPortInUse,
    Runtime,
)
from core.runtime.ports import PortAllocator
from core.spec import AppSpec

log = logging.getLogger(__name__)

FORCE_STOP_SECONDS = 2.0
# While Docker does not answer, a worker retries at least this often (a wake retries at once).
RUNTIME_RETRY_SECONDS = 5.0
# Bridge mode: a replica's published port taken by another program is retried on this many ports in all.
PORT_CLASH_ATTEMPTS = 3


class Emit(Protocol):
    async def __call__(
        self,
        category: str,
        kind: str,
        message: str,
        app: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Any: ...


class Router(Protocol):
    async def publish(self, app: str, servers: list[tuple[str, int]], load_balancing: str) -> bool: ...

    async def unpublish(self, app: str) -> None: ...


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    @property
    def term(self) -> int | None: ...


@dataclass
class ReconcilerConfig:
    network_mode: str = "host"
    drain_timeout: float = 30.0
    relist_interval: float = 30.0


# (port, timeout, host) → True once no request is in flight to host:port, False when the timeout passed
# first.  The host is the replica's (127.0.0.1 on one host, the node's address on a Swarm).
Drained = Callable[[int, float, str], Awaitable[bool]]


@dataclass(frozen=True)
class PassIntent:
    """What the requests a pass serves asked for beyond "converge" (see ``reconcile_now``)."""

    force: bool = False
    clear: bool = False


class NotLeaderAnymore(Exception):
    """Raised inside a pass when the lease was lost mid-way; the pass stops acting at once."""


class Reconciler:
    def __init__(
        self,
        runtime: Runtime,
        store: Any,
        emit: Emit,
        router: Router,
        leadership: Leadership,
        ports: PortAllocator,
        resolve_secret: Callable[[str, str], str],
        config: ReconcilerConfig,
        on_replicas_changed: Callable[[str], None] | None = None,
        on_runtime_state: Callable[[str], Awaitable[None]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        probe: Probe | None = None,
        drained: Drained | None = None,
    ) -> None:
        """``on_runtime_state(reason)``: a pass found Docker unreachable (the reason) or, with "", that
        it answers again; called on every such pass, so the receiver keeps only the transitions.

        ``clock``, ``probe`` (health probes) and ``drained`` (in-flight requests of a port gone) are
        seams for the in-memory runtime and fake clock of the fast tests; the defaults are the real ones."""
        self.runtime = runtime
        self.store = store
        self.emit = emit
        self.router = router
        self.leadership = leadership
        self.ports = ports
        self.resolve_secret = resolve_secret
        self.config = config
        self.on_replicas_changed = on_replicas_changed or (lambda _app: None)
        self.on_runtime_state = on_runtime_state or _ignore_runtime_state
        self.apps: dict[str, AppState] = {}
        self.clock = clock
        self.drained: Drained = drained or _wait_drained
        self.health = HealthChecker(self._on_health, probe=probe, clock=clock)
        self._specs: dict[str, tuple[str, AppSpec]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    # --- workers -------------------------------------------------------------------------------
    def state(self, name: str) -> AppState:
        if name not in self.apps:
            self.apps[name] = AppState(name=name)
        return self.apps[name]

    def ensure_worker(self, name: str) -> None:
        self.state(name)
        task = self._workers.get(name)
        if task is None or task.done():
            self._workers[name] = asyncio.create_task(self._worker(name), name=f"reconcile:{name}")

    def ready_count(self, name: str) -> int:
        """Replicas of ``name`` that passed their health check and are not draining."""
        state = self.apps.get(name)
        return len(state.ready_replicas()) if state is not None else 0

    def live_count(self, name: str) -> int:
        """Replicas of ``name`` that are not draining."""
        state = self.apps.get(name)
        return len(state.live()) if state is not None else 0

    def request_restart(self, name: str, slot: int | None = None) -> list[int]:
        """Mark every live replica (or the one in ``slot``) for a rolling replacement; the slots."""
        state = self.state(name)
        chosen = [r for r in state.live() if slot is None or r.slot == slot]
        if slot is not None and not chosen:
            slots = ", ".join(str(r.slot) for r in sorted(state.live(), key=lambda r: r.slot)) or "none"
            raise NotFound(f"app '{name}' has no replica in slot {slot}: its slots are {slots}")
        for replica in chosen:
            replica.restart_requested = True
        return sorted(r.slot for r in chosen)

    def blocked_reason(self, name: str) -> str:
        """Why no replica of ``name`` can be created ("" when nothing blocks it)."""
        state = self.apps.get(name)
        return state.blocked if state is not None else ""

    def forget_all(self) -> None:
        """A node that stopped leading keeps no view of the replicas: it stops probing them (a follower
        must not announce health changes beside the leader), and a term it wins later adopts them
        afresh from Docker instead of trusting what it saw before."""
        for state in self.apps.values():
            for container_id in list(state.replicas):
                self.health.untrack(container_id)
            state.replicas.clear()
            state.stopping.clear()
            state.routed_once = False

    def wake(self, name: str) -> None:
        if name in self.apps:
            self.apps[name].wake.set()

    def wake_all(self) -> None:
        for state in self.apps.values():
            state.wake.set()

    async def reconcile_now(
        self, name: str, timeout: float = 120.0, *, force: bool = False, clear: bool = False
    ) -> dict[str, int]:
        """Wake the app's worker and wait for a whole pass that started after this call.

        ``force``: a stopped app's replicas stop without draining, with a short grace period.
        ``clear``: every container of the app is stopped first (its runtime state starts afresh).
        The intent travels with this request, so a concurrent request without it cannot cancel it:
        the pass that serves several requests honours the strongest of them."""
        self.ensure_worker(name)
        state = self.apps[name]
        state.requested += 1
        wanted = state.requested
        if force:
            state.forced_through = wanted
        if clear:
            state.cleared_through = wanted
        state.wake.set()
        async with state.pass_done:
            await asyncio.wait_for(state.pass_done.wait_for(lambda: state.completed >= wanted), timeout)
        return dict(state.last_result)

    async def _worker(self, name: str) -> None:
        state = self.apps[name]
        failures = 0
        retry_at: float | None = None  # after a failed pass: try again then, or sooner when woken
        while not self._closed:
            now = self.clock.time()
            wait = self.config.relist_interval
            retry_in = state.next_retry_in(now)
            if retry_in is not None:
                wait = min(wait, retry_in + 0.05)
            if retry_at is not None:
                wait = min(wait, max(0.0, retry_at - now))
            await self.clock.wait(state.wake, wait)
            state.wake.clear()
            seen = state.requested
            intent = PassIntent(
                force=state.forced_through > state.completed, clear=state.cleared_through > state.completed
            )
            deleted = False
            started = self.clock.monotonic()
            try:
                result = await self._pass(state, intent)
                instruments.RECONCILE_DURATION.observe(self.clock.monotonic() - started)
                deleted = result.get("deleted", 0) == 1
                state.last_result = result
                state.last_error = ""
                failures, retry_at = 0, None
            except asyncio.CancelledError:
                raise
            except NotLeaderAnymore:
                state.last_result = {}
            except RuntimeUnavailable as exc:
                # Docker itself is away: nothing this app did wrong.  The engine says so once for every
                # app; here the status says why nothing changes, and a wake (Docker back, events stream
                # reconnected) retries at once instead of after a long back-off.
                failures += 1
                state.last_result = {}
                await self._runtime_lost(state, str(exc))
                retry_at = self.clock.time() + min(RUNTIME_RETRY_SECONDS, 0.5 * 2 ** min(failures, 6))
            except Exception as exc:
                failures += 1
                instruments.RECONCILE_ERRORS.inc(app=name)
                state.last_result = {}
                message = str(exc) if isinstance(exc, OrchestryError) else f"{type(exc).__name__}: {exc}"
                if message != state.last_error:
                    if isinstance(exc, StoreError):  # an outage, not a bug: its message names the cause
                        log.warning("reconcile pass for %s failed: %s", name, message)
                    else:
                        log.exception("reconcile pass for %s failed", name)
                    await self.emit(
                        "error", "reconcile_failed", f"reconciling {name} failed: {message}", app=name
                    )
                state.last_error = message
                retry_at = self.clock.time() + min(30.0, 0.5 * 2 ** min(failures, 6))
            async with state.pass_done:
                state.completed = max(state.completed, seen)
                state.pass_done.notify_all()
            if deleted:
                self.apps.pop(name, None)
                self._workers.pop(name, None)
                return

    async def _runtime_lost(self, state: AppState, reason: str) -> None:
        first = not state.runtime_error
        state.runtime_error = reason
        await self.on_runtime_state(reason)
        if not first:
            return
        # The store still says what the last good pass saw: save why that no longer holds.
        try:
            record = await asyncio.to_thread(self.store.apps.get, state.name)
        except OrchestryError as exc:
            log.warning("could not read %s to save its status: %s", state.name, exc)
            return
        if record is not None:
            await self._update_status(
                state, record, record.desired_replicas if record.status != APP_STOPPED else 0
            )

    # --- one pass ------------------------------------------------------------------------------
    def spec_of(self, record: Any) -> AppSpec:
        from core.spec import parse_app_spec

        cached = self._specs.get(record.name)
        if cached is None or cached[0] != record.spec_hash:
            cached = (record.spec_hash, parse_app_spec(record.spec))
            self._specs[record.name] = cached
        return cached[1]

    def _check_leader(self) -> None:
        if not self.leadership.is_leader():
            raise NotLeaderAnymore()

    async def _pass(self, state: AppState, intent: PassIntent) -> dict[str, int]:
        if not self.leadership.is_leader():
            return {}  # a follower's relist must not query the store (it may be the store that is down)
        record = await asyncio.to_thread(self.store.apps.get, state.name)
        if not self.leadership.is_leader():
            return {}
        if record is None:
            stopped = await self._teardown(state)
            await self.router.unpublish(state.name)
            self._specs.pop(state.name, None)
            return {"deleted": 1, "stopped": stopped}
        spec = self.spec_of(record)
        cleared = 0
        if intent.clear:
            cleared = await self._teardown(state)
            state.backoff.clear()
            state.restarts.clear()
            state.routed_once = False
        containers = await self.runtime.list_managed(state.name)
        # Docker answers again: cleared before this pass saves a status that would still blame it.
        after_outage, state.runtime_error = bool(state.runtime_error), ""
        if after_outage:
            await self.on_runtime_state("")
        adopted = await self._sync(state, spec, containers)
        await self._clear_dead(state, containers, after_outage)
        replaced = await self._replace_failed(state)
        desired = record.desired_replicas if record.status != APP_STOPPED else 0
        force = record.status == APP_STOPPED and intent.force
        now = self.clock.time()
        current_hash = spec.container_hash()
        live = [
            planner.SlotState(
                slot=r.slot,
                container_id=r.container_id,
                ready=r.ready,
                outdated=r.spec_hash != current_hash or r.restart_requested or self._other_network(r),
                moving=r.moving,
            )
            for r in state.live()
        ]
        # Replicas the runtime is still placing by itself (Swarm replacing a task lost with its node):
        # their slots are taken and come back on their own, like slots waiting out a back-off.
        pending = [c for c in containers if c.state == STATE_PENDING and c.id not in state.stopping]
        surplus = pending[: max(0, len(live) + len(pending) - desired)]
        if surplus:
            self._check_leader()
            await asyncio.gather(*(self.runtime.remove(c.id, force=True) for c in surplus))
        pending_slots = {c.slot for c in pending if c not in surplus}
        state.pending = {c.name: c.error for c in pending if c not in surplus}
        occupied = {r.slot for r in state.replicas.values()} | pending_slots
        the_plan = planner.plan(
            desired, live, occupied, state.waiting_slots(now) | pending_slots, can_create=not state.blocked
        )
        if not state.routed_once or adopted:
            state.routed_once = True
            await self._publish(state, spec)
        started = stopped = 0
        if not the_plan.empty:
            self._check_leader()
            victims = [state.replicas[cid] for cid in the_plan.remove if cid in state.replicas]
            results = await asyncio.gather(
                self._start_many(state, spec, the_plan.create),
                self._drain_and_stop(state, spec, victims, force=force),
            )
            started, stopped = results
        await self._update_status(state, record, desired)
        self.on_replicas_changed(state.name)
        await self._persist_instances(state)
        return {"adopted": adopted, "started": started, "stopped": stopped + replaced + cleared}

    def _other_network(self, replica: Replica) -> bool:
        """A replica started under the other networking mode (the operator switched
        ORCHESTRY_NETWORK_MODE and restarted): it rolls to the current mode like an outdated spec."""
        return (replica.container_port is not None) != (self.config.network_mode == "bridge")

    async def _sync(self, state: AppState, spec: AppSpec, containers: list[ContainerInfo]) -> int:
        """Adopt running containers we do not know; forget replicas whose container vanished."""
        present = {c.id for c in containers}
        for cid in [cid for cid in state.replicas if cid not in present and cid not in state.stopping]:
            gone = state.replicas.pop(cid)
            self.health.untrack(cid)
            if gone.ready:
                await self._publish(state, spec)
            await self.emit(
                "lifecycle",
                "replica_vanished",
                f"replica {gone.name} is gone from Docker (or Swarm replaced its task); "
                "it left the load balancer and is replaced",
                app=state.name,
                details={"slot": gone.slot, "container_id": cid[:12]},
            )
        newcomers = [
            c for c in containers if c.running and c.id not in state.replicas and c.id not in state.stopping
        ]
        # Two containers claiming one slot (should never happen): keep the first, the second is a
        # surplus the planner will remove.
        if not newcomers:
            return 0
        probes = await asyncio.gather(
            *(
                self.health.probe(c.host, c.health_port or c.port, spec.health_check, _probed_port(c))
                for c in newcomers
            )
        )
        for info, probe in zip(newcomers, probes, strict=True):
            replica = Replica.of_container(
                info, state=REPLICA_READY if probe.ok else REPLICA_STARTING, ready=probe.ok
            )
            state.replicas[info.id] = replica
            if probe.ok:
                state.proven_hashes.add(info.spec_hash)
            self._track(replica, spec, state.name)
        await self.emit(
            "lifecycle",
            "replicas_adopted",
            f"adopted {len(newcomers)} running replica(s) of {state.name}: "
            + ", ".join(sorted(c.name for c in newcomers)),
            app=state.name,
            details={"containers": [c.id[:12] for c in newcomers]},
        )
        return len(newcomers)

    def _track(self, replica: Replica, spec: AppSpec, app: str) -> None:
        self.health.track(
            ProbeTarget(
                app=app,
                slot=replica.slot,
                container_id=replica.container_id,
                host=replica.host,
                port=replica.probe_address[0],
                check=spec.health_check,
                ready=replica.ready,
                container_port=replica.probe_address[1],
            )
        )

    async def _clear_dead(self, state: AppState, containers: list[ContainerInfo], after_outage: bool) -> None:
        """Containers that exited on their own: unroute first, count the crash, remove them.

        A paused container is not dead: it holds the requests it accepted. Its health checks fail and
        it leaves through ``_replace_failed``, which lets it finish them."""
        dead = [
            c
            for c in containers
            if not c.running
            and c.id not in state.stopping
            and c.state not in ("removing", "paused", STATE_PENDING)
        ]
        if not dead:
            return
        spec_changed = False
        for info in dead:
            replica = state.replicas.pop(info.id, None)
            self.health.untrack(info.id)
            if replica is not None and replica.ready:
                spec_changed = True
        if spec_changed:
            record = await asyncio.to_thread(self.store.apps.get, state.name)
            if record is not None:
                await self._publish(state, self.spec_of(record))
        if after_outage:
            await self._clear_stopped_with_docker(state, dead)
            return
        for info in dead:
            reason = await self._exit_reason(info)
            entry = state.record_crash(info.slot, reason, self.clock.time())
            self._check_leader()
            await self.runtime.remove(info.id, force=True)
            self.ports.release(info.port)
            if entry.crashlooping:
                message = (
                    f"replica {info.name} is in CrashLoopBackOff "
                    f"({entry.crashes} crashes in a row): {reason}; "
                    f"next attempt in {entry.retry_at - self.clock.time():.0f} s"
                )
            else:
                wait = entry.retry_at - self.clock.time()
                message = f"replica {info.name} {reason}; replacing it in {wait:.0f} s"
            await self.emit(
                "error" if entry.crashlooping else "lifecycle",
                "replica_crashed",
                message,
                app=state.name,
                details={
                    "slot": info.slot,
                    "exit_code": info.exit_code,
                    "oom_killed": info.oom_killed,
                    "crashes": entry.crashes,
                },
            )

    async def _clear_stopped_with_docker(self, state: AppState, dead: list[ContainerInfo]) -> None:
        """Replicas that stopped while Docker did not answer: a daemon stopping without live-restore
        stops its containers.  Not crashes of the app, so no back-off: removed now, replaced by this pass."""
        self._check_leader()
        await asyncio.gather(*(self.runtime.remove(info.id, force=True) for info in dead))
        for info in dead:
            self.ports.release(info.port)
        names = ", ".join(sorted(info.name for info in dead))
        await self.emit(
            "lifecycle",
            "replicas_stopped_with_docker",
            f"{len(dead)} replica(s) of {state.name} stopped while the Docker engine was unreachable "
            f"({names}); replacing them",
            app=state.name,
            details={"slots": sorted(info.slot for info in dead)},
        )

    async def _exit_reason(self, info: ContainerInfo) -> str:
        if info.oom_killed:
            reason = "was killed for exceeding its memory limit (OOM)"
        elif info.exit_code is not None:
            reason = f"exited with code {info.exit_code}"
        else:
            reason = f"stopped ({info.state})"
        if info.error:
            reason += f": {info.error}"
        try:
            lines = await self.runtime.logs(info.id, tail=3, since=None, until=None)
        except OrchestryError:
            lines = []
        last = [line.message.strip() for line in lines if line.message.strip()]
        if last:
            reason += f" (last log: {last[-1][:200]})"
        return reason

    async def _replace_failed(self, state: AppState) -> int:
        """Replicas the health checker gave up on: stop them now; their slot refills after back-off."""
        failed = [r for r in state.replicas.values() if r.replace_reason and not r.draining]
        if not failed:
            return 0
        for replica in failed:
            replica.draining = True
            state.stopping.add(replica.container_id)
            self.health.untrack(replica.container_id)
        self._check_leader()
        # Unrouted when it failed; requests it had already accepted still finish before the stop (a
        # frozen one thawed first so it can): stopping at once answered them 502. Bounded by the short
        # force-stop time, not the drain timeout, so a hung replica does not hold up its replacement.
        drain_for = min(self.config.drain_timeout, FORCE_STOP_SECONDS)
        await asyncio.gather(*(self.runtime.unpause(r.container_id) for r in failed))
        await asyncio.gather(*(wait_drained(r.port, timeout=drain_for, host=r.host) for r in failed))
        await asyncio.gather(*(self._stop_one(state, r, FORCE_STOP_SECONDS) for r in failed))
        for replica in failed:
            state.record_crash(replica.slot, replica.replace_reason, self.clock.time())
        return len(failed)

    # --- starting ------------------------------------------------------------------------------
    async def _start_many(self, state: AppState, spec: AppSpec, slots: list[int]) -> int:
        if not slots:
            return 0
        results = await asyncio.gather(*(self._start_one(state, spec, slot) for slot in slots))
        return sum(1 for ok in results if ok)

    def _ports_in_use(self) -> set[int]:
        replicas = [r for app in self.apps.values() for r in app.replicas.values()]
        return {r.port for r in replicas} | {r.health_port for r in replicas if r.health_port is not None}

    def _health_published_apart(self, spec: AppSpec) -> bool:
        """Bridge mode with healthCheck.port naming another container port than the one nginx serves:
        that port is published too, and probed there."""
        container = spec.container
        serving = container.ports[0].container_port if container.ports else 8080
        wanted = spec.health_check_port
        return self.config.network_mode == "bridge" and wanted is not None and wanted != serving

    def _request(
        self, state: AppState, spec: AppSpec, slot: int, port: int, health_port: int | None = None
    ) -> ContainerRequest:
        container = spec.container
        name = f"{state.name}-{slot}"
        env: dict[str, str] = {}
        for var in container.environment:
            if var.source == "secret":
                env[var.name] = self.resolve_secret(var.key or "", var.field or "")
            else:
                env[var.name] = var.value or ""
        container_port = container.ports[0].container_port if container.ports else 8080
        bridge = self.config.network_mode == "bridge"
        listen_port = container_port if bridge else port
        env.update(
            {
                "PORT": str(listen_port),
                "BIND_HOST": "0.0.0.0" if bridge else "127.0.0.1",
                "ORCHESTRY_APP": state.name,
                "ORCHESTRY_REPLICA": name,
                "ORCHESTRY_SLOT": str(slot),
            }
        )
        command = list(container.command or []) + list(container.args or [])
        # Kubernetes-style $(VAR) expansion lets a command bind the port the engine assigned.
        expanded = [expand_vars(part, env) for part in command] if command else None
        term = self.leadership.term
        return ContainerRequest(
            app=state.name,
            slot=slot,
            name=name,
            image=container.image,
            command=expanded,
            environment=env,
            labels={
                LABEL_MANAGED: "true",
                LABEL_APP: state.name,
                LABEL_SLOT: str(slot),
                LABEL_SPEC_HASH: spec.container_hash(),
                LABEL_TERM: str(term or 0),
            },
            host_port=port,
            container_port=container_port if bridge else None,
            health_container_port=spec.health_check_port if health_port is not None else None,
            health_host_port=health_port,
            network_mode=self.config.network_mode,
            cpu_millis=container.resources.cpu_millis,
            memory_bytes=container.resources.memory_bytes,
            stop_grace_seconds=container.termination_grace_period_seconds,
            placement_constraints=tuple(container.placement.constraints) if container.placement else (),
            placement_spread=tuple(p.spread for p in container.placement.preferences)
            if container.placement
            else (),
            verify_start=spec.container_hash() not in state.proven_hashes,
        )

    async def _start_one(self, state: AppState, spec: AppSpec, slot: int) -> bool:
        taken: set[int] = set()  # ports another program grabbed before Docker could publish them
        while True:
            port = self.ports.allocate(exclude=self._ports_in_use() | taken)
            try:
                info = await self._create_on(state, spec, slot, port)
                break
            except PublishedPortInUse as exc:
                # Not the app's fault, and the engine chose the port: say so once, try another port.
                taken.add(exc.port)
                if len(taken) >= PORT_CLASH_ATTEMPTS:
                    await self._block(
                        state,
                        f"{exc}. {len(taken)} ports in a row were taken: keep other programs out of "
                        f"Orchestry's replica ports {self.ports.low}-{self.ports.high}",
                    )
                    return False
                await self.emit(
                    "error",
                    "port_in_use",
                    f"{exc}. Starting it on another port; to avoid this, keep other programs out of "
                    f"Orchestry's replica ports {self.ports.low}-{self.ports.high}",
                    app=state.name,
                    details={"slot": slot, "port": exc.port},
                )
            except (ImageNotFound, ContainerStartError, SecretError, ForeignContainer) as exc:
                # ForeignContainer: retrying cannot help until the other installation lets go of the name.
                self.ports.release(port)
                await self._block(state, str(exc))
                return False
            except Conflict as exc:
                # A container we did not know holds the slot's name: the next relist adopts it.
                self.ports.release(port)
                log.warning("slot %s of %s is taken: %s", slot, state.name, exc)
                state.wake.set()
                return False
            except RuntimeUnavailable:
                self.ports.release(port)
                raise
        replica = Replica.of_container(info)
        state.replicas[info.id] = replica
        self._track(replica, spec, state.name)
        await self.emit(
            "lifecycle",
            "replica_started",
            f"started replica {info.name} on {info.host}:{info.port}",
            app=state.name,
            details={"slot": slot, "container_id": info.id[:12], "port": info.port},
        )
        return True

    async def _create_on(self, state: AppState, spec: AppSpec, slot: int, port: int) -> ContainerInfo:
        health_port = None
        if self._health_published_apart(spec):
            # Not released when the replica stops: the allocator only steers clear of recent ports,
            # and a free-port check comes first on every hand-out.
            health_port = self.ports.allocate(exclude=self._ports_in_use() | {port})
        request = self._request(state, spec, slot, port, health_port)
        self._check_leader()
        return await self.runtime.create_and_start(request)

    async def _block(self, state: AppState, reason: str) -> None:
        if state.blocked == reason:
            return
        state.blocked = reason
        await self.emit(
            "error", "app_blocked", f"{state.name} cannot start replicas: {reason}", app=state.name
        )

    def unblock(self, name: str) -> None:
        if name in self.apps:
            self.apps[name].blocked = ""
            self.apps[name].backoff.clear()

    # --- stopping ------------------------------------------------------------------------------
    async def _drain_and_stop(
        self, state: AppState, spec: AppSpec, victims: list[Replica], force: bool
    ) -> int:
        """Unroute → reload → wait for in-flight requests (bounded) → stop with the grace period."""
        if not victims:
            return 0
        for replica in victims:
            replica.draining = True
            replica.state = REPLICA_DRAINING
            state.stopping.add(replica.container_id)
            self.health.untrack(replica.container_id)
        was_routed = any(r.ready for r in victims)
        for replica in victims:
            replica.ready = False
        if was_routed:
            await self._publish(state, spec)
            if not force:
                await asyncio.gather(
                    *(self.drained(r.port, self.config.drain_timeout, r.host) for r in victims)
                )
        grace = FORCE_STOP_SECONDS if force else float(spec.container.termination_grace_period_seconds)
        self._check_leader()
        await asyncio.gather(*(self._stop_one(state, r, grace) for r in victims))
        return len(victims)

    async def _stop_one(self, state: AppState, replica: Replica, grace: float) -> None:
        try:
            await self.runtime.stop(replica.container_id, timeout=grace)
            await self.runtime.remove(replica.container_id, force=True)
        finally:
            state.replicas.pop(replica.container_id, None)
            state.stopping.discard(replica.container_id)
            self.ports.release(replica.port)
        await self.emit(
            "lifecycle",
            "replica_stopped",
            f"stopped replica {replica.name}",
            app=state.name,
            details={"slot": replica.slot, "container_id": replica.container_id[:12]},
        )

    async def teardown_now(self, name: str) -> int:
        """Stop every container of ``name`` now, serialised with its worker (clear instances)."""
        result = await self.reconcile_now(name, clear=True)
        return result.get("stopped", 0)

    async def _teardown(self, state: AppState) -> int:
        """Stop every container of the app at once, without draining: the app is gone, or its
        runtime state is being cleared, so nothing is routed to them any more."""
        containers = await self.runtime.list_managed(state.name)
        for info in containers:
            if info.id not in state.replicas:
                state.replicas[info.id] = Replica.of_container(info)
        victims = [r for r in state.replicas.values() if not r.draining]
        for replica in victims:
            replica.draining = True
            replica.ready = False
            state.stopping.add(replica.container_id)
            self.health.untrack(replica.container_id)
        await self.router.unpublish(state.name)
        await asyncio.gather(*(self._stop_one(state, r, FORCE_STOP_SECONDS) for r in victims))
        return len(victims)

    # --- routing and health ----------------------------------------------------------------------
    async def _publish(self, state: AppState, spec: AppSpec) -> None:
        chosen = state.ready_replicas()
        for replica in state.replicas.values():
            if replica not in chosen:
                replica.routed = False  # unrouted before nginx even reloads: never counted as serving
        accepted = await self.router.publish(
            state.name, [(r.host, r.port) for r in chosen], spec.container.load_balancing
        )
        if accepted:
            for replica in chosen:
                replica.routed = replica.ready and not replica.draining

    async def publish_current(self, name: str) -> None:
        record = await asyncio.to_thread(self.store.apps.get, name)
        if record is not None and name in self.apps:
            await self._publish(self.apps[name], self.spec_of(record))

    async def _on_health(self, target: ProbeTarget, transition: str, detail: str) -> None:
        state = self.apps.get(target.app)
        replica = state.replicas.get(target.container_id) if state else None
        if state is None or replica is None or replica.draining:
            return
        if transition == READY:
            state.proven_hashes.add(replica.spec_hash)
            replica.ready = True
            replica.state = REPLICA_READY
            replica.reason = ""
            state.backoff.pop(replica.slot, None)  # a healthy replica ends its slot's crash back-off
            await self.publish_current(target.app)
            await self.emit(
                "health",
                "replica_ready",
                f"replica {replica.name} is healthy ({detail}) and routed",
                app=target.app,
                details={"slot": replica.slot},
            )
        elif transition == UNHEALTHY:
            replica.ready = False
            replica.state = REPLICA_UNHEALTHY
            replica.reason = detail
            await self.publish_current(target.app)
            replica.replace_reason = f"failed its health check: {detail}"
            await self.emit(
                "health",
                "replica_unhealthy",
                f"replica {replica.name} failed its health check ({detail}); unrouted, replacing it",
                app=target.app,
                details={"slot": replica.slot},
            )
        elif transition == NEVER_READY:
            if replica.replace_reason:
                # Already failed its checks and due for replacement (which waits while Docker does not
                # answer): "never became healthy" would be wrong, and a second event for one failure.
                return
            replica.state = REPLICA_FAILED
            replica.reason = f"never became healthy: {detail}"
            replica.replace_reason = replica.reason
            await self.emit(
                "health",
                "replica_never_ready",
                f"replica {replica.name} {replica.reason}",
                app=target.app,
                details={"slot": replica.slot},
            )
        self.on_replicas_changed(target.app)
        record = await asyncio.to_thread(self.store.apps.get, target.app)
        if record is not None:
            await self._update_status(
                state, record, record.desired_replicas if record.status != APP_STOPPED else 0
            )
        state.wake.set()

    async def on_container_died(self, app: str, container_id: str) -> None:
        """Docker said a container died: unroute it at once, then let the worker replace it."""
        state = self.apps.get(app)
        if state is None:
            return
        replica = state.replicas.get(container_id)
        if replica is not None and replica.ready and not replica.draining:
            replica.ready = False
            replica.state = REPLICA_FAILED
            await self.publish_current(app)
        state.wake.set()

    # --- status ----------------------------------------------------------------------------------
    def compute_status(self, state: AppState, record: Any, desired: int) -> tuple[str, str]:
        if record.status == APP_STOPPED:
            return APP_STOPPED, "stopped by the operator" if not state.replicas else "stopping"
        if state.blocked:
            return APP_ERROR, state.blocked
        ready = len(state.serving())
        if ready >= desired:
            reason = f"{ready}/{desired} replicas ready"
            if state.runtime_error:
                reason += f"; nothing can change until Docker answers: {state.runtime_error}"
            return APP_RUNNING, reason
        # What holds a replica the runtime places by itself comes first: it names the fix (Swarm's reason).
        problems = [
            f"{name} pending on the Swarm" + (f": {why}" if why else "")
            for name, why in sorted(state.pending.items(), key=lambda item: not item[1])
        ]
        problems += [
            f"{v.name} joining the load balancer"
            if v.state == REPLICA_READY
            else f"{v.name} {v.state}" + (f": {v.reason}" if v.reason else "")
            for v in state.views(self.clock.time())
            if not v.ready and v.state != REPLICA_DRAINING
        ]
        reason = f"{ready}/{desired} replicas ready"
        if state.runtime_error:
            reason += f"; {state.runtime_error}"
        if problems:
            reason += "; " + "; ".join(problems[:3])
        return APP_DEGRADED, reason

    async def _update_status(self, state: AppState, record: Any, desired: int) -> None:
        status, reason = self.compute_status(state, record, desired)
        if record.status == APP_STOPPED:
            state.reported = (APP_STOPPED, "")
            return
        # Transitions race (two replicas turning ready at once read the same record): the in-memory
        # last report decides, so each change is said once.
        if (status, reason) != state.reported:
            previous = state.reported[0] if state.reported else record.status
            state.reported = (status, reason)
            if status != previous:
                await self.emit(
                    "lifecycle",
                    "status_changed",
                    f"{state.name} is {status}: {reason}",
                    app=state.name,
                    details={"from": previous, "to": status},
                )
            try:
                await asyncio.to_thread(self._save_status, state.name, status, reason)
            except OrchestryError as exc:
                log.warning("could not save status of %s: %s", state.name, exc)

    def _save_status(self, name: str, status: str, reason: str) -> None:
        """Save a computed status unless the operator stopped or deleted the app meanwhile.

        The status was computed from a record read earlier; writing it over a ``down`` that landed in
        between would bring a stopped app back to life on the next pass, so the store checks and
        writes in one statement.
        """
        self.store.apps.save_status(name, status, reason)

    async def _persist_instances(self, state: AppState) -> None:
        """Mirror the replicas into the store so followers and the next leader can show them."""
        from core.store import InstanceRecord

        views = state.views(self.clock.time())
        fingerprint = tuple(
            (v.slot, v.container_id, v.state, v.ready, v.restarts, v.reason.split("; next attempt")[0])
            for v in views
        )
        if fingerprint == state.persisted:
            return  # nothing a reader could notice changed since the last write

        def write() -> None:
            known = {rec.slot for rec in self.store.instances.list(state.name)}
            for view in views:
                self.store.instances.upsert(
                    InstanceRecord(
                        app=state.name,
                        slot=view.slot,
                        container_id=view.container_id,
                        host=view.host or "127.0.0.1",
                        port=view.port,
                        state=view.state,
                        ready=view.ready,
                        restarts=view.restarts,
                        reason=view.reason,
                    )
                )
            for slot in known - {v.slot for v in views}:
                self.store.instances.delete(state.name, slot)

        try:
            await asyncio.to_thread(write)
            state.persisted = fingerprint
        except NotFound:
            pass  # the app was deleted while this pass ran
        except OrchestryError as exc:
            log.warning("could not save the replicas of %s: %s", state.name, exc)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._workers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.health.close()


async def _ignore_runtime_state(_reason: str) -> None:
    return None


async def _wait_drained(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    return await wait_drained(port, timeout=timeout, host=host)


def _probed_port(info: ContainerInfo) -> int | None:
    """The container port behind the published port a probe of ``info`` goes to."""
    return info.health_container_port if info.health_port is not None else info.container_port


def expand_vars(text: str, env: dict[str, str]) -> str:
    """Replace ``$(NAME)`` with env[NAME]; unknown names stay as written (as Kubernetes does)."""
    out = text
    for key, value in env.items():
        out = out.replace(f"$({key})", value)
    return out
