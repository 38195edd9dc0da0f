"""Leader election on a lease row per term (DESIGN.md §6); the fencing token is the term.

A lease is not a lock: the holder checks ``is_leader()`` (a purely local, monotonic-clock test that
errs on the side of "not leader") before each runtime action, and the store's leader-only writes carry
the term into their transaction (``Store.fence_writes``), so a leader that was frozen or cut off past its
lease cannot write over its successor.  A leader that cannot renew (database unreachable) steps down
once its lease may have expired; it never keeps acting on a lease it cannot prove.  A single node
simply wins term 1 and renews it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from core.errors import NotLeader, OrchestryError, StoreError
from core.metrics import instruments
from core.settings import NODE_RETENTION_SECONDS

log = logging.getLogger(__name__)

LEADER = "leader"
FOLLOWER = "follower"
CANDIDATE = "candidate"

# Give up local leadership this fraction of the TTL before the lease could expire in the database, so
# clock drift and a slow renew never leave two nodes believing they lead.
SAFETY_MARGIN = 0.2
# A fenced write must commit with at least this much lease left (see core.store.db.WriteFence).
MIN_FENCE_MARGIN = 0.75
# A follower tries for an expiring lease this long after it should have run out (and never sooner
# than this after its last try), so the try does not come a hair early and find it still valid.
EXPIRY_SLACK = 0.02

# The lease's own threads (see LeaseElection._lane): two, so a heartbeat stuck on a slow database never
# holds up the renewal beside it (the renewal, reads and release run one at a time under _lock).
LANE_THREADS = 2
LANE_NAME = "orchestry-lease"  # bench/cpu_split.py names a thread's CPU by this prefix

StateChange = Callable[[str, str, dict[str, Any]], Awaitable[None]]


@dataclass
class LeaseView:
    leader_id: str
    term: int
    hostname: str
    api_url: str
    acquired_at: float
    renewed_at: float
    expires_at: float
    released_at: float | None


@dataclass(frozen=True)
class LeadershipView:
    """Who leads, as this node sees it now (what a front end shows in its header)."""

    node_id: str
    state: str  # leader | follower | candidate
    leading: bool
    term: int | None
    leader_id: str | None
    lease: LeaseView | None


def _report_failed_change(change: asyncio.Task[BaseException | None]) -> None:
    """The election's loop does not wait for its changes to be acted on: their failures are logged."""
    failure = None if change.cancelled() else change.result()
    if failure is None:
        return
    if isinstance(failure, OrchestryError):
        log.warning("acting on a leadership change failed: %s", failure)
    else:
        log.error("acting on a leadership change failed", exc_info=failure)


