"""What this node does on its own, beside the operator's commands.

It follows its own leadership (takes nginx over and starts app workers when it wins a term, stands
by and forgets the replicas when it loses one), watches whether Docker answers (one event per outage,
not one per noticing component), feeds Docker's container events to the reconciler, keeps a worker
per stored app, and tells the metrics collector which replicas to sample.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from core.cluster import LEADER
from core.collaborators import Emit, Leadership
from core.errors import OrchestryError, RuntimeUnavailable
from core.lb.nginx import NginxController
from core.metrics.collector import MetricsCollector, ReplicaTarget
from core.reconciler import Reconciler
from core.runtime.base import EVENT_CHANGED, Runtime
from core.store import AppRecord, Store

log = logging.getLogger(__name__)

# Docker's container actions after which a replica is no longer running.
STOPPED_ACTIONS = frozenset({"die", "oom", "kill", "stop", "destroy"})
# While Docker answers, the watchdog pings this often; while it does not, it backs off up to the cap.
RUNTIME_PING_SECONDS = 5.0
RUNTIME_RETRY_CAP_SECONDS = 30.0


class NodeWatch:
    def __init__(
        self,
        node_id: str,
        store: Store,
        runtime: Runtime,
        nginx: NginxController,
        leadership: Leadership,
        reconciler: Reconciler,
        metrics: MetricsCollector,
        emit: Emit,
        relist_interval: float,
        app_records: Callable[[], Awaitable[list[AppRecord]]] | None = None,
    ) -> None:
        """``app_records``: every app's record, as the leader keeps them (KeptAppRecords.current: a
        read of the store only when they are out of date); None reads the store each time."""
        self._node_id = node_id
        self._store = store
        self._runtime = runtime
        self._nginx = nginx
        self._leadership = leadership
        self._reconciler = reconciler
        self._metrics = metrics
        self._emit = emit
        self._relist_interval = relist_interval
        self._app_records = app_records or self._read_app_records
        self.runtime_error = ""  # why Docker does not answer; "" while it does
        self.started = False  # set once the node is up: later failures are reported, not raised

    # --- leadership ---------------------------------------------------------------------------
    async def leadership_changed(self, state: str, why: str, details: dict[str, Any]) -> None:
        await self._emit(
            "cluster", f"became_{state}", f"node {self._node_id} is now {state}: {why}", details=details
        )
        if state != LEADER:
            await self._nginx.stand_by()
            self._reconciler.forget_all()
            return
        try:
            await self._nginx.activate()
        except OrchestryError as exc:
            if not self.started:
                raise  # start() fails with nginx's reason, as a lone node always did
            await self._emit(
                "error",
                "nginx_takeover_failed",
                f"node {self._node_id} leads but could not take over nginx ({exc}); its watchdog retries",
            )
        await self.ensure_workers()
        self._reconciler.wake_all()

    async def ensure_workers(self) -> None:
        # The kept records, not a store read: this runs every relist_interval / 3, and reading every
        # app (each spec's JSON decoded in a thread) was the idle engine's largest cost at 500 apps.
        # On the leader they are current (only it writes apps in its term; a new term reads again).
        for record in await self._app_records():
            self._reconciler.ensure_worker(record.name)

    async def _read_app_records(self) -> list[AppRecord]:
        return await self._store.read(self._store.apps.list)

    async def watch_apps(self) -> None:
        """Safety net: every app in the store has a worker (a new leader picks up apps a peer added)."""
        while True:
            await asyncio.sleep(max(1.0, self._relist_interval / 3))
            if self._leadership.is_leader():
                await self.ensure_workers()

    # --- Docker -------------------------------------------------------------------------------
    async def watch_runtime(self) -> None:
        """Keep trying an unreachable Docker engine with backoff and say so once, not in a loop."""
        delay = 1.0
        while True:
            try:
                await self._runtime.ping()
                await self.runtime_state("")
                delay = RUNTIME_PING_SECONDS
            except RuntimeUnavailable as exc:
                await self.runtime_state(str(exc))
                delay = min(RUNTIME_RETRY_CAP_SECONDS, delay * 2)
            await asyncio.sleep(delay)

    async def runtime_state(self, reason: str) -> None:
        """Docker does not answer (``reason``) or answers again (""), as found by the watchdog, the
        reconciler or the events stream: one event per transition, however many of them notice."""
        if reason:
            if not self.runtime_error:
                log.warning("Docker engine unreachable: %s", reason)
                self.runtime_error = reason
                await self._emit("error", "docker_unreachable", reason)
                self._reconciler.wake_all()  # each app's pass finds out and its status says why
            else:
                self.runtime_error = reason  # the same outage, perhaps worded differently
        elif self.runtime_error:
            self.runtime_error = ""
            log.info("Docker engine is reachable again")
            await self._emit("lifecycle", "docker_reachable", "Docker engine is reachable again")
            self._reconciler.wake_all()

    async def consume_runtime_events(self) -> None:
        async for event in self._runtime.events():
            if event.action == "reconnected":
                await self.runtime_state("")  # the stream reopened: Docker answers
                self._reconciler.wake_all()  # and events were missed: every app relists
                continue
            if event.app not in self._reconciler.apps:
                continue
            if event.action in STOPPED_ACTIONS:
                await self._reconciler.on_container_died(event.app, event.container_id)
            elif event.action == EVENT_CHANGED:
                self._reconciler.wake(event.app)  # e.g. Swarm replaced a task: the relist adopts it

    # --- metrics ------------------------------------------------------------------------------
    def replicas_changed(self, app: str) -> None:
        state = self._reconciler.apps.get(app)
        if state is None:
            self._metrics.forget(app)
            return
        self._metrics.set_targets(
            app,
            [
                ReplicaTarget(
                    slot=r.slot,
                    container_id=r.container_id,
                    host=r.host,
                    port=r.port,
                    ready=r.ready,
                    cpu_limit_millis=None,
                )
                for r in state.replicas.values()
                if not r.draining
            ],
        )
