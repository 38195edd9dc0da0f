"""Turn ``core.models`` objects into the JSON shapes of API.md.

The ``legacy_*`` functions produce the Orchestry 1.0 wire format (keys, types, epoch-float times,
12-character container ids, newest-first lists) that existing clients parse; the ``v1_*`` functions
produce the documented ``/api/v1`` shapes.  All are pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.models import (
    AppView,
    Event,
    RegisterPreview,
    ReplicaView,
    RolloutView,
    ScaleResult,
    ScalingRecord,
    UpResult,
)
from core.nodes import DrainStarted
from core.runtime.base import LogLine, NodeInfo
from core.services.app_views import CHART_METRICS

__all__ = ["CHART_METRICS"]

SHORT_ID = 12


def short_id(container_id: str) -> str:
    return container_id[:SHORT_ID]


def _percent(value: float | None) -> float:
    # 1.0 clients expect a number here; "not measured yet" reads as 0.0 there.
    return float(value) if value is not None else 0.0


# --- Orchestry 1.0 shapes -------------------------------------------------------------------------


def legacy_instance(replica: ReplicaView) -> dict[str, Any]:
    return {
        "container_id": short_id(replica.container_id),
        "ip": replica.host,
        "port": replica.port,
        "state": replica.state,
        "cpu_percent": _percent(replica.cpu_percent),
        "memory_percent": _percent(replica.memory_percent),
        "failures": replica.failures,
    }


def legacy_status(app: AppView) -> dict[str, Any]:
    return {
        "app": app.name,
        "status": app.status,
        "replicas": app.desired_replicas,
        "ready_replicas": app.ready_replicas,
        "instances": [legacy_instance(r) for r in app.replicas],
        "mode": app.mode,
    }


def legacy_parsed(app: AppView) -> dict[str, Any]:
    return {
        "name": app.name,
        "spec": app.spec,
        "status": app.status,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
        "replicas": app.desired_replicas,
        "last_scaled_at": app.last_scaled_at,
        "mode": app.mode,
    }


def legacy_app_summary(app: AppView) -> dict[str, Any]:
    summary = legacy_parsed(app)
    summary["ready_replicas"] = app.ready_replicas
    return summary


def legacy_raw(app: AppView) -> dict[str, Any]:
    return {"name": app.name, "raw": app.raw, "parsed": legacy_parsed(app)}


def legacy_registered(name: str) -> dict[str, Any]:
    return {"status": "registered", "app": name, "message": "Application registered successfully"}


def legacy_up(result: UpResult) -> dict[str, Any]:
    return {
        "status": "started",
        "app": result.app,
        "replicas": result.replicas,
        "adopted": result.adopted,
        "started": result.started,
    }


def legacy_down(name: str, stopped: int) -> dict[str, Any]:
    return {"status": "stopped", "app": name, "containers_stopped": stopped}


def legacy_deleted(name: str) -> dict[str, Any]:
    return {"status": "deleted", "app": name, "message": f"Application {name} deleted"}


def legacy_scaled(result: ScaleResult) -> dict[str, Any]:
    return {"status": result.status, "app": result.app, "replicas": result.replicas}


def legacy_policy(name: str, policy: dict[str, Any]) -> dict[str, Any]:
    return {"status": "updated", "app": name, "policy": policy}


def legacy_log(line: LogLine) -> dict[str, Any]:
    return {
        "timestamp": line.timestamp,
        "container": short_id(line.container_id),
        "container_full": line.container_id,
        "message": line.message,
    }


def legacy_logs(name: str, total_containers: int, lines: Iterable[LogLine]) -> dict[str, Any]:
    newest_first = sorted(lines, key=lambda line: line.timestamp, reverse=True)
    return {"app": name, "total_containers": total_containers, "logs": [legacy_log(x) for x in newest_first]}


def legacy_event(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "app_name": event.app,
        "event_type": event.category,
        "message": event.message,
        "timestamp": event.timestamp,
        "details": event.details,
    }


def legacy_events(events: Iterable[Event]) -> dict[str, Any]:
    newest_first = sorted(events, key=lambda e: (e.timestamp, e.id), reverse=True)
    return {"events": [legacy_event(e) for e in newest_first]}


def legacy_scaling_record(record: ScalingRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "app_name": record.app,
        "from_replicas": record.from_replicas,
        "to_replicas": record.to_replicas,
        "trigger_reason": record.reason,
        "metrics_snapshot": record.metrics,
        "timestamp": record.timestamp,
    }


CURRENT_METRIC_KEYS = (
    "rps",
    "p95_latency_ms",
    "active_connections",
    "cpu_percent",
    "memory_percent",
    "healthy_replicas",
    "total_replicas",
)


def current_metrics(current: dict[str, Any] | None) -> dict[str, Any]:
    """The seven headline figures, always present (0 when not measured yet) so clients can rely on them."""
    current = current or {}
    figures: dict[str, Any] = {}
    for key in CURRENT_METRIC_KEYS:
        value = current.get(key)
        if key.endswith("replicas") or key == "active_connections":
            figures[key] = int(value or 0)
        else:
            figures[key] = float(value or 0.0)
    return figures


def legacy_app_metrics(
    name: str, metrics: dict[str, Any], history: Iterable[ScalingRecord]
) -> dict[str, Any]:
    newest_first = sorted(history, key=lambda r: (r.timestamp, r.id), reverse=True)
    return {
        "app": name,
        "metrics": {
            "metrics": current_metrics(metrics.get("current")),
            "scale_factors": metrics.get("scale_factors") or {},
            "policy": metrics.get("policy") or {},
        },
        "scaling_history": [legacy_scaling_record(r) for r in newest_first],
    }


# --- /api/v1 shapes -------------------------------------------------------------------------------


def v1_replica(replica: ReplicaView) -> dict[str, Any]:
    return {
        "slot": replica.slot,
        "name": replica.name,
        "container_id": short_id(replica.container_id),
        "host": replica.host,
        "port": replica.port,
        "state": replica.state,
        "ready": replica.ready,
        "failures": replica.failures,
        "restarts": replica.restarts,
        "cpu_percent": replica.cpu_percent,
        "memory_percent": replica.memory_percent,
        "started_at": replica.started_at,
        "reason": replica.reason,
        "node": replica.node,
        "figures_reason": replica.figures_reason,
    }


def v1_node(node: NodeInfo) -> dict[str, Any]:
    return {
        "id": node.id,
        "hostname": node.hostname,
        "address": node.address,
        "role": node.role,
        "state": node.state,
        "availability": node.availability,
        "leader": node.leader,
        "tasks": node.tasks,
        "engine_version": node.engine_version,
        "cpu_cores": node.cpu_cores,
        "memory_bytes": node.memory_bytes,
        "cpu_reserved_cores": node.cpu_reserved_cores,
        "memory_reserved_bytes": node.memory_reserved_bytes,
        "cpu_percent": node.cpu_percent,
        "reason": node.unavailable_reason or None,
    }


def v1_drain_started(started: DrainStarted) -> dict[str, Any]:
    return {"node": v1_node(started.node), "moving": started.moving, "apps": started.apps}


def v1_app_summary(app: AppView) -> dict[str, Any]:
    return {
        "name": app.name,
        "status": app.status,
        "status_reason": app.status_reason,
        "mode": app.mode,
        "desired_replicas": app.desired_replicas,
        "ready_replicas": app.ready_replicas,
        "image": str(app.spec.get("spec", {}).get("image") or app.spec.get("image") or ""),
        "created_at": app.created_at,
        "updated_at": app.updated_at,
        "last_scaled_at": app.last_scaled_at,
    }


def v1_app(app: AppView) -> dict[str, Any]:
    described = v1_app_summary(app)
    described.update(
        {
            "labels": app.labels,
            "policy": app.policy,
            "spec": app.spec,
            "raw": app.raw,
            "replicas": [v1_replica(r) for r in app.replicas],
        }
    )
    return described


def v1_event(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "app": event.app,
        "category": event.category,
        "kind": event.kind,
        "message": event.message,
        "details": event.details,
        "timestamp": event.timestamp,
    }


def v1_events(events: Iterable[Event]) -> dict[str, Any]:
    newest_first = sorted(events, key=lambda e: (e.timestamp, e.id), reverse=True)
    return {"events": [v1_event(e) for e in newest_first]}


def v1_log(line: LogLine) -> dict[str, Any]:
    return {
        "timestamp": line.timestamp,
        "container_id": short_id(line.container_id),
        "replica": line.replica,
        "stream": line.stream,
        "message": line.message,
    }


def v1_logs(name: str, lines: Iterable[LogLine]) -> dict[str, Any]:
    oldest_first = sorted(lines, key=lambda line: line.timestamp)
    return {"app": name, "lines": [v1_log(x) for x in oldest_first]}


def v1_up(result: UpResult) -> dict[str, Any]:
    return {
        "app": result.app,
        "replicas": result.replicas,
        "adopted": result.adopted,
        "started": result.started,
    }


def v1_scaled(result: ScaleResult) -> dict[str, Any]:
    return {
        "app": result.app,
        "status": result.status,
        "replicas": result.replicas,
        "requested": result.requested,
        "clamped": result.clamped,
        "message": result.message,
    }


def v1_register_preview(preview: RegisterPreview) -> dict[str, Any]:
    return {
        "app": preview.app,
        "change": preview.change,
        "spec_hash": preview.spec_hash,
        "missing_secrets": [
            {"variable": m.variable, "secret": m.secret, "field": m.field} for m in preview.missing_secrets
        ],
    }


def v1_rollout(rollout: RolloutView) -> dict[str, Any]:
    return {
        "app": rollout.app,
        "status": rollout.status,
        "status_reason": rollout.status_reason,
        "desired_replicas": rollout.desired_replicas,
        "ready_replicas": rollout.ready_replicas,
        "updated_replicas": rollout.updated_replicas,
        "updated_ready_replicas": rollout.updated_ready_replicas,
        "terminating_replicas": rollout.terminating_replicas,
        "complete": rollout.complete,
        "replicas": [
            {
                "slot": r.slot,
                "name": r.name,
                "state": r.state,
                "ready": r.ready,
                "updated": r.updated,
                "reason": r.reason,
            }
            for r in rollout.replicas
        ],
    }


def v1_app_metrics(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "app": name,
        "current": current_metrics(metrics.get("current")),
        "window": metrics.get("window") or {},
        "policy": metrics.get("policy") or {},
        "last_decision": metrics.get("last_decision"),
    }


# --- cluster --------------------------------------------------------------------------------------


def cluster_status(status: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The engine's cluster view in the 1.0 shape; a lone node without clustering leads itself."""
    is_leader = bool(status.get("is_leader", False))
    nodes = status.get("nodes") or []
    return {
        "node_id": str(status.get("node_id") or node_id),
        "hostname": str(status.get("hostname") or ""),
        "state": str(status.get("state") or ("leader" if is_leader else "follower")),
        "term": int(status.get("term") or 0),
        "is_leader": is_leader,
        "leader_id": status.get("leader_id"),
        "cluster_size": int(status.get("cluster_size") or max(len(nodes), 1)),
        "nodes": nodes,
        "lease": status.get("lease"),
        "election_status": str(status.get("election_status") or ""),
    }


