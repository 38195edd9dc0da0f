"""The Docker engine restarts under a running app (DESIGN.md §4 invariants, §7 chaos).

Each test runs its own private dockerd (tests/chaos/private_docker.py): the shared engine is never
stopped.  The engine under test runs in-process against it, with a long relist interval and a slow
periodic health check so that recovery has to come from what the engine is told (the Docker events
stream and its reconnection), not from the safety nets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

from core.engine import Engine
from core.runtime.base import LABEL_APP, LABEL_SLOT
from tests.chaos.private_docker import PrivateDocker, private_docker  # noqa: F401 (the fixture)
from tests.conftest import unique_name
from tests.integration.harness import (
    TrafficClient,
    demo_app,
    engine_settings,
    get_text,
    lb,
    ready_is,
    wait_for,
)

REPLICAS = 3
# Without the events stream a dead replica would be noticed only after 3 probes 10 s apart or at the
# next relist a minute later: anything faster proves the stream works.
SLOW_HEALTH = {"path": "/health", "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
RELIST_SECONDS = 60.0
RECOVERY_BUDGET = 10.0  # from dockerd answering again to the app fully ready and routed
OUTAGE_SECONDS = 8.0


@contextlib.asynccontextmanager
async def engine_on(docker: PrivateDocker, state_dir: Path, database_url: str) -> AsyncIterator[Engine]:
    settings = engine_settings(state_dir, database_url, docker_url=docker.url, relist_interval=RELIST_SECONDS)
    engine = Engine(settings)
    await engine.start()
    try:
        yield engine
    finally:
        if not docker.running():
            await asyncio.to_thread(docker.start, docker.live_restore)
        await engine.stop(stop_apps=True)


async def serving_app(engine: Engine) -> str:
    name = unique_name("dkr")
    await engine.register(demo_app(name, healthCheck=SLOW_HEALTH))
    await engine.up(name)
    await engine.scale(name, REPLICAS)
    await wait_for(lambda: ready_is(engine, name, REPLICAS), timeout=30, what=f"{REPLICAS} ready")
    status, body = await get_text(lb(engine, name))
    assert status == 200 and name in body, (status, body)
    return name


class Background:
    """Runs ``_run`` as a task for the duration of an ``async with`` block."""

    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class LoopLag(Background):
    """Measures how late a 50 ms sleep wakes up: anything blocking the event loop shows here."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            self.worst = max(self.worst, loop.time() - before - 0.05)


class SlotWatch(Background):
    """Polls the private engine's containers of one app: the most ever alive at once in one slot.

    Leaving the block waits for one whole poll that began after it: a block that ends as soon as the
    engine recovered could otherwise end while the only poll since dockerd came back is still in flight,
    and the watch would have seen nothing (a full run read 0 running per slot that way)."""

    def __init__(self, docker: PrivateDocker, app: str) -> None:
        self.docker = docker
        self.app = app
        self.most_running_per_slot = 0
        self.ids_seen: set[str] = set()
        self.polls_read = 0

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the engine may be down: nothing to count then
                rows = await asyncio.to_thread(self.docker.containers, f"{LABEL_APP}={self.app}")
                running = Counter(row[LABEL_SLOT] for row in rows if row["state"] == "running")
                self.most_running_per_slot = max([self.most_running_per_slot, *running.values()])
                self.ids_seen.update(row["id"] for row in rows)
                self.polls_read += 1
            await asyncio.sleep(0.1)

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            # The poll in flight may have begun before the block ended; the one after it did not.
            wanted = self.polls_read + 2
            await wait_for(
                lambda: self._read_since(wanted), timeout=30, what="the slot watch to read the containers"
            )
        await super().__aexit__(*exc)

    async def _read_since(self, wanted: int) -> bool:
        return self.polls_read >= wanted


