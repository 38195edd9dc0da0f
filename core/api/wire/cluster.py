"""Cluster answers, served by both route families."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from core.api.wire.base import Json, NullableInteger, NullableNumber, NullableObject, Number, Wire

# --- cluster (both families) ---------------------------------------------------------------------------


class ClusterStatus(Wire):
    node_id: str
    hostname: str
    state: Literal["leader", "follower", "candidate"]
    term: int
    is_leader: bool
    leader_id: str | None
    cluster_size: int
    nodes: list[Json]
    lease: NullableObject
    election_status: str

    @classmethod
    def of(cls, status: dict[str, Any], node_id: str) -> ClusterStatus:
        """The engine's cluster view in the 1.0 shape; a lone node without clustering leads itself."""
        is_leader = bool(status.get("is_leader", False))
        nodes = status.get("nodes") or []
        return cls(
            node_id=str(status.get("node_id") or node_id),
            hostname=str(status.get("hostname") or ""),
            state=str(status.get("state") or ("leader" if is_leader else "follower")),  # type: ignore[arg-type]
            term=int(status.get("term") or 0),
            is_leader=is_leader,
            leader_id=status.get("leader_id"),
            cluster_size=int(status.get("cluster_size") or max(len(nodes), 1)),
            nodes=nodes,
            lease=status.get("lease"),
            election_status=str(status.get("election_status") or ""),
        )


class ClusterLeader(Wire):
    leader_id: str
    hostname: str
    api_url: str
    external_api_url: str
    term: int
    lease_expires_at: Number

    @classmethod
    def of(cls, status: dict[str, Any]) -> ClusterLeader | None:
        """``/cluster/leader``; None when no node holds a valid lease."""
        lease = status.get("lease")
        if not lease or not lease.get("leader_id"):
            return None
        api_url = lease.get("api_url") or ""
        return cls(
            leader_id=lease["leader_id"],
            hostname=lease.get("hostname") or "",
            api_url=api_url,
            external_api_url=lease.get("external_api_url") or api_url,
            term=int(lease.get("term") or 0),
            lease_expires_at=float(lease.get("expires_at") or 0.0),
        )


class ClusterHealth(Wire):
    status: Literal["healthy", "degraded"]
    clustering: Literal["enabled", "disabled"]
    node_id: str
    state: str
    is_leader: bool
    leader_id: str | None
    cluster_size: int
    cluster_ready: bool
    timestamp: Number
    version: str

    @classmethod
    def of(cls, status: dict[str, Any], node_id: str, version: str, now: float) -> ClusterHealth:
        view = ClusterStatus.of(status, node_id)
        ready = view.leader_id is not None
        return cls(
            status="healthy" if ready else "degraded",
            clustering="enabled" if view.cluster_size > 1 else "disabled",
            node_id=view.node_id,
            state=view.state,
            is_leader=view.is_leader,
            leader_id=view.leader_id,
            cluster_size=view.cluster_size,
            cluster_ready=ready,
            timestamp=now,
            version=version,
        )


class ControllerRow(Wire):
    node_id: str
    hostname: str
    api_url: str
    state: Literal["leader", "follower", "candidate", "down"]
    last_heartbeat: Number
    heartbeat_age: Number
    is_healthy: bool
    reachable: bool
    database: Literal["ok", "error", "unknown"]
    version: str | None


class TermRow(Wire):
    term: int
    leader_id: str
    hostname: str
    acquired_at: Number
    ended_at: NullableNumber
    ended: Literal["released", "expired", "fenced"] | None


class ClusterOverview(Wire):
    """Every controller (state, heartbeat age, database, version), the lease and the term history."""

    now: Number
    node_id: str
    term: NullableInteger
    leader_id: str | None
    lease: NullableObject = Field(
        description="the newest lease row; remaining = seconds left by the database clock"
    )
    nodes: list[ControllerRow]
    history: list[TermRow]


class LeadershipReleased(Wire):
    status: Literal["released"] = "released"
    node_id: str