def cluster_leader(status: dict[str, Any]) -> dict[str, Any] | None:
    """``/cluster/leader``; None when no node holds a valid lease."""
    lease = status.get("lease")
    if not lease or not lease.get("leader_id"):
        return None
    api_url = lease.get("api_url") or ""
    return {
        "leader_id": lease["leader_id"],
        "hostname": lease.get("hostname") or "",
        "api_url": api_url,
        "external_api_url": lease.get("external_api_url") or api_url,
        "term": int(lease.get("term") or 0),
        "lease_expires_at": float(lease.get("expires_at") or 0.0),
    }


def cluster_health(status: dict[str, Any], node_id: str, version: str, now: float) -> dict[str, Any]:
    view = cluster_status(status, node_id)
    ready = view["leader_id"] is not None
    return {
        "status": "healthy" if ready else "degraded",
        "clustering": "enabled" if view["cluster_size"] > 1 else "disabled",
        "node_id": view["node_id"],
        "state": view["state"],
        "is_leader": view["is_leader"],
        "leader_id": view["leader_id"],
        "cluster_size": view["cluster_size"],
        "cluster_ready": ready,
        "timestamp": now,
        "version": version,
    }


def health(
    database: dict[str, Any], node_id: str, is_leader: bool, version: str, now: float
) -> dict[str, Any]:
    db_ok = database.get("status") == "ok"
    db = {"status": "ok" if db_ok else "error"}
    if not db_ok and database.get("detail"):
        db["detail"] = str(database["detail"])
    return {
        "status": "healthy" if db_ok else "degraded",
        "timestamp": now,
        "version": version,
        "database": db,
        "node_id": node_id,
        "is_leader": is_leader,
    }


