"""Nodes: what the operator sees of the machines that run replicas, and draining one without a drop.

``NodeService`` lists the runtime's nodes with this installation's CPU use on each (from the sampled
replica figures), watches them (node down/up, availability changed outside Orchestry → events), and
drains a node the zero-drop way: Swarm's own drain stops a node's tasks at once, so the node is first
set to ``pause`` (keeps what runs, takes nothing new), each of our replicas on it is marked for a
rolling replacement (the planner surges a new slot, which Swarm places elsewhere, waits until it is
ready and routed, then drains and stops the old one as a scale-in does), and only when none of ours is
left there does the node become ``drain`` (which moves whatever else runs on it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from core.clock import SYSTEM_CLOCK
from core.errors import OrchestryError
from core.metrics.collector import MetricsCollector
from core.reconciler import Reconciler
from core.runtime.base import NODE_ACTIVE, NODE_DRAIN, NODE_DRAINING, NodeInfo, Runtime

log = logging.getLogger(__name__)

Emit = Callable[..., Awaitable[Any]]

WATCH_SECONDS = 3.0
DRAIN_CHECK_SECONDS = 0.5
DRAIN_TIMEOUT_SECONDS = 300.0


@dataclass
class _Drain:
    node_id: str
    hostname: str
    address: str
    replicas: int
    started: float


@dataclass(frozen=True)
class DrainStarted:
    node: NodeInfo
    moving: int  # replicas of this installation being replaced elsewhere
    apps: list[str]


class NodeService:
    def __init__(
        self,
        runtime: Runtime,
        reconciler: Reconciler,
        metrics: MetricsCollector,
        emit: Emit,
        leads: Callable[[], bool],
        watch_seconds: float = WATCH_SECONDS,
        drain_timeout: float = DRAIN_TIMEOUT_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.reconciler = reconciler
        self.metrics = metrics
        self.emit = emit
        self.leads = leads
        self.watch_seconds = watch_seconds
        self.drain_timeout = drain_timeout
        self._known: dict[str, NodeInfo] = {}  # by id, as last seen
        self._drains: dict[str, _Drain] = {}
        self._drain_started = asyncio.Event()  # wakes the watch to follow a drain begun between polls

    # --- reading ---------------------------------------------------------------------------------
    async def list(self) -> list[NodeInfo]:
        nodes = await self.runtime.nodes()
        self._known = {n.id: n for n in nodes}
        return [self._with_use(n) for n in nodes]

    def hostname_of(self, address: str) -> str:
        """The node a replica reached at ``address`` runs on ('' when not known yet)."""
        for node in self._known.values():
            if node.address == address:
                return node.hostname
        return ""

    def _with_use(self, node: NodeInfo) -> NodeInfo:
        """The node with the CPU its replicas of this installation use (None when not measured)."""
        if node.unavailable_reason or node.state != "ready":
            return node
        total: float | None = None
        for name, state in self.reconciler.apps.items():
            latest = self.metrics.replica_metrics(name)
            for replica in state.replicas.values():
                sample = latest.get(replica.slot)
                if replica.host == node.address and sample is not None and sample.cpu_percent is not None:
                    total = (total or 0.0) + sample.cpu_percent
        if total is None and node.tasks == 0:
            total = 0.0
        return replace(node, cpu_percent=total)

    # --- changing --------------------------------------------------------------------------------
    async def drain(self, node_key: str) -> DrainStarted:
        # The runtime keeps the intent on the node (Swarm: paused and labelled), so a controller that
        # restarts or takes over the lease before the drain is done resumes it (see _poll).
        node = await self.runtime.set_node_availability(node_key, NODE_DRAINING)
        return await self._start_drain(node, resumed=False)

    async def _start_drain(self, node: NodeInfo, resumed: bool) -> DrainStarted:
        apps = self._mark_moving(node.address)
        count = sum(1 for s in self.reconciler.apps.values() for r in s.live() if r.host == node.address)
        self._drains[node.id] = _Drain(node.id, node.hostname, node.address, count, time.monotonic())
        self._drain_started.set()
        self._known[node.id] = node
        what = "resuming the drain of" if resumed else "draining"
        await self.emit(
            "cluster",
            "node_draining",
            f"{what} node {node.hostname}: {count} replica(s) of {len(apps)} app(s) move to other nodes "
            "first (new replicas ready and routed before the old ones stop)",
            details={"node": node.id, "hostname": node.hostname, "replicas": count, "apps": apps},
        )
        return DrainStarted(node=node, moving=count, apps=apps)

    def _mark_moving(self, address: str) -> list[str]:
        """Mark every live replica on the node for replacement elsewhere (again after a relist or an
        adoption brought new ones in); the apps concerned."""
        apps: list[str] = []
        for name, state in self.reconciler.apps.items():
            on_node = [r for r in state.live() if r.host == address]
            fresh = [r for r in on_node if not r.moving]
            for replica in fresh:
                replica.restart_requested = True
                replica.moving = True
            if on_node:
                apps.append(name)
            if fresh:
                self.reconciler.wake(name)
        return apps

    async def activate(self, node_key: str) -> NodeInfo:
        node = await self.runtime.set_node_availability(node_key, NODE_ACTIVE)
        self._drains.pop(node.id, None)
        self._known[node.id] = node
        await self.emit(
            "cluster",
            "node_activated",
            f"node {node.hostname} is active: it takes new replicas again",
            details={"node": node.id, "hostname": node.hostname},
        )
        return node

    def _left_on(self, address: str) -> int:
        return sum(1 for s in self.reconciler.apps.values() for r in s.replicas.values() if r.host == address)

    async def _finish_drains(self) -> None:
        # Until every app's worker has listed its replicas once (a controller that just took over),
        # "none left on the node" means "not known yet", not "all moved".
        listed = all(state.routed_once for state in self.reconciler.apps.values())
        for drain in list(self._drains.values()):
            self._mark_moving(drain.address)
            left = self._left_on(drain.address)
            waited = time.monotonic() - drain.started
            if (left or not listed) and waited < self.drain_timeout:
                continue
            self._drains.pop(drain.node_id, None)
            try:
                node = await self.runtime.set_node_availability(drain.node_id, NODE_DRAIN)
            except OrchestryError as exc:
                await self.emit(
                    "error", "node_drain_failed", f"node {drain.hostname} could not be set to drain: {exc}"
                )
                continue
            self._known[node.id] = node
            if left:
                await self.emit(
                    "error",
                    "node_drain_timeout",
                    f"node {drain.hostname}: {left} replica(s) were not replaced within {waited:.0f} s; "
                    "Swarm now moves them itself (requests to them may fail)",
                    details={"node": drain.node_id, "hostname": drain.hostname, "left": left},
                )
            else:
                await self.emit(
                    "cluster",
                    "node_drained",
                    f"node {drain.hostname} drained: {drain.replicas} replica(s) moved in {waited:.1f} s",
                    details={
                        "node": drain.node_id,
                        "hostname": drain.hostname,
                        "replicas": drain.replicas,
                        "seconds": round(waited, 2),
                    },
                )

    # --- watching --------------------------------------------------------------------------------
    async def watch(self) -> None:
        """Poll the nodes; say when one goes down or comes back, and finish drains."""
        next_poll = 0.0
        while True:
            self._drain_started.clear()
            leads = self.leads()
            if leads:
                if self._drains:
                    await self._finish_drains()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.watch_seconds
                    await self._poll()
            else:
                self._drains.clear()
            if self._drains:
                pause = DRAIN_CHECK_SECONDS
            elif leads:
                # Asleep until the next poll, not a third of the way there: two wakeups in three found
                # nothing to do.  A drain started meanwhile wakes the watch at once (it waited up to a
                # third of the period before).
                pause = max(0.0, next_poll - time.monotonic())
            else:
                pause = self.watch_seconds / 3  # a follower that takes the lease polls soon after
            await SYSTEM_CLOCK.wait(self._drain_started, pause)

    async def _poll(self) -> None:
        before = self._known
        try:
            nodes = await self.runtime.nodes()
        except OrchestryError as exc:
            log.debug("listing nodes failed: %s", exc)
            return
        self._known = {n.id: n for n in nodes}
        for node in nodes:
            if node.availability == NODE_DRAINING and node.id not in self._drains:
                await self._start_drain(node, resumed=True)  # a drain a previous leader did not finish
        if not before:
            return  # the first look is the baseline, not news
        gone = {node_id: old for node_id, old in before.items() if node_id not in self._known}
        for node in nodes:
            old = before.get(node.id) or _same_node_named_now(gone, node)
            if old is None:
                await self._node_event("node_joined", f"node {node.hostname} ({node.address}) joined", node)
            elif old.state != node.state and node.state == "ready":
                await self._node_event("node_up", f"node {node.hostname} is ready again", node)
            elif old.state == "ready" and node.state != "ready":
                await self._node_event(
                    "node_down",
                    f"node {node.hostname} is {node.state}: its replicas leave the upstream and are "
                    "replaced on the other nodes",
                    node,
                )
            elif old.availability != node.availability and node.id not in self._drains:
                await self._node_event(
                    "node_availability", f"node {node.hostname} is now {node.availability}", node
                )
        for old in gone.values():
            await self._node_event("node_left", f"node {old.hostname} left", old)

    async def _node_event(self, kind: str, message: str, node: NodeInfo) -> None:
        await self.emit(
            "cluster",
            kind,
            message,
            details={"node": node.id, "hostname": node.hostname, "state": node.state,
                     "availability": node.availability},
        )  # fmt: skip


def _same_node_named_now(gone: dict[str, NodeInfo], node: NodeInfo) -> NodeInfo | None:
    """The node that left, at the address ``node`` joined at and down when last seen: the same machine
    under the identity it answers with now (a single Docker host whose engine has not answered yet is
    listed down under a placeholder id), not one leaving as another joins.  Taken out of ``gone``."""
    for node_id, old in gone.items():
        if old.address == node.address and old.state != "ready":
            return gone.pop(node_id)
    return None
