"""This node as others see it: health, cluster membership and leadership, totals across apps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from core import __version__
from core.cluster import LEADER, LeaseElection
from core.cluster_overview import (
    HISTORY_TERMS,
    NodeHealth,
    fenced_terms,
    node_rows,
    probe_health,
    term_history,
)
from core.coalesce import Coalescer
from core.errors import OrchestryError
from core.models import APP_RUNNING, AppView
from core.store import Store

# /health waits at most this long for the database.
DATABASE_CHECK_SECONDS = 2.0
# The term history is read again at least this often even when the term did not change.
HISTORY_REREAD_SECONDS = 15.0
# A node whose heartbeat is older than max(this, the lease TTL) counts as unhealthy.
MIN_STALE_SECONDS = 3.0


class SharedPing:
    """The database check of ``/health``, shared by the requests that ask together.

    Load balancers and dashboards probe ``/health`` many times a second; each probe's own ping (a
    thread hop, a pooled connection, ``SELECT 1``) cost ~1 ms of CPU on a busy host, most of a
    probe's cost.  Requests now share pings without trading freshness: a caller only takes the
    outcome of a ping that STARTED after it asked (one in flight may have been sent before the
    database failed), so at most one ping is in flight and one more gathers callers.  A ping that
    hangs holds the next one back at most ``DATABASE_CHECK_SECONDS`` (each caller still gives up
    after that): a hung database costs one stuck thread per check period, not one per probe.  The
    gathering is core/coalesce.py's."""

    def __init__(
        self, ping: Callable[[], None], run: Callable[[Callable[[], None]], Awaitable[None]] | None = None
    ) -> None:
        """``run``: where the blocking ``ping`` runs (the store's read lane); the default pool if None."""
        self._ping = ping
        self._run = run or asyncio.to_thread
        self._shared: Coalescer[None, None] = Coalescer(
            self._send, lambda: None, name="database-ping", hold_back=DATABASE_CHECK_SECONDS
        )

    @property
    def pings(self) -> int:
        """Pings sent (for tests and benches)."""
        return self._shared.calls

    async def check(self) -> None:
        """Raise what the database's ping raised, for a ping sent after this call."""
        await self._shared.join()

    async def _send(self, _: None) -> None:
        await self._run(self._ping)


