"""Stopping replicas: drain then stop (the spec's grace period, or a short one when forced), tear an
app down at once, and clear away containers that died on their own, counting crashes for back-off.
Part of the Reconciler (mixed in), split out so each module has one job."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from core.errors import (
    OrchestryError,
)
from core.models import (
    REPLICA_DRAINING,
)
from core.net.connections import wait_drained
from core.reconciler_parts import ReconcilerParts
from core.replicas import AppState, Replica
from core.runtime.base import STATE_PENDING, ContainerInfo
from core.spec import AppSpec

log = logging.getLogger(__name__)

FORCE_STOP_SECONDS = 2.0


class ReplicaStops(ReconcilerParts):
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
        if not after_outage:
            await self._docker_not_stopping()
        spec_changed = False
        for info in dead:
            replica = state.replicas.pop(info.id, None)
            self.health.untrack(info.id)
            if replica is not None and replica.ready:
                spec_changed = True
        if spec_changed:
            record = await self.store.read(self.store.apps.get, state.name)
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
                wait = max(0.0, entry.retry_at - self.clock.time())  # its logs took longer than the delay
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

    async def _docker_not_stopping(self) -> None:
        """RuntimeUnavailable when the engine no longer takes new connections: a death seen now is no
        crash.  A stopping dockerd (no live-restore) removes its socket first, then stops every
        container, and keeps answering for those seconds on the connections it already has: a listing
        over a kept one sees the replicas exited before any call failed, and each was counted a crash
        (restarts 1, back-off) instead of stopped with Docker.  The pass fails as in an outage, and the
        first one after Docker is back clears them as such (``_clear_stopped_with_docker``)."""
        await self.runtime.ping()

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
        # Failing its checks because dockerd is stopping it is no crash either; the stop below could
        # still succeed over a kept connection and count one.
        await self._docker_not_stopping()
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
                await self._unless_forced(
                    state, *(self.drained(r.port, self.config.drain_timeout, r.host) for r in victims)
                )
        grace = FORCE_STOP_SECONDS if force else float(spec.container.termination_grace_period_seconds)
        self._check_leader()
        await asyncio.gather(*(self._stop_one(state, r, grace) for r in victims))
        return len(victims)

    async def _unless_forced(self, state: AppState, *waiting: Awaitable[object]) -> None:
        """Wait for all of ``waiting`` (drains), or less: until a forced down of the app arrives."""

        async def all_of() -> None:
            # A task, not gather's future: cancelled, it leaves no unretrieved error behind.
            await asyncio.gather(*waiting)

        task = asyncio.ensure_future(all_of())
        forced = asyncio.ensure_future(state.forced.wait())
        try:
            await asyncio.wait({task, forced}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # its error, as when it was awaited alone
        finally:
            forced.cancel()
            task.cancel()

    async def _stop_container(self, state: AppState, container_id: str, grace: float) -> None:
        """Stop with ``grace``, cut short to FORCE_STOP_SECONDS when a forced down of the app arrives
        meanwhile: the operator who typed ``down --force`` during a plain down's grace period expects
        the replicas gone now, not when that grace ends."""
        if not getattr(self.runtime, "stop_cuts_short", False):
            await self.runtime.stop(container_id, timeout=grace)
            return
        if state.forced.is_set() and grace > FORCE_STOP_SECONDS:
            # The forced down came before this stop began (during the drain, say): as short from the start.
            grace = FORCE_STOP_SECONDS
            state.cut_short += 1
        if grace <= FORCE_STOP_SECONDS:
            await self.runtime.stop(container_id, timeout=grace)
            return
        stop = asyncio.ensure_future(self.runtime.stop(container_id, timeout=grace))
        forced = asyncio.ensure_future(state.forced.wait())
        try:
            await asyncio.wait({stop, forced}, return_when=asyncio.FIRST_COMPLETED)
            if not stop.done():
                # A second stop with the short grace supersedes the first: Docker signals again and
                # kills the container when the short grace runs out, and the first call returns as
                # soon as the container has exited, so this pass ends as a plain stop would.
                await self.runtime.stop(container_id, timeout=FORCE_STOP_SECONDS)
                state.cut_short += 1
            await stop
        finally:
            forced.cancel()
            stop.cancel()  # only when this was cancelled itself: the first stop is done otherwise

    async def _stop_one(self, state: AppState, replica: Replica, grace: float) -> None:
        try:
            await self._stop_container(state, replica.container_id, grace)
            await self.runtime.remove(replica.container_id, force=True)
        finally:
            state.replicas.pop(replica.container_id, None)
            state.stopping.discard(replica.container_id)
            self.ports.release(replica.port)
        # A runtime that could not stop it as soon as asked says why (Swarm: a node whose engine
        # Orchestry cannot reach, so a forced stop took the task's own grace period).
        note = getattr(self.runtime, "stop_notes", {}).pop(replica.container_id, "")
        await self.emit(
            "lifecycle",
            "replica_stopped",
            f"stopped replica {replica.name}" + (f" ({note})" if note else ""),
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
        await self._remove_pool(state)
        return len(victims)
