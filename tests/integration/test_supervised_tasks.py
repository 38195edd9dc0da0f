"""Per-app background tasks never end silently: a failure is logged and the task restarted, later each
time it fails again in a row (the engine's own tasks run under core.supervisor the same way).

The real engine on the in-memory runtime and a fake clock (tests/support/world.py); a failure is
injected where no error handling of the task's own catches it (a bug, not an outage).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.health import HealthCheck
from core.supervisor import DEFAULT_BACKOFF
from testkit.harness import wait_for
from tests.support.world import MemoryWorld, app_document, memory_world, unique_app


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[MemoryWorld]:
    async with memory_world(tmp_path / "state") as started:
        yield started


async def _running(world: MemoryWorld, replicas: int) -> str:
    name = unique_app("sup")
    await world.engine.register(app_document(name, replicas=replicas))
    await world.engine.up(name)
    await world.ready(name, replicas)
    return name


async def test_a_reconcile_worker_that_fails_outside_a_pass_is_logged_and_carries_on(
    world: MemoryWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, the worker's task ended with the exception (nothing logged until garbage collection),
    and the app's scale requests went unserved until the safety net noticed, a third of a relist
    interval later."""
    name = await _running(world, 1)
    reconciler = world.engine.reconciler
    state = reconciler.apps[name]
    real = state.next_retry_in
    failed: list[float] = []

    def failing_once(now: float) -> float | None:
        if not failed:
            failed.append(now)
            raise RuntimeError("a bug between two passes")
        return real(now)

    state.next_retry_in = failing_once  # type: ignore[method-assign]
    caplog.set_level(logging.ERROR, logger="core.supervisor")
    reconciler.wake(name)  # its pass runs, then the next round fails before it waits

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if f"reconcile:{name}" in r.getMessage()]

    messages = await wait_for(logged, timeout=30, interval=0.01, what="the failure to be logged")
    assert "failed; restarting in" in messages[0], messages
    assert not reconciler._workers[name].done(), "the worker ended with the failure"
    await world.engine.scale(name, 3)
    await world.ready(name, 3)


async def test_a_failing_probe_loop_is_restarted_later_each_time(
    world: MemoryWorld, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug hit on every probe: one traceback per replica each second before; now each restart of the
    replica's loop waits the next delay of the supervisor's backoff."""
    name = await _running(world, 1)
    health = world.engine.reconciler.health
    real_probe = health.probe
    calls: list[int] = []

    async def broken(host: str, port: int, check: HealthCheck | None, container_port: int | None) -> Any:
        calls.append(port)
        if len(calls) <= 4:
            raise RuntimeError("a bug in the probe")
        return await real_probe(host, port, check, container_port)

    monkeypatch.setattr(health, "probe", broken)
    caplog.set_level(logging.ERROR, logger="core.health")
    (container_id,) = world.engine.reconciler.apps[name].replicas
    health.rearm(container_id)  # a fresh loop, which probes at once

    def restarts() -> list[str]:
        return [r.getMessage() for r in caplog.records if "health probe loop" in r.getMessage()]

    await world.settle(lambda: len(restarts()) >= 4, "four failed probe loops")
    delays = [message.rsplit("restarting it in ", 1)[1] for message in restarts()[:4]]
    assert delays == [f"{delay:.1f} s" for delay in DEFAULT_BACKOFF[:4]], restarts()
    # The fifth loop's probe works: the replica stays ready, probed on.
    await world.settle(lambda: len(calls) >= 6, "the probes to go on after the restarts")
    assert health.target(container_id) is not None and health.target(container_id).ready