class LogCount(logging.Handler):
    """Counts the engine's warnings and errors while installed."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("core"):
            self.records.append(record)

    def __enter__(self) -> LogCount:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def summary(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()[:120]}" for r in self.records]


async def quickly(awaitable: Any, limit: float = 10.0) -> tuple[Any, float]:
    """The answer and how long it took; a hang (a Docker call on the loop) fails at ``limit``.
    How fast it answers is bench/responsiveness.py's figure, not this test's."""
    started = time.monotonic()
    result = await asyncio.wait_for(awaitable, limit)
    return result, time.monotonic() - started


async def fully_ready(engine: Engine, docker: PrivateDocker, name: str) -> bool:
    """REPLICAS ready and routed replicas, each the only container of its slot, and nginx serving."""
    if not await ready_is(engine, name, REPLICAS):
        return False
    rows = await asyncio.to_thread(docker.containers, f"{LABEL_APP}={name}")
    if sorted(row[LABEL_SLOT] for row in rows) != [str(s) for s in range(1, REPLICAS + 1)]:
        return False
    status, _body = await get_text(lb(engine, name))
    return status == 200


async def assert_events_flow(engine: Engine, docker: PrivateDocker, name: str) -> None:
    """A replica killed behind the engine's back is unrouted at once: only the events stream can tell."""
    [victim, *_] = await engine.runtime.list_managed(name)
    killed_at = time.monotonic()
    await asyncio.to_thread(docker.docker, "kill", victim.id)

    async def unrouted() -> bool:
        view = await engine.get_app(name)
        return not any(r.ready for r in view.replicas if r.container_id == victim.id)

    await wait_for(unrouted, timeout=5, what="the killed replica unrouted (Docker events)")
    unrouted_after = time.monotonic() - killed_at
    await wait_for(lambda: fully_ready(engine, docker, name), timeout=30, what="the killed replica replaced")
    print(f"events after the restart: killed replica unrouted in {unrouted_after:.2f} s")


async def test_dockerd_stopped_then_started_again_app_comes_back(
    private_docker: PrivateDocker,  # noqa: F811
    tmp_path: Path,
    database_url: str,
) -> None:
    docker = private_docker
    async with engine_on(docker, tmp_path / "state", database_url) as engine, LoopLag() as lag:
        name = await serving_app(engine)
        originals = {c.id for c in await engine.runtime.list_managed(name)}

        # -- dockerd goes away; without --live-restore it stops the replicas on its way out ----------
        outage_started = time.time()
        with LogCount() as logs:
            await asyncio.to_thread(docker.stop)
            cpu_before, wall_before = time.process_time(), time.monotonic()

            async def unrouted_and_reported() -> bool:
                health, _ = await quickly(engine.health())
                view, _ = await quickly(engine.get_app(name))
                return health["docker"]["status"] == "error" and view.ready_replicas == 0

            await wait_for(unrouted_and_reported, timeout=10, what="replicas unrouted, Docker reported down")
            # nginx answers for the app itself instead of trying replicas that are gone.
            status, body = await wait_for(lambda: _answer(lb(engine, name), 503), timeout=5, what="503")
            assert "no ready replicas" in body, body

            await asyncio.sleep(OUTAGE_SECONDS)
            cpu_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
            health, health_seconds = await quickly(engine.health())
            view, view_seconds = await quickly(engine.get_app(name))
            status, body = await get_text(lb(engine, name))
        outage_events = await engine.events(since=outage_started, limit=500)
        print(
            f"outage: {len(outage_events)} events, {len(logs.records)} warnings, "
            f"{cpu_share:.1%} of a core; health {health_seconds * 1000:.0f} ms, "
            f"get_app {view_seconds * 1000:.0f} ms"
        )
        for event in reversed(outage_events):
            print(f"  {event.category}/{event.kind}: {event.message[:150]}")
        for line in logs.summary():
            print(f"  log {line}")

        assert health["docker"]["status"] == "error" and "does not answer" in health["docker"]["detail"]
        assert view.ready_replicas == 0
        assert "Docker" in view.status_reason, view.status_reason
        assert status == 503, (status, body)
        errors = [e for e in outage_events if e.category == "error"]
        assert [e.kind for e in errors] == ["docker_unreachable"], [(e.kind, e.message) for e in errors]
        assert len(outage_events) <= 3 * REPLICAS + 5, [(e.kind, e.message) for e in outage_events]
        assert len(logs.records) <= 5, logs.summary()

        # -- dockerd comes back: the engine reconnects and brings the app back, one container a slot -
        async with SlotWatch(docker, name) as slots:
            await asyncio.to_thread(docker.start)
            back_at = time.monotonic()
            await wait_for(
                lambda: fully_ready(engine, docker, name), timeout=RECOVERY_BUDGET, what="app fully ready"
            )
            recovery = time.monotonic() - back_at
            assert (await engine.health())["docker"]["status"] == "ok"
            async with TrafficClient(lb(engine, name), concurrency=4) as traffic:
                await asyncio.sleep(2.0)
        print(f"dockerd back → {REPLICAS} ready, routed replicas serving: {recovery:.2f} s")
        assert slots.most_running_per_slot == 1
        assert traffic.total > 0 and traffic.failures == 0, (traffic.statuses, traffic.errors[-3:])
        rows = await asyncio.to_thread(docker.containers, f"{LABEL_APP}={name}")
        assert len(rows) == REPLICAS and all(row["state"] == "running" for row in rows), rows
        kinds = Counter(e.kind for e in await engine.events(since=outage_started, limit=500))
        assert kinds["docker_unreachable"] == 1 and kinds["docker_reachable"] == 1, kinds
        assert kinds["replica_started"] <= len(originals), kinds

        await assert_events_flow(engine, docker, name)
    print(f"worst event-loop lag: {lag.worst * 1000:.0f} ms")  # a figure: noisy on shared cores


