"""The 1.0 wire shapes and the /api/v1 shapes produced from core.models objects."""

from __future__ import annotations

from core.api import serializers
from core.models import AppView, Event, ReplicaView, ScaleResult, ScalingRecord, UpResult
from core.runtime.base import LogLine

LONG_ID = "a" * 64


def replica(slot: int = 1, ready: bool = True, cpu: float | None = 12.5) -> ReplicaView:
    return ReplicaView(
        slot=slot,
        name=f"web-{slot}",
        container_id=LONG_ID,
        host="127.0.0.1",
        port=20000 + slot,
        state="ready" if ready else "starting",
        ready=ready,
        failures=1,
        cpu_percent=cpu,
        memory_percent=None,
        started_at=100.0,
    )


def app_view(replicas: list[ReplicaView] | None = None) -> AppView:
    return AppView(
        name="web",
        spec={"spec": {"image": "orchestry/demo:latest"}},
        raw={"metadata": {"name": "web"}},
        status="running",
        status_reason="",
        mode="auto",
        desired_replicas=2,
        policy={"minReplicas": 1},
        created_at=10.0,
        updated_at=20.0,
        last_scaled_at=None,
        replicas=replicas if replicas is not None else [replica(1), replica(2, ready=False, cpu=None)],
    )


def test_legacy_status_has_12_char_ids_numbers_for_unmeasured_percentages_and_ready_count() -> None:
    body = serializers.legacy_status(app_view())
    assert set(body) == {"app", "status", "replicas", "ready_replicas", "instances", "mode"}
    assert body["replicas"] == 2 and body["ready_replicas"] == 1
    first, second = body["instances"]
    assert first["container_id"] == "a" * 12
    assert set(first) == {"container_id", "ip", "port", "state", "cpu_percent", "memory_percent", "failures"}
    assert first["cpu_percent"] == 12.5 and first["memory_percent"] == 0.0
    assert second["cpu_percent"] == 0.0


def test_legacy_app_list_entry_and_raw_keys() -> None:
    summary = serializers.legacy_app_summary(app_view())
    assert set(summary) == {
        "name", "spec", "status", "created_at", "updated_at", "replicas", "ready_replicas",
        "last_scaled_at", "mode",
    }  # fmt: skip
    raw = serializers.legacy_raw(app_view())
    assert set(raw) == {"name", "raw", "parsed"}
    assert "ready_replicas" not in raw["parsed"]
    assert isinstance(raw["parsed"]["created_at"], float)


def test_legacy_logs_are_newest_first_with_short_and_full_ids() -> None:
    lines = [
        LogLine(timestamp=t, container_id=LONG_ID, replica="web-1", message=f"m{t}") for t in (1.0, 3.0, 2.0)
    ]
    body = serializers.legacy_logs("web", 2, lines)
    assert [line["timestamp"] for line in body["logs"]] == [3.0, 2.0, 1.0]
    assert body["logs"][0] == {
        "timestamp": 3.0,
        "container": "a" * 12,
        "container_full": LONG_ID,
        "message": "m3.0",
    }
    assert body["total_containers"] == 2


def test_v1_logs_are_oldest_first() -> None:
    lines = [LogLine(timestamp=t, container_id=LONG_ID, replica="web-1", message="x") for t in (2.0, 1.0)]
    assert [line["timestamp"] for line in serializers.v1_logs("web", lines)["lines"]] == [1.0, 2.0]


def test_events_newest_first_in_both_shapes() -> None:
    events = [
        Event(
            id=i,
            app="web",
            category="scaling",
            kind="scaled",
            message=f"e{i}",
            details={},
            timestamp=float(i),
        )
        for i in (1, 3, 2)
    ]
    legacy = serializers.legacy_events(events)["events"]
    assert [e["id"] for e in legacy] == [3, 2, 1]
    assert set(legacy[0]) == {"id", "app_name", "event_type", "message", "timestamp", "details"}
    assert legacy[0]["event_type"] == "scaling"
    v1 = serializers.v1_events(events)["events"]
    assert [e["id"] for e in v1] == [3, 2, 1] and v1[0]["kind"] == "scaled"


def test_results_of_lifecycle_calls() -> None:
    assert serializers.legacy_up(UpResult(app="web", replicas=3, adopted=1, started=2)) == {
        "status": "started", "app": "web", "replicas": 3, "adopted": 1, "started": 2,
    }  # fmt: skip
    assert serializers.legacy_down("web", 3) == {"status": "stopped", "app": "web", "containers_stopped": 3}
    assert serializers.legacy_deleted("web")["status"] == "deleted"
    scaled = ScaleResult(
        app="web", status="scaled", replicas=5, requested=9, clamped=True, message="max is 5"
    )
    assert serializers.legacy_scaled(scaled) == {"status": "scaled", "app": "web", "replicas": 5}
    assert serializers.v1_scaled(scaled)["clamped"] is True
    assert serializers.legacy_registered("web") == {
        "status": "registered", "app": "web", "message": "Application registered successfully",
    }  # fmt: skip


def test_legacy_metrics_fill_missing_figures_and_order_history_newest_first() -> None:
    history = [
        ScalingRecord(
            id=i, app="web", from_replicas=1, to_replicas=2, reason="rps", metrics={}, timestamp=float(i)
        )
        for i in (1, 2)
    ]
    body = serializers.legacy_app_metrics("web", {"current": {"rps": 4}}, history)
    figures = body["metrics"]["metrics"]
    assert figures["rps"] == 4.0 and figures["p95_latency_ms"] == 0.0 and figures["total_replicas"] == 0
    assert [r["id"] for r in body["scaling_history"]] == [2, 1]
    assert body["scaling_history"][0]["trigger_reason"] == "rps"


def test_v1_app_describes_replicas_and_image() -> None:
    body = serializers.v1_app(app_view())
    assert body["image"] == "orchestry/demo:latest"
    assert body["replicas"][0]["container_id"] == "a" * 12
    assert body["ready_replicas"] == 1


def test_cluster_views_for_a_lone_leader_and_for_no_leader() -> None:
    lease = {
        "leader_id": "n1",
        "term": 4,
        "expires_at": 99.5,
        "hostname": "h",
        "api_url": "http://127.0.0.1:8000",
    }
    status = {"node_id": "n1", "is_leader": True, "leader_id": "n1", "term": 4, "lease": lease, "nodes": []}
    assert serializers.cluster_status(status, "n1")["state"] == "leader"
    leader = serializers.cluster_leader(status)
    assert leader is not None and leader["term"] == 4 and leader["lease_expires_at"] == 99.5
    health = serializers.cluster_health(status, "n1", "2.0.0", 5.0)
    assert health["cluster_ready"] is True and health["clustering"] == "disabled"
    assert serializers.cluster_leader({"lease": None}) is None
    assert serializers.cluster_health({"leader_id": None}, "n2", "2.0.0", 5.0)["status"] == "degraded"


def test_health_reports_database_errors_without_losing_the_shape() -> None:
    ok = serializers.health({"status": "ok"}, "n1", True, "2.0.0", 1.0)
    assert ok == {
        "status": "healthy", "timestamp": 1.0, "version": "2.0.0", "database": {"status": "ok"},
        "node_id": "n1", "is_leader": True,
    }  # fmt: skip
    bad = serializers.health({"status": "error", "detail": "refused"}, "n1", False, "2.0.0", 1.0)
    assert bad["database"] == {"status": "error", "detail": "refused"} and bad["status"] == "degraded"
