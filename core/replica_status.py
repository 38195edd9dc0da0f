"""An app's status from its live replicas, and what the leader saves of it: the status (announced
once per change) and the replicas, mirrored so followers and the next leader can show them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.clock import Clock
from core.collaborators import Emit
from core.errors import NotFound, OrchestryError
from core.models import (
    APP_DEGRADED,
    APP_ERROR,
    APP_RUNNING,
    APP_SCALED_TO_ZERO,
    APP_STOPPED,
    REPLICA_DRAINING,
    REPLICA_READY,
)
from core.replicas import AppState
from core.store import InstanceRecord

log = logging.getLogger(__name__)


def compute_status(state: AppState, record: Any, desired: int, now: float) -> tuple[str, str]:
    """The app's status and its reason from the live replicas (leader only)."""
    if record.status == APP_STOPPED:
        return APP_STOPPED, "stopped by the operator" if not state.replicas else "stopping"
    if state.blocked:
        return APP_ERROR, state.blocked
    ready = len(state.serving())
    if desired == 0:
        # "running" (API.md's word for it) with "0/0 replicas ready" read as a fault: say what it is.
        reason = (
            f"{APP_SCALED_TO_ZERO}: no replica is wanted, so nothing serves its traffic; scale it up to serve"
        )
        if state.runtime_error:
            reason += f"; nothing can change until Docker answers: {state.runtime_error}"
        return APP_RUNNING, reason
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
        for v in state.views(now)
        if not v.ready and v.state != REPLICA_DRAINING
    ]
    reason = f"{ready}/{desired} replicas ready"
    if state.runtime_error:
        reason += f"; {state.runtime_error}"
    if problems:
        reason += "; " + "; ".join(problems[:3])
    return APP_DEGRADED, reason


def status_sentence(name: str, status: str, reason: str) -> str:
    """An announced status in plain words: "ghost is error" says nothing a person can act on."""
    if status == APP_ERROR:
        return f"{name} cannot start its replicas: {reason}"
    return f"{name} is {status}: {reason}"


class StatusRecorder:
    def __init__(self, store: Any, emit: Emit, clock: Clock) -> None:
        self._store = store
        self._emit = emit
        self._clock = clock
        self._savers: set[asyncio.Task[None]] = set()

    async def update(self, state: AppState, record: Any, desired: int) -> None:
        """Announce and save a changed status (each change once, however many notice it)."""
        status, reason = compute_status(state, record, desired, self._clock.time())
        if record.status == APP_STOPPED:
            state.reported = (APP_STOPPED, "")
            return
        # Transitions race (two replicas turning ready at once read the same record): the in-memory
        # last report decides, so each change is said once.
        if (status, reason) != state.reported:
            previous = state.reported[0] if state.reported else record.status
            state.reported = (status, reason)
            if status != previous:
                await self._emit(
                    "lifecycle",
                    "status_changed",
                    status_sentence(state.name, status, reason),
                    app=state.name,
                    details={"from": previous, "to": status},
                )
            # One save of the app at a time, always the newest status: two saves (a pass's and a health
            # check's) on the store's two write threads could commit in either order, and one whose
            # caller was cancelled (the probe of a replica being replaced) still lands.  Followers and
            # the next leader then showed the older status until the next change (a replaced
            # replica's app stayed "degraded" there).  Shielded: the newest is saved even when this
            # caller is cancelled.
            saver = state.status_saver
            if saver is None or saver.done():
                saver = state.status_saver = asyncio.ensure_future(self._save_newest(state))
                self._savers.add(saver)
                saver.add_done_callback(self._savers.discard)
            await asyncio.shield(saver)

    async def _save_newest(self, state: AppState) -> None:
        saved: tuple[str, str] | None = None
        while (wanted := state.reported) != saved and wanted is not None and wanted[0] != APP_STOPPED:
            try:
                await self._store.write(self._save_status, state.name, *wanted)
            except OrchestryError as exc:
                log.warning("could not save status of %s: %s", state.name, exc)
                return  # the next change saves again
            saved = wanted

    async def close(self) -> None:
        """Stop the saves still under way (the engine stops)."""
        for saver in list(self._savers):
            saver.cancel()
        await asyncio.gather(*self._savers, return_exceptions=True)

    def _save_status(self, name: str, status: str, reason: str) -> None:
        """Save a computed status unless the operator stopped or deleted the app meanwhile.

        The status was computed from a record read earlier; writing it over a ``down`` that landed in
        between would bring a stopped app back to life on the next pass, so the store checks and
        writes in one statement.
        """
        self._store.apps.save_status(name, status, reason)

    async def persist_instances(self, state: AppState) -> None:
        """Mirror the replicas into the store so followers and the next leader can show them.

        Only the rows that changed since the last write (all of them the first time in a term): each
        row is a transaction, and a scale-out's passes each saw one or two replicas turn ready and
        rewrote all ten, on a host whose CPU Docker is starting the rest with."""
        views = state.views(self._clock.time())
        rows = {
            v.slot: (v.container_id, v.state, v.ready, v.restarts, v.reason.split("; next attempt")[0])
            for v in views
        }
        written = state.persisted
        if rows == written:
            return  # nothing a reader could notice changed since the last write
        changed = [v for v in views if written is None or written.get(v.slot) != rows[v.slot]]

        def write() -> None:
            if written is None:
                gone = {rec.slot for rec in self._store.instances.list(state.name)} - set(rows)
            else:
                gone = set(written) - set(rows)
            for view in changed:
                self._store.instances.upsert(
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
            for slot in gone:
                self._store.instances.delete(state.name, slot)

        try:
            await self._store.write(write)
            state.persisted = rows
        except NotFound:
            pass  # the app was deleted while this pass ran
        except OrchestryError as exc:
            log.warning("could not save the replicas of %s: %s", state.name, exc)
