"""The 1.0 wire shapes and the /api/v1 shapes the wire models produce from core.models objects."""

from __future__ import annotations

import json

from core.api import wire
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
    body = wire.AppStatus.of(app_view()).dump()
    assert set(body) == {"app", "status", "replicas", "ready_replicas", "instances", "mode"}
    assert body["replicas"] == 2 and body["ready_replicas"] == 1
    first, second = body["instances"]
    assert first["container_id"] == "a" * 12
    assert set(first) == {"container_id", "ip", "port", "state", "cpu_percent", "memory_percent", "failures"}
    assert first["cpu_percent"] == 12.5 and first["memory_percent"] == 0.0
    assert second["cpu_percent"] == 0.0


def test_legacy_app_list_entry_and_raw_keys() -> None:
    summary = wire.LegacyAppSummary.of(app_view()).dump()
    assert set(summary) == {
        "name", "spec", "status", "created_at", "updated_at", "replicas", "ready_replicas",
        "last_scaled_at", "mode",
    }  # fmt: skip
    raw = wire.RawApp.of(app_view()).dump()
    assert set(raw) == {"name", "raw", "parsed"}
    assert "ready_replicas" not in raw["parsed"]
    assert isinstance(raw["parsed"]["created_at"], float)


def test_legacy_logs_are_newest_first_with_short_and_full_ids() -> None:
    lines = [
        LogLine(timestamp=t, container_id=LONG_ID, replica="web-1", message=f"m{t}") for t in (1.0, 3.0, 2.0)
    ]
    body = wire.LegacyLogs.of("web", 2, lines).dump()
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
    assert [line["timestamp"] for line in wire.Logs.of("web", lines).dump()["lines"]] == [1.0, 2.0]


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
    legacy = wire.LegacyEvents.of(events).dump()["events"]
    assert [e["id"] for e in legacy] == [3, 2, 1]
    assert set(legacy[0]) == {"id", "app_name", "event_type", "message", "timestamp", "details"}
    assert legacy[0]["event_type"] == "scaling"
    v1 = wire.Events.of(events).dump()["events"]
    assert [e["id"] for e in v1] == [3, 2, 1] and v1[0]["kind"] == "scaled"


def test_results_of_lifecycle_calls() -> None:
    assert wire.Started.of(UpResult(app="web", replicas=3, adopted=1, started=2)).dump() == {
        "status": "started", "app": "web", "replicas": 3, "adopted": 1, "started": 2,
    }  # fmt: skip
    assert wire.Stopped(app="web", containers_stopped=3).dump() == {
        "status": "stopped",
        "app": "web",
        "containers_stopped": 3,
    }
    assert wire.Deleted.of("web").dump()["status"] == "deleted"
    scaled = ScaleResult(
        app="web", status="scaled", replicas=5, requested=9, clamped=True, message="max is 5"
    )
    assert wire.Scaled.of(scaled).dump() == {"status": "scaled", "app": "web", "replicas": 5}
    assert wire.ScaleAnswer.of(scaled).dump()["clamped"] is True
    assert wire.Registered(app="web").dump() == {
        "status": "registered", "app": "web", "message": "Application registered successfully",
    }  # fmt: skip


def test_legacy_metrics_fill_missing_figures_and_order_history_newest_first() -> None:
    history = [
        ScalingRecord(
            id=i, app="web", from_replicas=1, to_replicas=2, reason="rps", metrics={}, timestamp=float(i)
        )
        for i in (1, 2)
    ]
    body = wire.LegacyAppMetrics.of("web", {"current": {"rps": 4}}, history).dump()
    figures = body["metrics"]["metrics"]
    assert figures["rps"] == 4.0 and figures["p95_latency_ms"] == 0.0 and figures["total_replicas"] == 0
    assert [r["id"] for r in body["scaling_history"]] == [2, 1]
    assert body["scaling_history"][0]["trigger_reason"] == "rps"


def test_v1_app_describes_replicas_and_image() -> None:
    body = wire.App.of(app_view()).dump()
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
    assert wire.ClusterStatus.of(status, "n1").dump()["state"] == "leader"
    leader = wire.ClusterLeader.of(status)
    assert leader is not None and leader.term == 4 and leader.lease_expires_at == 99.5
    health = wire.ClusterHealth.of(status, "n1", "2.0.0", 5.0).dump()
    assert health["cluster_ready"] is True and health["clustering"] == "disabled"
    assert wire.ClusterLeader.of({"lease": None}) is None
    assert wire.ClusterHealth.of({"leader_id": None}, "n2", "2.0.0", 5.0).dump()["status"] == "degraded"


def test_health_reports_database_errors_without_losing_the_shape() -> None:
    ok = wire.Health.of({"status": "ok"}, "n1", True, "2.0.0", 1.0).dump()
    assert ok == {
        "status": "healthy", "timestamp": 1.0, "version": "2.0.0", "database": {"status": "ok"},
        "node_id": "n1", "is_leader": True,
    }  # fmt: skip
    bad = wire.Health.of({"status": "error", "detail": "refused"}, "n1", False, "2.0.0", 1.0).dump()
    assert bad["database"] == {"status": "error", "detail": "refused"} and bad["status"] == "degraded"


def test_the_console_reads_an_app_back_as_the_engine_described_it() -> None:
    described = app_view()
    parsed = wire.App.model_validate(wire.App.of(described).dump()).view()
    assert parsed.name == described.name and parsed.ready_replicas == described.ready_replicas
    assert [r.slot for r in parsed.replicas] == [1, 2] and parsed.replicas[0].container_id == "a" * 12
    newer = {**wire.App.of(described).dump(), "added_by_a_newer_daemon": 1}
    assert wire.App.model_validate(newer).view().name == "web"  # unknown keys are ignored


def test_the_overview_fast_path_is_exactly_what_its_model_validates() -> None:
    apps = [app_view(), app_view([])]
    figures = {"web": wire.Figures(rps=1.5, p95_latency_ms=None, cpu_percent=3, memory_percent=None)}
    data = wire.Overview.data(apps, figures, "127.0.0.1:8080", 5.0, "docker")
    assert wire.Overview.of(apps, figures, "127.0.0.1:8080", 5.0, "docker").dump() == data
    assert json.dumps(wire.Overview.model_validate(data).dump()) == json.dumps(data)  # key order too
