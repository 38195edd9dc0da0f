"""A backend of fixed data: the console's look without Docker (snapshot tests, a demo of the layout).

Every figure derives from the ``now`` it is given, so two runs render the same screen.  Changes are
refused with the same typed errors a follower gives, so the console's error path shows too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core.errors import Conflict, NotFound
from core.models import AppView, Event, ReplicaView, ScaleResult
from core.runtime.base import LogLine, NodeInfo
from orchestry_tui.console.frame import (
    AppFigures,
    ChartData,
    ClusterNode,
    ClusterView,
    Frame,
    Leadership,
    TermRecord,
)

FIXED_NOW = 1_700_000_000.0
FIXED_DATA = "this console shows fixed sample data: nothing runs, so nothing can change"


class FixedBackend:
    def __init__(
        self,
        apps: list[AppView],
        figures: dict[str, AppFigures] | None = None,
        events: list[Event] | None = None,
        charts: dict[str, ChartData] | None = None,
        logs: dict[str, list[LogLine]] | None = None,
        leadership: Leadership | None = None,
        nodes: list[NodeInfo] | None = None,
        cluster: ClusterView | None = None,
        now: float = FIXED_NOW,
        state_dir: Path = Path("/tmp/orchestry-fixed"),
    ) -> None:
        self.apps = apps
        self.figures = figures or {}
        self.events = events or []
        self.charts = charts or {}
        self.log_lines = logs or {}
        self.now = now
        self.leadership = leadership or Leadership(
            node_id="node-a", state="leader", term=5, leader_id="node-a", lease_expires_at=now + 24
        )
        self.node_list = nodes or []
        self.cluster_view = cluster or sample_cluster(self.leadership, now)
        self.api_address = "127.0.0.1:8000"
        self.lb_address = "127.0.0.1:8080"
        self.runtime = "docker"
        self.state_dir = state_dir

    async def start(self) -> list[str]:
        return []

    async def stop(self, stop_apps: bool = False) -> None:
        return None

    def app_now(self, name: str) -> AppView | None:
        return next((a for a in self.apps if a.name == name), None)

    async def frame(self, selected: str | None, charts: bool = True) -> Frame:
        return Frame(
            now=self.now,
            leadership=self.leadership,
            apps=self.apps,
            figures=self.figures,
            charts=self.charts.get(selected or "") if charts else None,
        )

    async def recent_events(self, limit: int) -> list[Event]:
        return sorted(self.events, key=lambda e: e.timestamp, reverse=True)[:limit]

    async def live_events(self) -> AsyncIterator[Event]:
        await asyncio.Event().wait()  # nothing new ever happens in fixed data
        yield self.events[0]

    async def nodes(self) -> list[NodeInfo]:
        return self.node_list

    async def drain_node(self, node_id: str) -> int:
        raise Conflict(FIXED_DATA)

    async def activate_node(self, node_id: str) -> None:
        raise Conflict(FIXED_DATA)

    async def get_app(self, name: str) -> AppView:
        for app in self.apps:
            if app.name == name:
                return app
        raise NotFound(f"app '{name}' is not registered: register it first (orchestry register FILE)")

    async def logs(self, name: str, tail: int) -> list[LogLine]:
        return self.log_lines.get(name, [])[-tail:]

    async def follow_logs(self, name: str) -> AsyncIterator[LogLine]:
        for line in self.log_lines.get(name, [])[-200:]:
            yield line
        await asyncio.Event().wait()

    async def diagnostic_snapshot(self) -> bytes:
        raise Conflict(FIXED_DATA)

    async def cluster(self) -> ClusterView:
        return self.cluster_view

    async def step_down(self) -> str:
        raise Conflict(FIXED_DATA)

    async def scale(self, name: str, replicas: int) -> ScaleResult:
        raise Conflict(FIXED_DATA)

    async def restart(self, name: str, slot: int | None = None) -> list[int]:
        raise Conflict(FIXED_DATA)

    async def set_mode(self, name: str, mode: str) -> None:
        raise Conflict(FIXED_DATA)

    async def up(self, name: str) -> None:
        raise Conflict(FIXED_DATA)

    async def down(self, name: str) -> None:
        raise Conflict(FIXED_DATA)

    async def backtest(
        self, name: str, changes: dict[str, Any] | None, since: float | None, trace: str | None
    ) -> dict[str, Any]:
        """A real backtest (the pure function) on a synthetic trace: fixed data has no history."""
        from core.api.wire import Backtest
        from core.backtest import backtest, synthetic_trace, trace_duration
        from core.backtest_runner import BacktestRun, check_trace
        from core.errors import BadRequest
        from core.spec import ScalingPolicy, validate_policy_update

        app = await self.get_app(name)
        policy = validate_policy_update(ScalingPolicy(), app.policy)
        candidate = validate_policy_update(policy, changes) if changes else policy
        kind = check_trace(trace)
        if kind is None:
            raise BadRequest(
                f"app '{name}' has no recorded metric history in the last 6h: pass a synthetic trace "
                "(step, ramp, spike, sine)"
            )
        duration = trace_duration(kind)
        samples = synthetic_trace(kind, policy, name, start=self.now - duration, period=10.0)
        start = max(policy.min_replicas, 1)
        run = BacktestRun(
            name,
            f"trace:{kind}",
            duration,
            samples,
            policy,
            candidate,
            backtest(samples, policy, start),
            backtest(samples, candidate, start),
        )
        return Backtest.of(run).dump()

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        raise Conflict(FIXED_DATA)


def sample_cluster(leadership: Leadership, now: float) -> ClusterView:
    """Three controllers: this one, a peer, and one killed a minute ago; four terms of history."""
    me = leadership.node_id
    leader = leadership.leader_id
    peers = [me, "node-b", "node-c"] if me != "node-b" else [me, "node-a", "node-c"]

    def node(node_id: str, index: int) -> ClusterNode:
        down = node_id == "node-c"
        state = "down" if down else ("leader" if node_id == leader else "follower")
        return ClusterNode(
            node_id=node_id,
            hostname=f"ctl-{index}",
            api_url=f"http://10.0.0.{index}:8000",
            state=state if leader else ("down" if down else "candidate"),
            heartbeat_age=64.0 if down else 1.0 + index / 2,
            database="unknown" if down else "ok",
            version=None if down else "2.0.0",
            reachable=not down,
        )

    term = leadership.term or 1
    history = [
        TermRecord(term, leader or me, now - 240, None, None),
        TermRecord(term - 1, "node-c", now - 900, now - 245, "expired"),
        TermRecord(term - 2, "node-b", now - 3000, now - 905, "released"),
        TermRecord(term - 3, "node-a", now - 3600, now - 3005, "fenced"),
    ]
    return ClusterView(
        now=now,
        answered_by=me,
        term=leadership.term,
        leader_id=leader,
        lease_expires_at=leadership.lease_expires_at if leader else None,
        lease_ttl=30.0,
        nodes=[node(n, i + 1) for i, n in enumerate(sorted(peers))],
        history=[h for h in history if h.term >= 1],
        ticking=False,  # snapshots render the same countdown however long they take
    )


def sample_backend(now: float = FIXED_NOW) -> FixedBackend:
    """Two apps, one degraded, with charts and events: the data the snapshot tests render."""

    def replica(
        app: str, slot: int, ready: bool, cpu: float, mem: float, reason: str = "", node: str = "node-1"
    ) -> ReplicaView:
        return ReplicaView(
            slot=slot,
            name=f"{app}-{slot}",
            container_id=f"{slot:02d}c0ffee{app.encode().hex()}"[:64].ljust(64, "0"),
            host="127.0.0.1",
            port=41000 + slot,
            state="ready" if ready else "unhealthy",
            ready=ready,
            failures=0 if ready else 3,
            restarts=0 if ready else 2,
            cpu_percent=cpu,
            memory_percent=mem,
            started_at=now - 600,
            reason=reason,
            node=node,
        )

    def app(name: str, status: str, reason: str, mode: str, replicas: list[ReplicaView]) -> AppView:
        spec = {
            "apiVersion": "v1",
            "kind": "App",
            "metadata": {"name": name},
            "spec": {
                "image": "orchestry/demo:latest",
                "command": ["/bin/serve"],
                "ports": [{"containerPort": 8080}],
                "environment": [{"name": "DB_PASSWORD", "value": "***"}],
            },
            "scaling": {
                "mode": mode,
                "minReplicas": 1,
                "maxReplicas": 6,
                "maxP95LatencyMs": 250,
                "maxCPUPercent": 70,
            },
        }
        return AppView(
            name=name,
            spec=spec,
            raw=spec,
            status=status,
            status_reason=reason,
            mode=mode,
            desired_replicas=len(replicas),
            policy=spec["scaling"],
            created_at=now - 3600,
            updated_at=now - 60,
            last_scaled_at=now - 120,
            replicas=replicas,
        )

    web = app(
        "web",
        "running",
        "3/3 replicas ready",
        "auto",
        [
            replica("web", 1, True, 31.5, 12.0, node="node-1"),
            replica("web", 2, True, 28.0, 11.5, node="node-2"),
            replica("web", 3, True, 35.2, 12.3, node="node-2"),
        ],
    )
    worker = app(
        "worker",
        "degraded",
        "1/2 replicas ready: worker-2 failed its health check 3 times",
        "manual",
        [
            replica("worker", 1, True, 5.0, 8.0, node="node-2"),
            replica("worker", 2, False, 0.0, 7.5, "GET /health: 500", node="node-3"),
        ],
    )
    seconds = [now - 120 + i for i in range(0, 121, 4)]
    charts = {
        "web": ChartData(
            app="web",
            desired=[(t, 2.0 if t < now - 60 else 3.0) for t in seconds],
            ready=[(t, 2.0 if t < now - 55 else 3.0) for t in seconds],
            rps=[(t, 40.0 + (i % 7) * 6) for i, t in enumerate(seconds)],
            p95_latency_ms=[(t, 120.0 + (i % 5) * 30) for i, t in enumerate(seconds)],
            cpu_percent=[(t, 30.0 + (i % 6) * 8) for i, t in enumerate(seconds)],
            max_p95_latency_ms=250.0,
            max_cpu_percent=70.0,
            cpu_of_limit=False,
        )
    }
    unhealthy = "worker-2 failed its health check 3 times"
    events = [
        Event(1, "web", "lifecycle", "app_up", "web is starting with 2 replica(s)", {}, now - 300),
        Event(
            2,
            "web",
            "scaling",
            "scaled_auto",
            "2 → 3 replicas (cpu 82% > 70% of one core)",
            {},
            now - 120,
        ),
        Event(3, "worker", "health", "replica_unhealthy", unhealthy, {}, now - 30),
    ]
    logs = {
        "web": [
            LogLine(now - 10 + i, f"{(i % 3) + 1:02d}c0ffee", f"web-{(i % 3) + 1}", f"GET /web/ 200 {i} ms")
            for i in range(10)
        ]
    }
    return FixedBackend(
        apps=[web, worker],
        figures={
            "web": AppFigures(rps=64.0, p95_latency_ms=180.0, cpu_percent=31.6, memory_percent=11.9),
            "worker": AppFigures(rps=None, p95_latency_ms=None, cpu_percent=2.5, memory_percent=7.8),
        },
        events=events,
        charts=charts,
        logs=logs,
        nodes=sample_nodes(),
        now=now,
    )


def sample_nodes() -> list[NodeInfo]:
    """A three-node Swarm: the manager, a worker, and a worker that went down."""
    gib = 2**30

    def node(name: str, role: str, state: str, tasks: int, cpu: float | None, reason: str = "") -> NodeInfo:
        return NodeInfo(
            id=f"{name}-{'0' * 20}",
            hostname=name,
            address=f"10.20.0.1{name[-1]}",
            role=role,
            state=state,
            availability="active",
            tasks=tasks,
            leader=role == "manager",
            engine_version="20.10.24",
            cpu_cores=2.0,
            memory_bytes=8 * gib,
            cpu_reserved_cores=0.0,
            memory_reserved_bytes=256 * 2**20 if tasks else 0,
            cpu_percent=cpu,
            unavailable_reason=reason,
        )

    return [
        node("node-1", "manager", "ready", 1, 31.5),
        node("node-2", "worker", "ready", 3, 68.2),
        node("node-3", "worker", "down", 1, None, "Swarm reports the node down: heartbeat failure"),
    ]