async def test_dockerd_restarted_with_live_restore_changes_nothing_and_traffic_never_fails(
    private_docker: PrivateDocker,  # noqa: F811
    tmp_path: Path,
    database_url: str,
) -> None:
    docker = private_docker
    await asyncio.to_thread(docker.stop)
    await asyncio.to_thread(docker.start, True)
    async with engine_on(docker, tmp_path / "state", database_url) as engine, LoopLag() as lag:
        name = await serving_app(engine)
        before = sorted(c.id for c in await engine.runtime.list_managed(name))
        mark = time.time()
        traffic = TrafficClient(lb(engine, name), concurrency=4)
        async with traffic, SlotWatch(docker, name) as slots:
            await asyncio.sleep(1.0)
            down_for = await asyncio.to_thread(docker.stop)
            await wait_for(lambda: _docker_reported(engine, "error"), timeout=10, what="Docker reported down")
            await asyncio.sleep(3.0)
            during = await engine.get_app(name)
            assert during.status == "running" and during.ready_replicas == REPLICAS
            assert "does not answer" in during.status_reason, during.status_reason
            await asyncio.to_thread(docker.start, True)
            back_at = time.monotonic()
            await wait_for(lambda: _docker_reported(engine, "ok"), timeout=15, what="Docker reported back")
            reconnected = time.monotonic() - back_at
            await asyncio.sleep(2.0)
        print(
            f"live-restore restart: dockerd stop took {down_for:.2f} s, engine saw Docker back after "
            f"{reconnected:.2f} s; {traffic.total} requests, {traffic.failures} failed"
        )
        assert traffic.total > 100
        assert traffic.failures == 0, (traffic.statuses, traffic.errors[-3:])
        after = sorted(c.id for c in await engine.runtime.list_managed(name))
        assert after == before
        assert slots.ids_seen == set(before)
        view = await engine.get_app(name)
        assert sorted(r.container_id for r in view.replicas) == before
        assert view.ready_replicas == REPLICAS
        # What followers and the CLI read: no longer blaming Docker once it answers.
        record = await asyncio.to_thread(engine.store.apps.get, name)
        assert record is not None and "does not answer" not in record.status_reason, record.status_reason
        kinds = Counter(e.kind for e in await engine.events(since=mark, limit=500))
        assert kinds["replica_started"] == 0 and kinds["replica_stopped"] == 0, kinds
        assert kinds["docker_unreachable"] == 1, kinds

        await assert_events_flow(engine, docker, name)
    print(f"worst event-loop lag: {lag.worst * 1000:.0f} ms")  # a figure: noisy on shared cores


async def _answer(url: str, status: int) -> tuple[int, str] | None:
    answer = await get_text(url)
    return answer if answer[0] == status else None


async def _docker_reported(engine: Engine, status: str) -> bool:
    health = await engine.health()
    return health["docker"]["status"] == status