# --- /api/v1 dashboard shapes (the console attached to a daemon draws from these) -------------------

FIGURE_KEYS = ("rps", "p95_latency_ms", "cpu_percent", "memory_percent")

Points = list[tuple[float, float]]


def v1_figures(window: Any) -> dict[str, float | None]:
    """The latest load figures of one app; None (not 0) while nothing has been measured."""
    return {key: getattr(window, key) for key in FIGURE_KEYS}


def v1_overview(
    apps: Iterable[AppView],
    figures: dict[str, dict[str, float | None]],
    lb_listen: str,
    now: float,
    runtime: str = "docker",
) -> dict[str, Any]:
    return {
        "timestamp": now,
        "lb_listen": lb_listen,
        "runtime": runtime,
        "apps": [{**v1_app(a), "figures": figures.get(a.name) or dict.fromkeys(FIGURE_KEYS)} for a in apps],
    }


def v1_series(name: str, seconds: int, now: float, series: dict[str, Points]) -> dict[str, Any]:
    return {
        "app": name,
        "seconds": seconds,
        "timestamp": now,
        "series": {key: [[t, v] for t, v in points] for key, points in series.items()},
    }


# A chart needs no more points than a terminal or a browser has columns; peaks survive the thinning.
BACKTEST_POINTS = 600
BACKTEST_DECISIONS = 500
BACKTEST_LOAD = ("rps", "p95_latency_ms", "cpu_percent", "memory_percent", "active_connections")


