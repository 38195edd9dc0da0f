"""What a health transition or a container's death does to a replica: ready → routed, unhealthy →
unrouted and replaced, never ready → replaced with the reason.  Part of the Reconciler (mixed in)."""

from __future__ import annotations

import logging

from core.health import NEVER_READY, READY, UNHEALTHY, ProbeTarget
from core.models import (
    APP_STOPPED,
    REPLICA_FAILED,
    REPLICA_READY,
    REPLICA_UNHEALTHY,
)
from core.reconciler_parts import ReconcilerParts

log = logging.getLogger(__name__)


class HealthReactions(ReconcilerParts):
    async def _on_health(self, target: ProbeTarget, transition: str, detail: str) -> None:
        state = self.apps.get(target.app)
        replica = state.replicas.get(target.container_id) if state else None
        if state is None or replica is None or replica.draining:
            return
        if transition == READY:
            state.proven_hashes.add(replica.spec_hash)
            replica.ready = True
            replica.ready_since = self.clock.monotonic()
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
        record = await self._record_of(target.app)
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
        if replica is not None:
            replica.stop_reported_at = self.clock.monotonic()
        if replica is not None and replica.ready and not replica.draining:
            replica.ready = False
            replica.state = REPLICA_FAILED
            await self.publish_current(app)
        state.wake.set()
