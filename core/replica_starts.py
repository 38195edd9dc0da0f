"""Starting replicas: a free port, the container request, create and start, and why a start failed
(a missing image or secret blocks the app; a port clash retries elsewhere; a name clash waits for the
relist).  Part of the Reconciler (mixed in), split out so each module has one job."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from core.container_requests import container_request, health_published_apart
from core.errors import (
    Conflict,
    ContainerStartError,
    ForeignContainer,
    ImageNotFound,
    RuntimeUnavailable,
    SecretError,
)
from core.reconciler_parts import ReconcilerParts
from core.replicas import AppState, Replica
from core.runtime.base import ContainerInfo, ContainerRequest, PublishedPortInUse
from core.spec import AppSpec
from core.timeline import PLANNED

log = logging.getLogger(__name__)

# Bridge mode: a replica's published port taken by another program is retried on this many ports in all.
PORT_CLASH_ATTEMPTS = 3


class ReplicaStarts(ReconcilerParts):
    async def _start_many(self, state: AppState, spec: AppSpec, slots: list[int]) -> int:
        if not slots:
            return 0
        # Gathered once per batch (every replica of every app: O(fleet)), then each start adds what it
        # is handed, so a scale by ten on a large fleet does not walk the fleet ten times.
        in_use = self._ports_in_use()
        # Warm-pool members first (core/warm_pool.py): only a start is left to do for them.  Not for a
        # slot replacing a crash: its back-off must go on counting there, not restart in a fresh slot.
        fresh = [slot for slot in slots if slot not in state.backoff]
        warm = self._take_warm(state, spec, len(fresh))
        cold = [slot for slot in slots if slot in state.backoff] + fresh[: len(fresh) - len(warm)]

        async def counted(slot: int, start: Awaitable[bool]) -> bool:
            try:
                return await start
            finally:
                state.starting.discard(slot)  # a failed start (a started one left at _register_started)

        state.starting.update([*(info.slot for info in warm), *cold])
        results = await asyncio.gather(
            *(counted(info.slot, self._start_warm(state, spec, info, in_use)) for info in warm),
            *(counted(slot, self._start_one(state, spec, slot, in_use)) for slot in cold),
            return_exceptions=True,
        )
        # A failed start fails the pass only once its siblings ended: a pass run meanwhile would list
        # as still created (warm pool) a container a sibling is starting, and start it again.
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        return sum(1 for ok in results if ok)

    def _ports_in_use(self) -> set[int]:
        replicas = [r for app in self.apps.values() for r in app.replicas.values()]
        warm = [w for app in self.apps.values() for w in app.warm.values()]
        creating = [ports for app in self.apps.values() for ports in app.warm_creating.values()]
        return (
            {r.port for r in replicas}
            | {r.health_port for r in replicas if r.health_port is not None}
            | {w.port for w in warm}
            | {w.health_port for w in warm if w.health_port is not None}
            | {port for pair in creating for port in pair if port is not None}
        )

    def _health_published_apart(self, spec: AppSpec) -> bool:
        return health_published_apart(spec, self.config.network_mode)

    def _request(
        self, state: AppState, spec: AppSpec, slot: int, port: int, health_port: int | None = None
    ) -> ContainerRequest:
        # The container hash the pass worked out once for this spec (a canonical dump and a SHA-256,
        # twice per request otherwise: ~0.25 ms of event loop per replica before its create is sent).
        cached = self._specs.get(state.name)
        known_hash = cached[2] if cached is not None and cached[1] is spec else None
        return container_request(
            state.name,
            spec,
            slot,
            port,
            health_port,
            self.config.network_mode,
            self.leadership.term,
            self.resolve_secret,
            state.proven_hashes,
            known_hash,
        )

    async def _start_one(self, state: AppState, spec: AppSpec, slot: int, in_use: set[int]) -> bool:
        """``in_use``: the ports of known replicas and of this batch's starts (this one adds its own)."""
        taken: set[int] = set()  # ports another program grabbed before Docker could publish them
        if self.timeline is not None:
            self.timeline.mark(f"{state.name}-{slot}", PLANNED)
        while True:
            port = self.ports.allocate(exclude=EitherSet(in_use, taken))
            in_use.add(port)
            try:
                info = await self._create_on(state, spec, slot, port, in_use)
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
        await self._register_started(state, spec, info)
        return True

    async def _register_started(self, state: AppState, spec: AppSpec, info: ContainerInfo) -> None:
        replica = Replica.of_container(info)
        state.replicas[info.id] = replica
        state.starting.discard(info.slot)
        self._track(replica, spec, state.name)
        await self.emit(
            "lifecycle",
            "replica_started",
            f"started replica {info.name} on {info.host}:{info.port}",
            app=state.name,
            details={"slot": info.slot, "container_id": info.id[:12], "port": info.port},
        )

    async def _create_on(
        self, state: AppState, spec: AppSpec, slot: int, port: int, in_use: set[int]
    ) -> ContainerInfo:
        health_port = None
        if self._health_published_apart(spec):
            # Not released when the replica stops: the allocator only steers clear of recent ports,
            # and a free-port check comes first on every hand-out.
            health_port = self.ports.allocate(exclude=in_use)
            in_use.add(health_port)
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


class EitherSet:
    """Membership in either of two sets, without copying them into one."""

    def __init__(self, first: set[int], second: set[int]) -> None:
        self._first = first
        self._second = second

    def __contains__(self, item: object) -> bool:
        return item in self._first or item in self._second