def thin(points: list[tuple[float, float]], limit: int = BACKTEST_POINTS) -> list[list[float]]:
    """At most ``limit`` points: consecutive points merged, each keeping its group's last time and
    highest value (a spike or a peak replica count stays visible)."""
    if len(points) <= limit:
        return [[t, v] for t, v in points]
    size = -(-len(points) // limit)
    return [
        [points[i : i + size][-1][0], max(v for _, v in points[i : i + size])]
        for i in range(0, len(points), size)
    ]


def _policy_run(policy: Any, result: Any) -> dict[str, Any]:
    summary = result.summary
    return {
        "policy": policy.to_document(),
        "replicas": thin([(p.at, float(p.replicas)) for p in result.replicas]),
        "decisions": [
            {
                "at": d.at,
                "from_replicas": d.from_replicas,
                "to_replicas": d.to_replicas,
                "reason": d.reason,
                "deciding_metric": d.deciding_metric,
            }
            for d in result.decisions[:BACKTEST_DECISIONS]
        ],
        "summary": {
            "samples": summary.samples,
            "duration_seconds": summary.duration_seconds,
            "scale_events": summary.scale_events,
            "scale_outs": summary.scale_outs,
            "scale_ins": summary.scale_ins,
            "replica_minutes": summary.replica_minutes,
            "under_provisioned_minutes": summary.under_provisioned_minutes,
            "under_provisioned_by_metric": summary.under_provisioned_by_metric,
            "peak_replicas": summary.peak_replicas,
            "flaps": summary.flaps,
            "flap_horizon_seconds": summary.flap_horizon_seconds,
        },
        "last_reason": result.last_reason,
    }


def v1_backtest(run: Any) -> dict[str, Any]:
    """``core.backtest_runner.BacktestRun`` on the wire: the load both policies saw and each one's run."""
    samples = run.samples
    return {
        "app": run.app,
        "source": run.source,
        "since": run.since_seconds,
        "start": samples[0].at - samples[0].resolution if samples else None,
        "end": samples[-1].at if samples else None,
        "samples": len(samples),
        "model": run.current.model,
        "load": {
            name: thin([(s.at, getattr(s, name)) for s in samples if getattr(s, name) is not None])
            for name in BACKTEST_LOAD
        },
        "current": _policy_run(run.current_policy, run.current),
        "candidate": _policy_run(run.candidate_policy, run.candidate),
    }
