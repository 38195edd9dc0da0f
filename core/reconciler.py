"""Desired vs actual → plan → actions, one serialised worker per app.

Each app's worker wakes on a desired-state change, a runtime event, a health transition, a crash
back-off expiring, or the periodic relist (the safety net; stopped apps with nothing left share one
listing per relist interval instead of a pass each, see ``_relist_quiet``).  A pass takes the app's
containers from one listing shared by every app (core/shared_listing.py), adopts what it does not know
(a restarted controller creates nothing twice), clears away dead containers (counting crashes for
back-off), asks the pure planner what to do and does it, in parallel across slots.  Only the lease
holder acts: every pass and every runtime action checks ``is_leader()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from core import planner
from core.clock import SYSTEM_CLOCK, Clock
from core.coalesce import retrieved
from core.collaborators import Emit
from core.errors import (
    NotFound,
    OrchestryError,
    RuntimeUnavailable,
    StoreError,
)
from core.health import HealthChecker, Probe, ProbeTarget
from core.health_reactions import HealthReactions
from core.metrics import instruments
from core.models import (
    APP_STOPPED,
    REPLICA_READY,
    REPLICA_STARTING,
)
from core.net.connections import wait_drained
from core.replica_starts import PORT_CLASH_ATTEMPTS, ReplicaStarts
from core.replica_status import StatusRecorder, compute_status
from core.replica_stops import FORCE_STOP_SECONDS, ReplicaStops
from core.replicas import AppState, ForceHold, Replica
from core.runtime.base import (
    STATE_PENDING,
    ContainerInfo,
    Runtime,
)
from core.runtime.ports import PortAllocator
from core.shared_listing import SharedListing
from core.spec import AppSpec
from core.supervisor import guarded
from core.timeline import ROUTED, ReplicaTimeline
from core.warm_pool import WarmPool

__all__ = [
    "FORCE_STOP_SECONDS",
    "PORT_CLASH_ATTEMPTS",
    "Drained",
    "PassIntent",
    "Reconciler",
    "ReconcilerConfig",
]

log = logging.getLogger(__name__)

# While Docker does not answer, a worker retries at least this often (a wake retries at once).
RUNTIME_RETRY_SECONDS = 5.0
# A replica Docker's events said stopped but a pass still listed running is listed again this soon, for
# at most STOP_LISTED_LATE_SECONDS after the event (a "kill" that only sent a signal stays running).
STOP_RECHECK_SECONDS = 0.05
STOP_LISTED_LATE_SECONDS = 2.0


class Router(Protocol):
    async def publish(
        self, app: str, servers: list[tuple[str, int]], load_balancing: str, urgent: bool = False
    ) -> bool: ...

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


class Reconciler(ReplicaStarts, ReplicaStops, HealthReactions, WarmPool):
    # False: every app's worker passes each relist_interval, quiet or not (the way before
    # _relist_quiet, for bench/api.py's side-by-side figures).
    quiet_relist = True

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
        self.status = StatusRecorder(store, emit, clock)
        self._specs: dict[str, tuple[str, AppSpec, str]] = {}  # name → (spec hash, spec, container hash)
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._quiet_relist: asyncio.Task[None] | None = None
        self._closed = False
        self.timeline: ReplicaTimeline | None = None
        # Passes that ask together share one list call (core/shared_listing.py), on a runtime whose
        # list call costs enough to share (Docker's: an HTTP round trip through the thread pool).
        self.listing = SharedListing(lambda app: self.runtime.list_managed(app))
        self.warm_listing = SharedListing(self._list_warm_all)  # each app's first pass of a term
        # The leader's kept app records (core/services/app_records.py), set by the wiring: each pass
        # takes its app's record from them instead of a store read in a thread (at 500 apps, 100
        # reads a second on the thread pool, contending for the GIL with the API).  None: the store.
        self.records: Any = None

    def record_timeline(self, timeline: ReplicaTimeline | None) -> None:
        """Mark each replica's start-up stages in ``timeline`` (None: stop); see core/timeline.py."""
        self.timeline = timeline
        self.health.timeline = timeline
        if hasattr(self.runtime, "timeline"):
            self.runtime.timeline = timeline

    # --- workers -------------------------------------------------------------------------------
    def state(self, name: str) -> AppState:
        if name not in self.apps:
            self.apps[name] = AppState(name=name)
        return self.apps[name]

    def ensure_worker(self, name: str) -> None:
        self.state(name)
        task = self._workers.get(name)
        # Guarded: a failure outside a pass (a bug) is logged and the worker restarted with backoff,
        # instead of ending silently and leaving the app unreconciled until the next ensure_workers.
        if task is None or task.done():
            worker = guarded(f"reconcile:{name}", lambda: self._worker(name), restart_on_return=False)
            self._workers[name] = asyncio.create_task(worker, name=f"reconcile:{name}")
        if self._quiet_relist is None or self._quiet_relist.done():
            relist = guarded("relist-quiet-apps", self._relist_quiet, restart_on_return=False)
            self._quiet_relist = asyncio.create_task(relist, name="relist-quiet-apps")

    def ready_count(self, name: str) -> int:
        """Replicas of ``name`` that passed their health check and are not draining."""
        state = self.apps.get(name)
        if state is None:
            return 0
        # Counted, not sorted by slot as ready_replicas() does: the scaler and every view ask often.
        return sum(1 for r in state.replicas.values() if r.ready and not r.draining)

    def live_count(self, name: str) -> int:
        """Replicas of ``name`` that are not draining."""
        state = self.apps.get(name)
        return len(state.live()) if state is not None else 0

    def knows_replicas(self, name: str) -> bool:
        """Whether a pass of this term has listed ``name``'s containers (adopting what runs), so its
        replicas here are the ones running."""
        state = self.apps.get(name)
        return state is not None and state.routed_once

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
            state.persisted = None  # another leader may have written since: all rows again next term
            if state.warm_refill is not None:
                state.warm_refill.cancel()
            state.warm.clear()
            state.warm_loaded = False

    def wake(self, name: str) -> None:
        if name in self.apps:
            self.apps[name].wake.set()

    def wake_all(self) -> None:
        for state in self.apps.values():
            state.wake.set()

    @contextlib.contextmanager
    def forcing(self, name: str) -> Iterator[ForceHold]:
        """While the block runs, a pass that stops ``name`` stops it forced.  A forced down holds it
        from before it marks the app stopped until its own pass is done, so no pass in between (a
        relist, a health wake, a plain down's) drains what the operator asked to stop at once, and a
        drain or stop already under way (a plain down's pass) is cut short (``_stop_container``).
        Yields the hold, which counts those stops."""
        created = name not in self.apps
        state = self.state(name)
        state.force_holds += 1
        state.forced.set()
        try:
            yield ForceHold(state, state.cut_short)
        finally:
            state.force_holds -= 1
            if not state.force_holds:
                state.forced.clear()
            if created and not state.force_holds and name not in self._workers:
                # Held for a name no worker came to serve (not registered: the down failed).
                self.apps.pop(name, None)

    def tally(self, name: str) -> Counter[str]:
        """The app's pass results so far, added up: give it to ``reconcile_now(since=...)``."""
        state = self.apps.get(name)
        return Counter(state.totals) if state is not None else Counter()

    async def reconcile_now(
        self,
        name: str,
        timeout: float = 120.0,
        *,
        force: bool = False,
        clear: bool = False,
        since: Counter[str] | None = None,
    ) -> dict[str, int]:
        """Wake the app's worker and wait for a whole pass that started after this call.

        ``force``: a stopped app's replicas stop without draining, with a short grace period.
        ``clear``: every container of the app is stopped first (its runtime state starts afresh).
        The intent travels with this request, so a concurrent request without it cannot cancel it:
        the pass that serves several requests honours the strongest of them.

        Returns that pass's result, or with ``since`` (a ``tally`` taken before the command's store
        write) what every pass since then did: a pass begun before this call that read the record after
        the write has done the work, and the pass this call waits for finds nothing left to do."""
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
        if since is not None:
            return dict(state.totals - since)
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
            if state.recheck_at is not None:
                wait = min(wait, max(0.0, state.recheck_at - now))
            if state.quiet and retry_in is None and retry_at is None and state.recheck_at is None:
                await state.wake.wait()  # relisted with the other quiet apps (_relist_quiet)
            else:
                await self.clock.wait(state.wake, wait)
            state.wake.clear()
            state.quiet = False
            state.recheck_at = None
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
                state.totals.update(result)
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
                if deleted:
                    # The app is gone and this worker ends: a pass asked for while this one ran (a
                    # delete's own reconcile_now) has nothing left to do and must not wait forever.
                    state.completed = state.requested
                state.pass_done.notify_all()
            if deleted:
                self.apps.pop(name, None)
                self._workers.pop(name, None)
                return

    async def _relist_quiet(self) -> None:
        """The periodic relist of the quiet apps (``AppState.quiet``: stopped, nothing of them left):
        one listing of every container this controller manages each relist_interval, instead of a
        pass and a list call per app (at 500 stopped apps and the benches' 5 s, 100 passes and 17-40
        list calls a second, most of an idle engine's loop).  An app found with containers is woken
        for a pass, as its own relist would have found them; one the listing could not be had for
        (Docker away) is woken too, and its pass says why, as before."""
        while not self._closed:
            await self.clock.sleep(self.config.relist_interval)
            quiet = [state for state in self.apps.values() if state.quiet]
            if not quiet or not self.leadership.is_leader():
                continue
            try:
                if getattr(self.runtime, "shares_listing", False):
                    listed: set[str] | None = set(await self.listing.every())
                else:
                    listed = {info.app for info in await self.runtime.list_managed(None)}
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("relisting the quiet apps failed (%s): each passes on its own", exc)
                listed = None
            for state in quiet:
                if listed is None or state.name in listed:
                    state.wake.set()

    async def _runtime_lost(self, state: AppState, reason: str) -> None:
        first = not state.runtime_error
        state.runtime_error = reason
        await self.on_runtime_state(reason)
        if not first:
            return
        # The store still says what the last good pass saw: save why that no longer holds.
        try:
            record = await self.store.read(self.store.apps.get, state.name)
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
            spec = parse_app_spec(record.spec)
            cached = (record.spec_hash, spec, spec.container_hash())
            self._specs[record.name] = cached
        return cached[1]

    def container_hash_of(self, record: Any) -> str:
        """``spec_of(record).container_hash()``, worked out once per spec: every pass compares each
        replica with it (a canonical dump and a SHA-256, ~0.2 ms: 100 passes a second at 500 apps)."""
        self.spec_of(record)
        return self._specs[record.name][2]

    def _check_leader(self) -> None:
        if not self.leadership.is_leader():
            raise NotLeaderAnymore()

    async def _pass(self, state: AppState, intent: PassIntent) -> dict[str, int]:
        if not self.leadership.is_leader():
            return {}  # a follower's relist must not query the store (it may be the store that is down)
        # The container list does not depend on the record: asked for together with it (a loaded Docker
        # took 0.1-0.4 s to list, the store 5-60 ms), unless a clear stops every container first.
        listing = None if intent.clear else asyncio.ensure_future(self._containers_of(state.name))
        try:
            return await self._pass_listing(state, intent, listing)
        finally:
            if listing is not None:
                listing.cancel()  # unused (a deleted app, a lost lease): nothing waits for it
                listing.add_done_callback(retrieved)

    async def _containers_of(self, name: str) -> list[ContainerInfo]:
        if getattr(self.runtime, "shares_listing", False):
            return await self.listing.of(name)
        return await self.runtime.list_managed(name)

    async def _pass_listing(
        self, state: AppState, intent: PassIntent, listing: asyncio.Future[list[ContainerInfo]] | None
    ) -> dict[str, int]:
        record = await self._record_of(state.name)
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
        containers = await (listing if listing is not None else self._containers_of(state.name))
        # Docker answers again: cleared before this pass saves a status that would still blame it.
        after_outage, state.runtime_error = bool(state.runtime_error), ""
        if after_outage:
            await self.on_runtime_state("")
        adopted = await self._sync(state, spec, containers)
        await self._clear_dead(state, containers, after_outage)
        if await self._listing_lags_events(state, containers):
            state.recheck_at = self.clock.time() + STOP_RECHECK_SECONDS
        replaced = await self._replace_failed(state)
        desired = record.desired_replicas if record.status != APP_STOPPED else 0
        await self._tend_pool(state, spec, stopped=record.status == APP_STOPPED)
        # Read now, not at the start of the pass: a forced down may have begun after the pass did.
        force = record.status == APP_STOPPED and (intent.force or state.force_holds > 0)
        now = self.clock.time()
        current_hash = self.container_hash_of(record)
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
        forget_unwanted_back_off(state, desired)
        occupied = {r.slot for r in state.replicas.values()} | pending_slots | state.pool_slots()
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
        self._refill_pool_later(state, spec, stopped=record.status == APP_STOPPED)
        state.quiet = (
            self.quiet_relist
            and record.status == APP_STOPPED
            and not containers
            and not state.replicas
            and not state.stopping
            and not state.warm
            and not state.warm_creating
            and not state.pending
            and state.recheck_at is None
            and (state.warm_refill is None or state.warm_refill.done())
        )
        return {"adopted": adopted, "started": started, "stopped": stopped + replaced + cleared}

    async def _listing_lags_events(self, state: AppState, containers: list[ContainerInfo]) -> bool:
        """Whether a replica Docker's events said stopped is still listed running.  Docker sends a
        container's die event before it saves the state its list shows, so the pass the event wakes can
        list it running a few ms later and clear nothing; without another pass the replica would be
        replaced only once its health checks failed (failureThreshold × periodSeconds later).  One still
        running STOP_LISTED_LATE_SECONDS after the event was only signalled: it is routed again."""
        running = {c.id for c in containers if c.running}
        now = self.clock.monotonic()
        lagging = False
        for replica in list(state.replicas.values()):
            reported = replica.stop_reported_at
            if reported is None:
                continue
            if replica.draining:  # stopped by this engine: the stop itself waits for it
                replica.stop_reported_at = None
                continue
            if replica.container_id not in running:
                replica.stop_reported_at = None
            elif now - reported < STOP_LISTED_LATE_SECONDS:
                lagging = True
            else:
                replica.stop_reported_at = None
                await self._survived_signal(state, replica)
        return lagging

    async def _survived_signal(self, state: AppState, replica: Replica) -> None:
        """A "kill" event that only sent a signal (``docker kill -s HUP``: a config reload) unrouted a
        replica that keeps running.  Its probe target still says ready, so no passing probe would report
        READY again and it would stay unrouted for good: probe it as a fresh start instead, so it is
        routed again once healthy, with the same container (no replacement, no restart counted)."""
        target = self.health.target(replica.container_id)
        if replica.ready or replica.replace_reason or target is None or not target.ready:
            return  # never unrouted by the event, failing its checks already, or still starting
        replica.state = REPLICA_STARTING
        replica.reason = ""
        # Said (saved) before the probes start again: rearmed first, a loaded host's store write could
        # end after the replica passed and was routed, and the log read "healthy and routed" before it.
        await self.emit(
            "lifecycle",
            "replica_survived_signal",
            f"replica {replica.name} is still running after a kill signal: routed again once healthy",
            app=state.name,
            details={"slot": replica.slot},
        )
        if state.replicas.get(replica.container_id) is replica and not replica.replace_reason:
            self.health.rearm(replica.container_id)  # not if it went, or failed its checks meanwhile

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

    # --- routing and health ----------------------------------------------------------------------
    async def _publish(self, state: AppState, spec: AppSpec) -> None:
        chosen = state.ready_replicas()
        for replica in state.replicas.values():
            if replica not in chosen:
                replica.routed = False  # unrouted before nginx even reloads: never counted as serving
        balancing = spec.container.load_balancing
        # Nothing of the app on its way to ready (being started, or started and not passed yet): no
        # other change of it is coming to share a reload, so nginx's coalescing pause would only delay
        # this one (a scale-out's last replica, a crashed one's replacement).
        settled = not state.starting and all(r.ready for r in state.live())
        accepted = await self.router.publish(
            state.name, [(r.host, r.port) for r in upstream_order(chosen, balancing)], balancing, settled
        )
        if accepted:
            for replica in chosen:
                if self.timeline is not None and not replica.routed:
                    self.timeline.mark(replica.name, ROUTED)
                replica.routed = replica.ready and not replica.draining

    async def publish_current(self, name: str) -> None:
        # The spec the app's last pass worked with, without a store read: a health transition routes a
        # replica, and during a scale-out that read queued in the thread pool behind the store writes
        # the other new replicas cause (events, status, instances).  A spec change is a pass, which
        # refreshes this cache; a deleted app's replicas are draining and never reach here.
        cached = self._specs.get(name)
        if cached is not None and name in self.apps:
            await self._publish(self.apps[name], cached[1])
            return
        record = await self.store.read(self.store.apps.get, name)
        if record is not None and name in self.apps:
            await self._publish(self.apps[name], self.spec_of(record))

    # --- status ----------------------------------------------------------------------------------
    def compute_status(self, state: AppState, record: Any, desired: int) -> tuple[str, str]:
        return compute_status(state, record, desired, self.clock.time())

    async def _update_status(self, state: AppState, record: Any, desired: int) -> None:
        await self.status.update(state, record, desired)

    async def _persist_instances(self, state: AppState) -> None:
        await self.status.persist_instances(state)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._workers.values()) + [
            state.warm_refill for state in self.apps.values() if state.warm_refill is not None
        ]
        if self._quiet_relist is not None:
            tasks.append(self._quiet_relist)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.listing.close()
        await self.warm_listing.close()
        await self.health.close()
        await self.status.close()


