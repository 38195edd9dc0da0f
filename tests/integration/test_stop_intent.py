"""A stop's intent (forced or not) belongs to the request that asked for it, not to the app.

Two operations on one app at once must each get what they asked for: a plain ``down`` racing a
``down --force`` must not turn the forced one into a drain with the full grace period.
"""

from __future__ import annotations

import asyncio

import pytest

from core.engine import Engine
from core.reconciler import FORCE_STOP_SECONDS
from tests.conftest import unique_name
from tests.integration.harness import demo_app, ready_is, wait_for

GRACE_SECONDS = 30


async def test_a_forced_down_stays_forced_when_a_plain_down_races_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("force")
    doc = demo_app(name)
    doc["spec"]["terminationGracePeriodSeconds"] = GRACE_SECONDS
    await engine.register(doc)
    await engine.up(name)
    await engine.scale(name, 2)
    await wait_for(lambda: ready_is(engine, name, 2), timeout=30, what="2 ready replicas")

    # Docker still stops the containers; the spy only notes the grace period each stop was given.
    grace: list[float] = []
    docker_stop = engine.runtime.stop

    async def noting_stop(container_id: str, timeout: float) -> None:
        grace.append(timeout)
        await docker_stop(container_id, timeout=timeout)

    monkeypatch.setattr(engine.runtime, "stop", noting_stop)
    await asyncio.gather(engine.down(name, force=True), engine.down(name))

    assert await engine.runtime.list_managed(name) == []
    assert grace == [FORCE_STOP_SECONDS, FORCE_STOP_SECONDS], "the forced stop was drained instead"
    events = await engine.events(app=name, category="lifecycle")
    assert any(e.kind == "app_down" and "(forced)" in e.message for e in events)


async def test_a_plain_down_gives_replicas_their_grace_period(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("grace")
    doc = demo_app(name)
    doc["spec"]["terminationGracePeriodSeconds"] = GRACE_SECONDS
    await engine.register(doc)
    await engine.up(name)
    await wait_for(lambda: ready_is(engine, name, 1), timeout=30, what="a ready replica")
    grace: list[float] = []
    docker_stop = engine.runtime.stop

    async def noting_stop(container_id: str, timeout: float) -> None:
        grace.append(timeout)
        await docker_stop(container_id, timeout=timeout)

    monkeypatch.setattr(engine.runtime, "stop", noting_stop)
    assert await engine.down(name) == 1
    assert grace == [GRACE_SECONDS]
