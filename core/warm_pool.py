"""The warm pool (spec ``scaling.warmPool``): containers of an app created but not started, so a
scale-out only has to start them (AWS Auto Scaling's warm pools).  Part of the Reconciler (mixed in).

- A pool member is a container in Docker's ``created`` state carrying LABEL_WARM, for a slot no replica
  uses, its port already allocated.  ``list_managed`` leaves it out, so listings, adoption, replica
  views, metrics and nginx never see it; ``list_warm`` finds it, and a restarted controller adopts the
  pool on its first pass, whatever warmPool is: members beyond it (warmPool lowered, to 0 included,
  while no controller ran) are removed then, with one ``warm_pool_shrunk`` event.
- A scale-out takes pool members before creating anything: their slots and ports replace the planned
  ones (slots need not be contiguous, core/planner.py).
- The pool is refilled in the background once the app has no starting replica left, so the creates
  do not compete with the starts and probes of the scale-out they follow.
- A member of another container spec (image, env, command, resources) or network mode is removed and
  replaced; a stopped or deleted app has no pool.
- A runtime without the state "created but not started" (Swarm services) ignores warmPool and says so
  once per app in an event: refusing the spec would make one document valid on one runtime only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from core.errors import (
    ContainerStartError,
    ForeignContainer,
    ImageNotFound,
    OrchestryError,
    SecretError,
)
from core.reconciler_parts import ReconcilerParts
from core.replicas import AppState
from core.runtime.base import (
    LABEL_WARM,
    ContainerInfo,
    ContainerRequest,
    PublishedPortInUse,
    WarmPoolRuntime,
)
from core.shared_listing import SharedListing
from core.spec import AppSpec
from core.timeline import PLANNED

log = logging.getLogger(__name__)

# How long a refill waits for the replicas a scale-out started to become ready before it creates
# anyway (a replica that never turns healthy must not keep the pool empty for ever).
SETTLE_SECONDS = 30.0
_SETTLE_POLL = 0.05


def _warm(request: ContainerRequest) -> ContainerRequest:
    return replace(request, labels={**request.labels, LABEL_WARM: "true"})


class WarmPool(ReconcilerParts):
    # Pool listings shared by the passes that ask together (core/shared_listing.py); set by the
    # Reconciler from _list_warm_all.
    warm_listing: SharedListing

    def _warm_runtime(self) -> WarmPoolRuntime | None:
        runtime = self.runtime
        return runtime if callable(getattr(runtime, "create_warm", None)) else None  # type: ignore[return-value]

    async def _tend_pool(self, state: AppState, spec: AppSpec, stopped: bool) -> None:
        """Before planning: adopt the pool (first pass), drop members that no longer fit the spec."""
        size = 0 if stopped else spec.scaling.warm_pool_size
        runtime = self._warm_runtime()
        if runtime is None:
            if size and not state.warm_unsupported_said:
                state.warm_unsupported_said = True
                await self.emit(
                    "lifecycle",
                    "warm_pool_unsupported",
                    f"{state.name} asks for scaling.warmPool {size}, but this runtime cannot keep "
                    "containers created and not started (Swarm): the pool is ignored, scale-outs "
                    "create their replicas",
                    app=state.name,
                )
            return
        adopting = not state.warm_loaded
        if adopting:
            # Whatever the spec asks now: a pool left from before (warmPool lowered, to 0 included,
            # while no controller ran) is adopted to be cut down, not left until the app is deleted.
            state.warm = {info.id: info for info in await self._warm_members(runtime, state.name)}
            state.warm_loaded = True
        if not state.warm:
            return
        current = spec.container_hash()
        members = sorted(state.warm.values(), key=lambda w: w.slot)
        stale = [w for w in members if w.spec_hash != current or self._other_network_info(w)]
        fitting = [w for w in members if w not in stale]
        surplus = fitting[size:] + ([] if size else stale)  # removed for good, not replaced
        drop = stale + fitting[size:]
        if not drop:
            return
        await self._remove_warm(state, drop)
        if stale and size:
            await self.emit(
                "lifecycle",
                "warm_pool_replaced",
                f"the warm pool of {state.name} was made for another spec: removed {len(stale)} "
                "container(s), new ones follow",
                app=state.name,
            )
        if adopting and surplus and not stopped:
            await self.emit(
                "lifecycle",
                "warm_pool_shrunk",
                f"the warm pool of {state.name} had {len(members)} container(s) when this controller "
                f"took over, more than scaling.warmPool {size}: removed {len(surplus)}",
                app=state.name,
                details={"found": len(members), "warm_pool": size, "removed": len(surplus)},
            )

    async def _warm_members(self, runtime: WarmPoolRuntime, name: str) -> list[ContainerInfo]:
        """The app's pool in the runtime.  Every app's first pass of a term asks, pool or none: on a
        runtime whose list call is a round trip (Docker), passes asking together share one call."""
        if getattr(runtime, "shares_listing", False):
            return await self.warm_listing.of(name)
        return await runtime.list_warm(name)

    async def _list_warm_all(self, app: str | None) -> list[ContainerInfo]:
        """For ``warm_listing``: the runtime's pool members of ``app`` (None: of every app)."""
        runtime = self._warm_runtime()
        return await runtime.list_warm(app) if runtime is not None else []

    def _other_network_info(self, info: ContainerInfo) -> bool:
        return (info.container_port is not None) != (self.config.network_mode == "bridge")

    async def _remove_warm(self, state: AppState, members: list[ContainerInfo]) -> None:
        self._check_leader()
        for info in members:
            state.warm.pop(info.id, None)
        await asyncio.gather(*(self.runtime.remove(info.id, force=True) for info in members))
        for info in members:
            self._release_member_ports(info.port, info.health_port)

    def _release_member_ports(self, port: int, health_port: int | None) -> None:
        """A member's ports, both of them (bridge mode may publish the health port apart): a member
        that goes without handing them back leaves them steered clear of until the controller restarts."""
        self.ports.release(port)
        if health_port is not None:
            self.ports.release(health_port)

    async def _remove_pool(self, state: AppState) -> None:
        """The app is deleted or cleared: every pool member goes, known or not."""
        runtime = self._warm_runtime()
        if runtime is None:
            return
        refill = state.warm_refill
        if refill is not None:
            refill.cancel()
            # Its creates under way end first and join the pool (``_create_warm_members``): removed
            # with it below, instead of left behind by a delete.
            await asyncio.gather(refill, return_exceptions=True)
        found = {info.id: info for info in await runtime.list_warm(state.name)}
        await self._remove_warm(state, list({**state.warm, **found}.values()))
        state.warm_loaded = False

    def _take_warm(self, state: AppState, spec: AppSpec, count: int) -> list[ContainerInfo]:
        """Up to ``count`` pool members of the current spec, taken out of the pool."""
        if count <= 0 or not state.warm or self._warm_runtime() is None:
            return []
        current = spec.container_hash()
        fitting = sorted(
            (w for w in state.warm.values() if w.spec_hash == current and not self._other_network_info(w)),
            key=lambda w: w.slot,
        )[:count]
        for info in fitting:
            state.warm.pop(info.id, None)
        return fitting

    async def _start_warm(
        self, state: AppState, spec: AppSpec, info: ContainerInfo, in_use: set[int]
    ) -> bool:
        """Start pool member ``info`` as a replica; a member gone meanwhile is replaced by a cold start."""
        runtime = self._warm_runtime()
        assert runtime is not None
        if self.timeline is not None:
            self.timeline.mark(info.name, PLANNED)
        try:
            request = _warm(self._request(state, spec, info.slot, info.port, info.health_port))
            self._check_leader()
            started = await runtime.start_warm(info.id, request)
        except PublishedPortInUse:
            started = None  # the member is gone with its port: a cold start picks another
        except (ImageNotFound, ContainerStartError, SecretError, ForeignContainer) as exc:
            self._release_member_ports(info.port, info.health_port)
            await self._block(state, str(exc))
            return False
        except BaseException:
            # No answer (engine unreachable, leadership lost, cancelled): the member may or may not be
            # there still, started or not.  The next pass lists the pool again rather than forget it.
            state.warm_loaded = False
            raise
        if started is None:
            # The member is gone (removed behind our back, its network gone, its port taken): a cold
            # start takes its slot on ports of its own (``in_use`` still has the member's, so not these).
            self._release_member_ports(info.port, info.health_port)
            return await self._start_one(state, spec, info.slot, in_use)
        await self._register_started(state, spec, started)
        return True

    def _refill_pool_later(self, state: AppState, spec: AppSpec, stopped: bool) -> None:
        """After a pass: top the pool up in the background (see the module docstring)."""
        size = 0 if stopped else spec.scaling.warm_pool_size
        if not size or state.blocked or self._warm_runtime() is None:
            return
        if len(state.warm) + len(state.warm_creating) >= size:
            return
        if state.warm_refill is not None and not state.warm_refill.done():
            return
        state.warm_refill = asyncio.create_task(
            self._refill_pool(state, spec), name=f"warm-pool:{state.name}"
        )

    async def _refill_pool(self, state: AppState, spec: AppSpec) -> None:
        try:
            await self._until_settled(state)
            await self._create_warm_members(state, spec)
        except asyncio.CancelledError:
            raise
        except OrchestryError as exc:
            log.warning("refilling the warm pool of %s failed: %s", state.name, exc)
        except Exception:
            log.exception("refilling the warm pool of %s failed", state.name)

    async def _until_settled(self, state: AppState) -> None:
        for _ in range(int(SETTLE_SECONDS / _SETTLE_POLL)):
            if all(r.ready for r in state.live()):
                return
            await asyncio.sleep(_SETTLE_POLL)

    async def _create_warm_members(self, state: AppState, spec: AppSpec) -> None:
        runtime = self._warm_runtime()
        missing = spec.scaling.warm_pool_size - len(state.warm) - len(state.warm_creating)
        if runtime is None or missing <= 0 or state.blocked or not self.leadership.is_leader():
            return
        used = self._slots_taken(state)
        slots: list[int] = []
        candidate = 1
        while len(slots) < missing:
            if candidate not in used:
                slots.append(candidate)
            candidate += 1
        in_use = self._ports_in_use()
        requests: list[ContainerRequest] = []
        try:
            for slot in slots:
                port = self.ports.allocate(exclude=in_use)
                in_use.add(port)
                state.warm_creating[slot] = (port, None)
                health_port = None
                if self._health_published_apart(spec):
                    health_port = self.ports.allocate(exclude=in_use)
                    in_use.add(health_port)
                    state.warm_creating[slot] = (port, health_port)
                requests.append(_warm(self._request(state, spec, slot, port, health_port)))
            self._check_leader()
        except BaseException:
            # Nothing was created (ports ran out, a secret is missing, leadership lost): hand back what
            # this refill took.  A slot left here counted as a member being created for ever, so the
            # pool stayed short by one, and its ports stayed held.
            for slot in slots:
                taken = state.warm_creating.pop(slot, None)
                if taken is not None:
                    self._release_member_ports(*taken)
            raise
        creates = asyncio.gather(*(runtime.create_warm(r) for r in requests), return_exceptions=True)
        try:
            results = await asyncio.shield(creates)
        except asyncio.CancelledError:
            # Docker makes them all the same (its calls run in threads, which nothing cancels): once
            # made they join the pool, so whoever cancelled this removes them with it (``_remove_pool``
            # waits for this).  Dropped here, a member made after a delete's pass listed the pool
            # outlived the app, as no pass of a deleted app comes again.
            for request, result in zip(requests, await creates, strict=True):
                state.warm_creating.pop(request.slot, None)
                if isinstance(result, BaseException):
                    self._release_member_ports(request.host_port, request.health_host_port)
                else:
                    state.warm[result.id] = result
            raise
        current = spec.container_hash()
        for request, result in zip(requests, results, strict=True):
            state.warm_creating.pop(request.slot, None)
            if isinstance(result, BaseException):
                self._release_member_ports(request.host_port, request.health_host_port)
                log.warning("could not create a warm container for %s: %s", state.name, result)
                continue
            if result.spec_hash != current:
                await self._remove_warm(state, [result])
                continue
            state.warm[result.id] = result
        # A pass re-tends the pool at once: the app may have been stopped or changed while these were
        # being created.
        state.wake.set()

    def _slots_taken(self, state: AppState) -> set[int]:
        """Slots a new pool member must not use: replicas', back-off's, the pool's and runtime-pending."""
        return (
            {r.slot for r in state.replicas.values()}
            | set(state.backoff)
            | state.pool_slots()
            | {int(name.rsplit("-", 1)[-1]) for name in state.pending if name.rsplit("-", 1)[-1].isdigit()}
        )