class LeaseElection:
    def __init__(
        self,
        store: Any,
        node_id: str,
        api_url: str,
        ttl: float,
        on_change: StateChange | None = None,
        node_retention: float = NODE_RETENTION_SECONDS,
    ) -> None:
        self.store = store
        self.node_retention = node_retention  # ORCHESTRY_NODE_RETENTION
        self.node_id = node_id
        self.hostname = socket.gethostname()
        self.api_url = api_url
        self.ttl = float(ttl)
        self.state = CANDIDATE
        self.term: int | None = None
        self.lease: LeaseView | None = None
        self._valid_until = 0.0  # local monotonic time
        self._hold_off_until = 0.0  # local monotonic time before which this node does not campaign
        self._peer_expires = 0.0  # local monotonic time at which the newest lease seen runs out
        self._notices: Any = None  # core.store.lease_notices.LeaseNotices while run() runs (PostgreSQL)
        self.wakeups = 0  # steps started by a lease notice rather than the timer
        self._on_change = on_change
        # Each state change's on_change runs in a task of its own, after the one before (see
        # _set_state): the newest, which every waiter awaits, and those this step or release made.
        self._last_change: asyncio.Task[BaseException | None] | None = None
        self._changes: list[asyncio.Task[BaseException | None]] = []
        self._running_changes: set[asyncio.Task[BaseException | None]] = set()
        self.last_error: str = ""
        self._lock = asyncio.Lock()
        # The lease's store calls never go to asyncio's default pool: its min(32, CPUs + 4) threads are
        # shared with every other store and file call of the node, and a burst of writes (a fleet
        # applied by 50 `up` calls, each parked in SQLite's write queue or on a PostgreSQL lock) holds
        # them all; a renewal queued behind them missed its deadline and the leader stepped down in the
        # middle of the apply. Threads start on first use and end when the election is collected.
        self._lane = ThreadPoolExecutor(max_workers=LANE_THREADS, thread_name_prefix=LANE_NAME)
        fence_writes = getattr(store, "fence_writes", None)
        if fence_writes is not None:
            fence_writes(self._fencing_term, node_id, max(MIN_FENCE_MARGIN, self.ttl * SAFETY_MARGIN / 2))

    async def _in_lane(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking store call on the lease's own threads (see ``_lane``)."""
        return await asyncio.get_running_loop().run_in_executor(self._lane, call, *args)

    @property
    def _follower_retry(self) -> float:
        """How often a node that does not lead tries for the lease."""
        return min(1.0, self.ttl / 3)

    def _next_step_in(self) -> float:
        """Seconds until the next step: a leader renews every TTL/3; a follower retries on its timer,
        or just after a peer's lease runs out if that comes first (a killed leader is replaced as soon
        as its lease allows, not up to a retry period later). A release wakes followers at once
        through the lease notices instead."""
        if self.is_leader():
            return max(0.5, self.ttl / 3)
        retry = self._follower_retry
        lease = self.lease
        if lease is None or lease.released_at is not None or lease.leader_id == self.node_id:
            return retry
        until_expiry = self._peer_expires - time.monotonic() + EXPIRY_SLACK
        return min(retry, max(EXPIRY_SLACK, until_expiry))

    # --- queries --------------------------------------------------------------------------------
    def is_leader(self) -> bool:
        return self.state == LEADER and time.monotonic() < self._valid_until

    async def held_by_peer(self) -> bool:
        """Whether another node holds the lease now, as the store says (this node's view may be a step
        old: a peer may have taken a released lease since); by that view if the store does not answer."""
        try:
            current, db_now = await self._in_lane(self.store.leases.newest_and_now)
        except StoreError:
            return self.leader_id not in (None, self.node_id)
        return (
            current is not None
            and current.leader_id != self.node_id
            and current.released_at is None
            and current.expires_at > db_now
        )

    def _fencing_term(self) -> int | None:
        return self.term if self.is_leader() else None

    @property
    def leader_id(self) -> str | None:
        if self.is_leader():
            return self.node_id
        if self.lease is not None and self.lease.released_at is None and self.lease.expires_at > time.time():
            return self.lease.leader_id
        return None

    def view(self) -> LeadershipView:
        leading = self.is_leader()
        lease = self.lease
        return LeadershipView(
            node_id=self.node_id,
            state=LEADER if leading else self.state,
            leading=leading,
            term=lease.term if lease else self.term,
            leader_id=self.leader_id,
            lease=lease,
        )

    def not_leader(self) -> NotLeader:
        """The refusal of a write on this node, saying who leads (or why nobody does yet)."""
        leader = self.leader_id
        if leader is not None and leader == self.node_id and self.lease is not None:
            # A restart under the same node id finds its own earlier run's lease: taking it over before it
            # expires would let a paused (not dead) earlier run act beside this one.
            left = max(0.0, self.lease.expires_at - time.time())
            return NotLeader(
                leader,
                f"Not the leader yet: an earlier run of this node ({leader}, term {self.lease.term}) still "
                f"holds the lease; it expires in {left:.0f} s, then this node takes over",
            )
        return NotLeader(leader)

    # --- one step of the protocol ----------------------------------------------------------------
    async def step(self) -> None:
        """One step of the protocol; returns once every state change so far has been acted on (its
        ``on_change`` ran), raising what this step's changes raised."""
        await self._settle(await self._step_once())

    async def _step_once(self) -> list[asyncio.Task[BaseException | None]]:
        """One step, without waiting for the state changes it made to be acted on: they are returned."""
        async with self._lock:
            self._changes = []
            try:
                await self._step()
                self.last_error = ""
            except StoreError as exc:
                self.last_error = str(exc)
                log.warning("lease step failed: %s", exc)
                if self.state == LEADER:
                    instruments.LEASE_RENEW_FAILURES.inc()
                # Keep local leadership only while the lease is still surely valid (is_leader() already
                # says no once _valid_until has passed); after that, step down for everyone to see
                # (nginx left alone, replicas no longer ours) and try for a new term when the store
                # answers again.
                if self.state == LEADER and time.monotonic() >= self._valid_until:
                    await self._set_state(CANDIDATE, f"cannot renew the lease: {exc}")
            changes, self._changes = self._changes, []
            return changes

    async def _settle(self, changes: list[asyncio.Task[BaseException | None]]) -> None:
        """Wait until every state change so far was acted on; raise the first failure of ``changes``."""
        try:
            newest = self._last_change
            if newest is not None:
                await asyncio.wait([newest])  # it ran after every change before it
        except asyncio.CancelledError:
            for change in changes:  # the caller gave up: its changes go no further, as when awaited
                change.cancel()
            raise
        for change in changes:
            failure = None if change.cancelled() else change.result()
            if isinstance(failure, StoreError):
                # As a failed step: the store is away (the app records for the workers); the leader
                # stays, its watch starts the workers once the store answers.
                self.last_error = str(failure)
                log.warning("acting on a leadership change failed: %s", failure)
            elif failure is not None:
                raise failure

    async def _step(self) -> None:
        started = time.monotonic()
        if self.state == LEADER and self.term is not None:
            lapsed = started >= self._valid_until
            renewed = await self._in_lane(self.store.leases.renew, self.term, self.node_id, self.ttl)
            instruments.LEASE_RENEW_DURATION.observe(time.monotonic() - started)
            if renewed is not None:
                self._adopt(renewed)
                if lapsed:
                    # While the lease could not be proven (a slow database, a pause shorter than the
                    # TTL) every action was skipped or refused: step down and take the term up again so
                    # nginx, replicas and workers are taken over afresh instead of left half-done.
                    await self._set_state(CANDIDATE, "the lease lapsed before it could be renewed")
                self._valid_until = started + self.ttl * (1 - SAFETY_MARGIN)
                await self._set_state(LEADER, f"renewed term {self.term} after a lapse")
                return
            # Alive and still leading in its own eyes, yet refused: the term ran out (this node was
            # frozen or cut off past its lease). No longer leader from here on, whatever the read finds.
            refused_term: int | None = self.term
            self._valid_until = 0.0
        else:
            refused_term = None
        current, db_now = await self._in_lane(self.store.leases.newest_and_now)
        if refused_term is not None:
            # "fenced" only when a successor took the term over; a term that merely ran out with
            # nobody taking it (the node then takes the next one itself) ended "expired", as the
            # history says of a term that no renew was refused for.
            fenced = current is not None and current.term > refused_term
            await self._set_state(
                FOLLOWER, "lost the lease (renew refused)", term_ended="fenced" if fenced else None
            )
        if current is not None:
            self._adopt(current)
            # Local monotonic time at which the peer's lease runs out (by the database clock).
            self._peer_expires = started + (current.expires_at - db_now)
        if started < self._hold_off_until:
            return  # just stepped down: a peer gets the first chance at the next term
        acquired = await self._in_lane(
            self.store.leases.try_acquire, self.node_id, self.hostname, self.api_url, self.ttl
        )
        if acquired is not None:
            self._adopt(acquired)
            self.term = acquired.term
            self._valid_until = started + self.ttl * (1 - SAFETY_MARGIN)
            await self._set_state(LEADER, f"won term {acquired.term}")
        elif self.state != FOLLOWER:
            await self._set_state(FOLLOWER, f"following {self.lease.leader_id if self.lease else 'nobody'}")

    def _adopt(self, rec: Any) -> None:
        self.lease = LeaseView(
            leader_id=rec.leader_id,
            term=rec.term,
            hostname=rec.hostname or "",
            api_url=rec.api_url or "",
            acquired_at=rec.acquired_at,
            renewed_at=rec.renewed_at,
            expires_at=rec.expires_at,
            released_at=rec.released_at,
        )

    async def _set_state(self, state: str, why: str, term_ended: str | None = None) -> None:
        if state == self.state:
            return
        previous, self.state = self.state, state
        if state != LEADER:
            self._valid_until = 0.0
        log.info("cluster state %s → %s (%s)", previous, state, why)
        instruments.LEADER_CHANGES.inc(state=state)
        if self._on_change is not None:
            details: dict[str, Any] = {"previous": previous, "term": self.term, "node_id": self.node_id}
            if term_ended:
                details["term_ended"] = term_ended
            self._changes.append(self._act_on(state, why, details))

    def _act_on(self, state: str, why: str, details: dict[str, Any]) -> asyncio.Task[BaseException | None]:
        """Run ``on_change`` for this change in a task of its own, once the change before was acted on.

        Not awaited by the election's loop: a takeover (an event saved, nginx adopted or started, the
        app workers started) can wait on a busy store or a slow nginx, and a loop that waited for it
        renewed nothing meanwhile, so the new leader's lease could lapse during its own takeover. The
        changes still run one at a time and in order. Returns the failure, if any (see _settle)."""
        before = self._last_change
        on_change = self._on_change
        assert on_change is not None

        async def act() -> BaseException | None:
            if before is not None and not before.done():
                await asyncio.wait([before])
            try:
                await on_change(state, why, details)
            except Exception as exc:
                return exc
            return None

        change = asyncio.get_running_loop().create_task(act(), name=f"leadership-change:{state}")
        self._last_change = change
        self._running_changes.add(change)
        change.add_done_callback(self._running_changes.discard)
        return change

    async def run(self) -> None:
        """Renew every TTL/3; when not leading, try again every TTL/3 (at most every second), when a
        peer's lease runs out, and at once when a peer releases or takes the lease (PostgreSQL)."""
        open_notices = getattr(self.store, "lease_notices", None)
        self._notices = open_notices() if open_notices is not None else None
        try:
            while True:
                for change in await self._step_once():
                    change.add_done_callback(_report_failed_change)
                await self._pause(self._next_step_in())
        except asyncio.CancelledError:
            # Stopped: a takeover or step-down still being acted on stops with it, as when this loop
            # awaited it (the engine closes what it would touch next).
            for change in list(self._running_changes):
                change.cancel()
            raise
        finally:
            if self._notices is not None:
                self._notices.close()
                self._notices = None

    async def _pause(self, seconds: float) -> None:
        if self._notices is None:
            await asyncio.sleep(seconds)
        elif await self._notices.wait(seconds):
            self.wakeups += 1

    async def beat(self) -> None:
        """Record this node's heartbeat once (a failure is logged: the next beat retries)."""
        try:
            await self._in_lane(
                self.store.nodes.heartbeat, self.node_id, self.hostname, self.api_url, self.node_retention
            )
        except StoreError as exc:
            log.warning("heartbeat failed: %s", exc)

    async def leave(self) -> None:
        """Remove this node's row on a clean quit: its id carries the pid, so no later run beats it."""
        try:
            await self._in_lane(self.store.nodes.remove, self.node_id)
        except StoreError as exc:
            log.warning("could not remove this node from the node list: %s", exc)

    async def advertise(self, api_url: str) -> None:
        """Where this node's API is served, "" when it is not: the node list and this node's lease say
        so, rather than the configured address, which another process may hold."""
        self.api_url = api_url
        async with self._lock:
            if self.state == LEADER and self.term is not None:
                try:
                    await self._in_lane(self.store.leases.set_api_url, self.term, self.node_id, api_url)
                except StoreError as exc:
                    log.warning("could not record this node's API address in its lease: %s", exc)
                if self.lease is not None and self.lease.term == self.term:
                    self.lease = replace(self.lease, api_url=api_url)
        await self.beat()

    async def heartbeat(self) -> None:
        """Beat every third of the TTL; the engine beats once itself before it starts this loop."""
        while True:
            await asyncio.sleep(max(1.0, self.ttl / 3))
            await self.beat()

    async def reclaim(self) -> bool:
        """Try for the lease now, even within this node's sit-out after stepping down; whether it leads.

        For an explicit request that needs a leader (stop every app) on a node that stepped down a moment
        ago: alone, it takes the next term at once; a peer that holds the lease keeps it (try_acquire
        takes only a released or expired lease)."""
        if not self.is_leader():
            self._hold_off_until = 0.0
            await self.step()
        return self.is_leader()

    async def _release_unheard_term(self) -> bool:
        """Release the newest term if it names this node although this node does not lead.

        Cancelling the election's loop (the engine's stop does, before it releases) does not stop the
        lease's thread: a try_acquire under way commits its term all the same, and the cancelled step
        never learns it won. Left alone, nobody would lead until that term ran out (the whole TTL)
        instead of a peer taking over at once. The node id is this node's, so the term is ours."""
        current, _now = await self._in_lane(self.store.leases.newest_and_now)
        if current is None or current.leader_id != self.node_id or current.released_at is not None:
            return False
        released = bool(await self._in_lane(self.store.leases.release, current.term, self.node_id))
        if released:
            log.info("released term %s, won by a step that was cancelled", current.term)
        return released

    async def release(self) -> bool:
        """Give the lease up (a clean stop, a step-down); returns once the step-down was acted on."""
        async with self._lock:
            if self.state != LEADER or self.term is None:
                return await self._release_unheard_term()
            self._changes = []
            released = await self._in_lane(self.store.leases.release, self.term, self.node_id)
            if released and self.lease is not None and self.lease.term == self.term:
                # Until the next step reads it back, the view must not name this node the leader: a
                # refusal meanwhile said "the leader is <this node>" (a client sent its writes back here).
                self.lease = replace(self.lease, released_at=time.time())
            # A step-down that the same node wins again moves nothing: stay out of the next election
            # for two of a follower's retry periods, so a live peer takes the term; alone, this node
            # takes it back after the pause.
            self._hold_off_until = time.monotonic() + 2 * self._follower_retry
            await self._set_state(FOLLOWER, "released the lease")
            changes, self._changes = self._changes, []
        await self._settle(changes)
        return bool(released)