async def test_engine_started_before_dockerd_brings_the_app_up_once_docker_answers(
    private_docker: PrivateDocker,  # noqa: F811
    tmp_path: Path,
    sqlite_database_url: str,
) -> None:
    docker = private_docker
    await asyncio.to_thread(docker.stop)
    async with engine_on(docker, tmp_path / "state", sqlite_database_url) as engine:
        assert (await engine.health())["docker"]["status"] == "error"
        name = unique_name("dkr")
        await engine.register(demo_app(name, healthCheck=SLOW_HEALTH))
        await engine.scale(name, REPLICAS)
        await engine.up(name)
        view = await engine.get_app(name)
        assert view.ready_replicas == 0 and "does not answer" in view.status_reason, view.status_reason

        await asyncio.to_thread(docker.start)
        back_at = time.monotonic()
        await wait_for(
            lambda: fully_ready(engine, docker, name), timeout=RECOVERY_BUDGET, what="app fully ready"
        )
        print(
            f"dockerd up → {REPLICAS} ready replicas of an app registered while it was down: "
            f"{time.monotonic() - back_at:.2f} s"
        )
        await assert_events_flow(engine, docker, name)


async def test_fast_health_checks_report_each_lost_replica_once_while_docker_is_down(
    private_docker: PrivateDocker,  # noqa: F811
    tmp_path: Path,
    sqlite_database_url: str,
) -> None:
    """With 1 s probes the replicas fail their checks long before Docker can replace them."""
    docker = private_docker
    async with engine_on(docker, tmp_path / "state", sqlite_database_url) as engine:
        name = unique_name("dkf")
        await engine.register(demo_app(name))  # periodSeconds 1, failureThreshold 2
        await engine.up(name)
        await engine.scale(name, REPLICAS)
        await wait_for(lambda: ready_is(engine, name, REPLICAS), timeout=30, what=f"{REPLICAS} ready")
        outage_started = time.time()
        await asyncio.to_thread(docker.stop)
        await asyncio.sleep(15.0)  # past every replica's start-up deadline (10 s)
        outage = Counter(e.kind for e in await engine.events(since=outage_started, limit=500))
        assert outage["replica_unhealthy"] <= REPLICAS, outage
        assert outage["replica_never_ready"] == 0, outage  # they were healthy: that is not the reason
        assert outage["docker_unreachable"] == 1, outage

        async with SlotWatch(docker, name) as slots:
            await asyncio.to_thread(docker.start)
            await wait_for(
                lambda: fully_ready(engine, docker, name), timeout=RECOVERY_BUDGET, what="app fully ready"
            )
        assert slots.most_running_per_slot == 1
        view = await engine.get_app(name)
        assert all(r.restarts == 0 for r in view.replicas), view.replicas  # Docker's stop is no crash


async def test_a_frozen_dockerd_is_reported_within_seconds_while_the_app_keeps_serving(
    private_docker: PrivateDocker,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with engine_on(private_docker, tmp_path / "state", f"sqlite:///{tmp_path}/o.db") as engine:
        name = await serving_app(engine)
        dockerd = int(private_docker.pid_file.read_text().strip())
        os.kill(dockerd, signal.SIGSTOP)  # hung, not gone: connections are accepted, nothing answers
        frozen_at = time.monotonic()
        try:
            await wait_for(lambda: engine.runtime_error, timeout=20, what="the hung daemon reported")
            noticed = time.monotonic() - frozen_at
            assert "no answer to a ping within 5 s" in engine.runtime_error
            # The containers run on: the engine stays responsive and the app keeps serving.
            view = await asyncio.wait_for(engine.get_app(name), 2)
            assert view.ready_replicas == REPLICAS
            status, body = await get_text(lb(engine, name))
            assert status == 200 and name in body
        finally:
            os.kill(dockerd, signal.SIGCONT)
        await wait_for(lambda: not engine.runtime_error, timeout=20, what="Docker reachable again")
        kinds = Counter(e.kind for e in await engine.events(category="error"))
        assert kinds["docker_unreachable"] == 1, kinds
        print(f"\nfrozen dockerd reported after {noticed:.1f} s")
