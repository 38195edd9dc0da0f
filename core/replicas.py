"""In-memory state the leader keeps per app: its replicas, crash back-off and why it is blocked."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from core.metrics import instruments
from core.models import (
    REPLICA_CRASHLOOP,
    REPLICA_DRAINING,
    REPLICA_FAILED,
    REPLICA_READY,
    REPLICA_STARTING,
    ReplicaView,
)
from core.runtime.base import ContainerInfo

# Crash back-off: 1, 2, 4, … seconds, capped; after this many crashes in a row a slot shows
# CrashLoopBackOff.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0
CRASHLOOP_AFTER = 3


@dataclass
class Replica:
    slot: int
    container_id: str
    name: str
    host: str
    port: int
    spec_hash: str
    state: str = REPLICA_STARTING
    ready: bool = False  # passed its health check
    ready_since: float = 0.0  # monotonic time it last turned ready (0: adopted ready, or never)
    stop_reported_at: float | None = None  # monotonic time Docker's events said it stopped
    routed: bool = False  # nginx serves a config that includes it (what users call "ready")
    draining: bool = False
    restart_requested: bool = False
    moving: bool = False  # its node is being drained: replaced together with the others there
    replace_reason: str = ""  # set when health decided this replica must be replaced
    reason: str = ""
    started_at: float = field(default_factory=time.time)
    container_port: int | None = None  # bridge mode: the port inside the container ``port`` publishes
    # Bridge mode, when healthCheck.port is another container port: where that one is published.
    health_port: int | None = None
    health_container_port: int | None = None

    @property
    def probe_address(self) -> tuple[int, int | None]:
        """(host port, container port behind it) the health check probes."""
        if self.health_port is not None:
            return self.health_port, self.health_container_port
        return self.port, self.container_port

    @classmethod
    def of_container(cls, info: ContainerInfo, state: str = REPLICA_STARTING, ready: bool = False) -> Replica:
        """The replica a container found by label (or just started) stands for."""
        return cls(
            slot=info.slot,
            container_id=info.id,
            name=info.name,
            host=info.host,
            port=info.port,
            spec_hash=info.spec_hash,
            state=state,
            ready=ready,
            started_at=info.started_at or time.time(),
            container_port=info.container_port,
            health_port=info.health_port,
            health_container_port=info.health_container_port,
        )

    def view(self, restarts: int = 0) -> ReplicaView:
        return ReplicaView(
            slot=self.slot,
            name=self.name,
            container_id=self.container_id,
            host=self.host,
            port=self.port,
            state=self.state,
            ready=self.ready and self.routed,
            restarts=restarts,
            started_at=self.started_at,
            reason=self.reason,
        )


@dataclass
class SlotBackoff:
    crashes: int
    retry_at: float  # epoch seconds
    reason: str

    @property
    def crashlooping(self) -> bool:
        return self.crashes >= CRASHLOOP_AFTER


def backoff_delay(crashes: int) -> float:
    # The first crash is replaced at once (a replica killed by an operator or the OOM killer should
    # come back now); repeated crashes back off 1, 2, 4, … seconds.
    if crashes <= 1:
        return 0.0
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (crashes - 2))


@dataclass
class ForceHold:
    """A forced down's hold on its app (Reconciler.forcing).  The stops it cut short were under way
    in an earlier pass (a plain down's), whose result counts them; the forced down counts them too,
    as it is what stopped them."""

    state: AppState
    cut_before: int

    @property
    def cut_short(self) -> int:
        return self.state.cut_short - self.cut_before


@dataclass
class AppState:
    name: str
    replicas: dict[str, Replica] = field(default_factory=dict)  # by container id
    backoff: dict[int, SlotBackoff] = field(default_factory=dict)  # by slot
    restarts: dict[int, int] = field(default_factory=dict)  # by slot, for display
    blocked: str = ""  # why no replica can be created (missing image, missing secret, bad command)
    stopping: set[str] = field(default_factory=set)  # container ids being drained/stopped by us
    routed_once: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    requested: int = 0  # number of the newest pass request (see Reconciler.reconcile_now)
    completed: int = 0  # every request up to this number has been served by a whole pass
    forced_through: int = 0  # newest request that asked for a forced stop
    cleared_through: int = 0  # newest request that asked to clear the app's containers
    force_holds: int = 0  # forced downs in progress (see Reconciler.forcing)
    # Set while force_holds > 0: a drain or a stop with the spec's grace already under way is cut short.
    forced: asyncio.Event = field(default_factory=asyncio.Event)
    cut_short: int = 0  # stops with the spec's grace that a forced down cut short, ever (see ForceHold)
    pass_done: asyncio.Condition = field(default_factory=asyncio.Condition)
    last_result: dict[str, int] = field(default_factory=dict)
    # Every pass's result added up (started, adopted, stopped, ...): what a command did is the change in
    # these from before its store write, as a pass already under way may be the one that acts on it.
    totals: Counter[str] = field(default_factory=Counter)
    last_error: str = ""
    proven_hashes: set[str] = field(default_factory=set)  # container specs that have run healthy here
    # Each slot's row as last written to the store this term (None: none written yet this term).
    persisted: dict[int, tuple[object, ...]] | None = None
    reported: tuple[str, str] | None = None  # the status and reason last saved and announced
    # Saves ``reported`` to the store until what it saved is the newest (StatusRecorder): one at a time.
    status_saver: asyncio.Task[None] | None = None
    # Replicas the runtime is still placing by itself (Swarm), by name → what holds them up ("" if nothing).
    pending: dict[str, str] = field(default_factory=dict)
    runtime_error: str = ""  # why the last pass could not reach Docker; "" once one did
    # A pass listed a replica running that Docker's events said had stopped: pass again at this time
    # (clock.time()), as Docker's list lags its events (see Reconciler._listing_lags_events).
    recheck_at: float | None = None
    # The warm pool (core/warm_pool.py): members by container id, creates in flight (slot → port and
    # health port), whether the runtime's pool was read, the refill task.
    warm: dict[str, ContainerInfo] = field(default_factory=dict)
    warm_creating: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    warm_loaded: bool = False
    warm_refill: asyncio.Task[None] | None = None
    warm_unsupported_said: bool = False
    # The last pass found the app stopped with nothing of it left, in the runtime or here: its worker
    # waits for a wake (a command, an event, the reconciler's relist of quiet apps) instead of passing
    # every relist_interval (see Reconciler._relist_quiet).
    quiet: bool = False
    # Slots a pass is starting a replica in (cold or from the warm pool) that is not in ``replicas`` yet.
    starting: set[int] = field(default_factory=set)

    def pool_slots(self) -> set[int]:
        """Slots held by the warm pool (members and creates in flight): no replica may be planned there."""
        return {w.slot for w in self.warm.values()} | set(self.warm_creating)

    def live(self) -> list[Replica]:
        return [r for r in self.replicas.values() if not r.draining]

    def ready_replicas(self) -> list[Replica]:
        return sorted((r for r in self.replicas.values() if r.ready and not r.draining), key=lambda r: r.slot)

    def serving(self) -> list[Replica]:
        """Ready replicas that nginx routes to right now."""
        return [r for r in self.ready_replicas() if r.routed]

    def record_crash(self, slot: int, reason: str, now: float) -> SlotBackoff:
        previous = self.backoff.get(slot)
        crashes = (previous.crashes if previous else 0) + 1
        entry = SlotBackoff(crashes=crashes, retry_at=now + backoff_delay(crashes), reason=reason)
        self.backoff[slot] = entry
        self.restarts[slot] = self.restarts.get(slot, 0) + 1
        instruments.REPLICA_RESTARTS.inc(app=self.name, slot=slot)
        return entry

    def waiting_slots(self, now: float) -> set[int]:
        return {slot for slot, b in self.backoff.items() if b.retry_at > now}

    def next_retry_in(self, now: float) -> float | None:
        pending = [b.retry_at - now for b in self.backoff.values() if b.retry_at > now]
        return min(pending) if pending else None

    def views(self, now: float) -> list[ReplicaView]:
        views = [r.view(self.restarts.get(r.slot, 0)) for r in self.replicas.values()]
        taken = {r.slot for r in self.replicas.values()}
        for slot, b in sorted(self.backoff.items()):
            if slot in taken or (b.retry_at <= now and not b.crashlooping):
                continue
            wait = max(0.0, b.retry_at - now)
            views.append(
                ReplicaView(
                    slot=slot,
                    name=f"{self.name}-{slot}",
                    container_id="",
                    host="",
                    port=0,
                    state=REPLICA_CRASHLOOP if b.crashlooping else REPLICA_FAILED,
                    ready=False,
                    restarts=self.restarts.get(slot, 0),
                    reason=f"{b.reason}; next attempt in {wait:.0f} s",
                )
            )
        return sorted(views, key=lambda v: v.slot)


__all__ = [
    "REPLICA_DRAINING",
    "REPLICA_READY",
    "AppState",
    "Replica",
    "SlotBackoff",
    "backoff_delay",
]