class NodeStatus:
    def __init__(
        self,
        store: Store,
        cluster: LeaseElection,
        runtime_error: Callable[[], str],
        list_apps: Callable[[], Awaitable[list[AppView]]],
        nginx_status: Callable[[], dict[str, Any]],
    ) -> None:
        self._store = store
        self._cluster = cluster
        self._runtime_error = runtime_error
        self._list_apps = list_apps
        self._nginx_status = nginx_status
        self._history: tuple[Any, float, list[dict[str, Any]]] | None = None
        self.ping = SharedPing(store.ping, store.read)

    async def health(self) -> dict[str, Any]:
        """Fast: never waits on Docker.  The database check is bounded by a short timeout."""
        database: dict[str, Any] = {"status": "ok"}
        try:
            # asyncio.timeout, not wait_for: no task of its own for each probe.
            async with asyncio.timeout(DATABASE_CHECK_SECONDS):
                await self.ping.check()
        except (OrchestryError, TimeoutError) as exc:
            database = {"status": "error", "detail": str(exc) or "database did not answer within 2 s"}
        runtime_error = self._runtime_error()
        return {
            "status": "healthy" if database["status"] == "ok" else "degraded",
            "timestamp": time.time(),
            "version": __version__,
            "database": database,
            "node_id": self._cluster.node_id,
            "is_leader": self._cluster.is_leader(),
            "docker": {"status": "error", "detail": runtime_error} if runtime_error else {"status": "ok"},
        }

    async def cluster_status(self) -> dict[str, Any]:
        cluster = self._cluster
        nodes = await self._store.read(self._store.nodes.list)
        now = await self._store.read(self._store.now)
        stale_after = max(MIN_STALE_SECONDS, cluster.ttl)
        leader_id = cluster.leader_id
        lease = cluster.lease
        node_rows = [
            {
                "node_id": n.node_id,
                "hostname": n.hostname,
                "api_url": n.api_url,
                "state": _node_state(n.node_id == leader_id, now - n.last_heartbeat <= stale_after),
                "last_heartbeat": n.last_heartbeat,
                "is_healthy": now - n.last_heartbeat <= stale_after,
            }
            for n in nodes
        ]
        healthy = [n for n in node_rows if n["is_healthy"]]
        return {
            "node_id": cluster.node_id,
            "hostname": cluster.hostname,
            "state": cluster.state if cluster.state != LEADER or cluster.is_leader() else "candidate",
            "term": lease.term if lease else cluster.term,
            "is_leader": cluster.is_leader(),
            "leader_id": leader_id,
            "cluster_size": max(1, len(healthy)),
            "nodes": node_rows,
            "lease": None
            if lease is None
            else {
                "leader_id": lease.leader_id,
                "term": lease.term,
                "acquired_at": lease.acquired_at,
                "expires_at": lease.expires_at,
                "renewed_at": lease.renewed_at,
                "hostname": lease.hostname,
                "api_url": lease.api_url,
            },
            "election_status": cluster.last_error
            or ("leading" if cluster.is_leader() else f"following {leader_id}" if leader_id else "no leader"),
            "clustering": "enabled" if len(node_rows) > 1 else "disabled",
            "api_url": cluster.api_url,
        }

    async def cluster_overview(self, history: int = HISTORY_TERMS, probe: bool = True) -> dict[str, Any]:
        """Every controller (state, heartbeat age, database, version), the lease and the term history.

        Peers are asked for their ``/health`` (``probe``), each bounded by a short deadline."""
        cluster = self._cluster
        store = self._store
        nodes, now = await asyncio.gather(store.read(store.nodes.list), store.read(store.now))
        peers = {n.node_id: n.api_url for n in nodes if n.node_id != cluster.node_id}
        health = await probe_health(peers) if probe else {}
        # This node's own database reachability is its last lease step's: no extra query.
        health[cluster.node_id] = NodeHealth(
            reachable=True,
            version=__version__,
            database="error" if cluster.last_error else "ok",
            is_leader=cluster.is_leader(),
        )
        leader_id = cluster.leader_id
        lease = cluster.lease
        live = lease is not None and lease.released_at is None and lease.expires_at > now
        return {
            "now": now,
            "node_id": cluster.node_id,
            "term": lease.term if lease else cluster.term,
            "leader_id": leader_id,
            "lease": None
            if lease is None
            else {
                "leader_id": lease.leader_id,
                "term": lease.term,
                "acquired_at": lease.acquired_at,
                "renewed_at": lease.renewed_at,
                "expires_at": lease.expires_at,
                "remaining": round(max(0.0, lease.expires_at - now), 3) if live else 0.0,
                "ttl": cluster.ttl,
            },
            "nodes": node_rows(nodes, leader_id, now, max(MIN_STALE_SECONDS, cluster.ttl), health),
            "history": await self._term_history(history, now, live),
        }

    async def _term_history(self, terms: int, now: float, live: bool) -> list[dict[str, Any]]:
        """Read again only when the term or its liveness changed, or after HISTORY_REREAD_SECONDS (a
        fenced holder records its end after waking): a console refreshing every 2 s costs no query."""
        lease = self._cluster.lease
        key = (lease.term if lease else None, live, terms)
        cached = self._history
        if cached is not None and cached[0] == key and time.monotonic() - cached[1] < HISTORY_REREAD_SECONDS:
            return cached[2]
        store = self._store
        leases, events = await asyncio.gather(
            store.read(store.leases.history, terms),
            store.read(store.events.query, None, "cluster", None, 200),
        )
        rows = term_history(leases, fenced_terms(events), now)
        self._history = (key, time.monotonic(), rows)
        return rows

    async def cluster_metrics(self) -> dict[str, Any]:
        views = await self._list_apps()
        replicas = [rep for v in views for rep in v.replicas if rep.container_id]
        return {
            "timestamp": time.time(),
            "apps": {"total": len(views), "running": sum(1 for v in views if v.status == APP_RUNNING)},
            "instances": {
                "total": len(replicas),
                "healthy": sum(1 for r in replicas if r.ready),
                "unhealthy": sum(1 for r in replicas if not r.ready),
            },
            "nginx": self._nginx_status(),
        }


def _node_state(leads: bool, fresh: bool) -> str:
    """A node whose heartbeat went stale is down (killed, frozen, cut off from the database), as the
    cluster overview says, rather than a "follower" that nobody could reach; a killed lease holder
    whose lease has not run out yet is down too (it acts no more)."""
    if not fresh:
        return "down"
    return "leader" if leads else "follower"
