"""The cluster as an operator watches it: every controller, the current lease, and who led each term.

Built from the store (``cluster_nodes`` heartbeats, ``leader_lease`` rows, the cluster events that
mark a fenced term) plus each node's own ``/health`` (version, database reachability), asked over
HTTP with a short deadline so a dead or frozen peer costs at most ``PROBE_SECONDS``.  The decisions
(term end reasons, node states) are pure functions tested without a database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

PROBE_SECONDS = 0.8
HISTORY_TERMS = 8

# Why a term ended, as the lease rows and the cluster events tell it.
RELEASED = "released"  # the holder gave the lease up (clean stop, step-down)
EXPIRED = "expired"  # nobody renewed it in time (the holder died or lost the database)
FENCED = "fenced"  # the holder was alive but a successor had taken over: its renew was refused


@dataclass(frozen=True)
class NodeHealth:
    """What a node says about itself on ``/health`` (reachable False: it did not answer in time)."""

    reachable: bool
    version: str | None = None
    database: str | None = None  # "ok" | "error" | None when unknown
    is_leader: bool | None = None


def term_end(lease: Any, newer_exists: bool, fenced_terms: set[int], now: float) -> str | None:
    """Why ``lease`` (a leader_lease row) ended, or None while it is still the live lease."""
    if lease.released_at is not None:
        return RELEASED
    if lease.term in fenced_terms:
        return FENCED
    if newer_exists or lease.expires_at <= now:
        return EXPIRED
    return None


def term_history(leases: list[Any], fenced_terms: set[int], now: float) -> list[dict[str, Any]]:
    """Newest term first: who led, from when to when, and why it ended (None: still leading)."""
    ordered = sorted(leases, key=lambda lease: lease.term, reverse=True)
    rows: list[dict[str, Any]] = []
    for index, lease in enumerate(ordered):
        ended = term_end(lease, index > 0, fenced_terms, now)
        if ended == RELEASED:
            ended_at: float | None = lease.released_at
        elif ended is None:
            ended_at = None
        else:
            ended_at = min(lease.expires_at, now)
        rows.append(
            {
                "term": lease.term,
                "leader_id": lease.leader_id,
                "hostname": lease.hostname,
                "acquired_at": lease.acquired_at,
                "ended_at": ended_at,
                "ended": ended,
            }
        )
    return rows


def fenced_terms(cluster_events: Iterable[Any]) -> set[int]:
    """Terms whose holder recorded that a successor refused its renew (``details.term_ended``)."""
    found: set[int] = set()
    for event in cluster_events:
        details = event.details or {}
        if details.get("term_ended") == FENCED and isinstance(details.get("term"), int):
            found.add(details["term"])
    return found


def node_state(node_id: str, leader_id: str | None, fresh: bool, health: NodeHealth | None) -> str:
    """leader, follower, candidate (alive while nobody leads) or down (no heartbeat, no answer)."""
    alive = fresh or (health is not None and health.reachable)
    if not alive:
        return "down"
    if leader_id is not None and node_id == leader_id:
        return "leader"
    return "follower" if leader_id is not None else "candidate"


def node_rows(
    nodes: list[Any],
    leader_id: str | None,
    now: float,
    stale_after: float,
    health: Mapping[str, NodeHealth],
) -> list[dict[str, Any]]:
    rows = []
    for node in nodes:
        probe = health.get(node.node_id)
        age = max(0.0, now - node.last_heartbeat)
        fresh = age <= stale_after
        database = probe.database if probe is not None and probe.reachable else None
        if database is None:
            # A heartbeat is a database write: a fresh one proves the node reached the database.
            database = "ok" if fresh else "unknown"
        rows.append(
            {
                "node_id": node.node_id,
                "hostname": node.hostname,
                "api_url": node.api_url,
                "state": node_state(node.node_id, leader_id, fresh, probe),
                "last_heartbeat": node.last_heartbeat,
                "heartbeat_age": round(age, 3),
                "is_healthy": fresh,
                "reachable": bool(probe and probe.reachable),
                "database": database,
                "version": probe.version if probe else None,
            }
        )
    return rows


async def probe_health(urls: Mapping[str, str], timeout: float = PROBE_SECONDS) -> dict[str, NodeHealth]:
    """Each node's ``/health`` (node id → answer), all at once, each bounded by ``timeout``."""
    if not urls:
        return {}
    limit = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=limit) as session:

        async def one(node_id: str, url: str) -> NodeHealth:
            try:
                async with session.get(f"{url.rstrip('/')}/health") as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                return NodeHealth(reachable=False)
            if not isinstance(body, dict):
                return NodeHealth(reachable=False)
            answered_by = body.get("node_id")
            if answered_by is not None and answered_by != node_id:
                # Another controller serves the address this one left behind (same port after a quit
                # or restart): the node itself did not answer, so its answer proves nothing about it.
                return NodeHealth(reachable=False)
            database = body.get("database") or {}
            return NodeHealth(
                reachable=True,
                version=str(body.get("version") or "") or None,
                database=str(database.get("status") or "") or None if isinstance(database, dict) else None,
                is_leader=bool(body.get("is_leader")),
            )

        ids = [node_id for node_id, url in urls.items() if url]
        answers = await asyncio.gather(*(one(node_id, urls[node_id]) for node_id in ids))
        return dict(zip(ids, answers, strict=True))