def forget_unwanted_back_off(state: AppState, desired: int) -> None:
    """Drop the crash back-off of slots that no replica is wanted in any more (scaled below them, or
    stopped): each was listed as a CrashLoopBackOff replica of the app ("next attempt in 0 s") for as
    long as the controller ran.  The lowest slots the live replicas leave wanted keep theirs, so a
    crash loop is still never bypassed by starting another slot."""
    live = state.live()
    live_slots = {r.slot for r in live}
    waiting = sorted(slot for slot in state.backoff if slot not in live_slots)
    for slot in waiting[max(0, desired - len(live)) :]:
        del state.backoff[slot]


def upstream_order(ready: list[Replica], load_balancing: str) -> list[Replica]:
    """The order of an app's servers in its nginx upstream: the replicas that turned ready last come
    first.  A reload's fresh workers pick among servers with equally few connections in list order,
    so a replica that has just joined takes the next request instead of waiting for the round to
    reach it at the end of the list (ten replicas: nine requests later).  Those already routed keep
    their order, so publishing the same replicas again changes nothing.  ip_hash keeps slot order:
    there the order maps clients to replicas."""
    if load_balancing == "ip_hash":
        return ready
    return sorted(ready, key=lambda r: -r.ready_since)  # stable: ties (adopted replicas) by slot


async def _ignore_runtime_state(_reason: str) -> None:
    return None


async def _wait_drained(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    return await wait_drained(port, timeout=timeout, host=host)


def _probed_port(info: ContainerInfo) -> int | None:
    """The container port behind the published port a probe of ``info`` goes to."""
    return info.health_container_port if info.health_port is not None else info.container_port
