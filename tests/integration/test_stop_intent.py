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


async def test_a_forced_down_cuts_short_a_plain_down_already_stopping(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``down --force`` typed while a plain down waits out the spec's grace period: the replicas go
    within the force grace, and the forced down returns then, not when the plain grace ends."""
    name = unique_name("cut")
    doc = demo_app(name)
    doc["spec"]["terminationGracePeriodSeconds"] = GRACE_SECONDS
    # Ignores SIGTERM (the ignore survives exec): only Docker's kill when a grace period runs out stops it.
    doc["spec"]["command"] = ["sh", "-c", "trap '' TERM; exec /bin/serve"]
    await engine.register(doc)
    await engine.up(name)
    await engine.scale(name, 2)
    await wait_for(lambda: ready_is(engine, name, 2), timeout=30, what="2 ready replicas")

    grace: list[float] = []
    docker_stop = engine.runtime.stop

    async def noting_stop(container_id: str, timeout: float) -> None:
        grace.append(timeout)
        await docker_stop(container_id, timeout=timeout)

    monkeypatch.setattr(engine.runtime, "stop", noting_stop)
    loop = asyncio.get_running_loop()
    plain = asyncio.create_task(engine.down(name))
    await wait_for(lambda: len(grace) == 2, timeout=20, what="the plain down's stops under way")
    stops_began = loop.time()

    forced = await engine.down(name, force=True)

    # A generous bound far below the grace: without the cut the forced down returned after it.
    assert loop.time() - stops_began < GRACE_SECONDS - 5, "the forced down waited out the plain grace"
    assert await engine.runtime.list_managed(name) == []
    assert sorted(grace) == [FORCE_STOP_SECONDS] * 2 + [GRACE_SECONDS] * 2
    assert forced == 2, "the forced down did not count the replicas it stopped"
    # The plain down ends as well, cleanly: both replicas stopped once, the app stopped, no error.
    await asyncio.wait_for(plain, timeout=10)
    events = await engine.events(app=name)
    assert [e.kind for e in events if e.kind == "replica_stopped"] == ["replica_stopped"] * 2
    assert [e.message for e in events if e.category == "error" or e.kind == "replica_crashed"] == []
    view = await engine.get_app(name)
    assert (view.status, view.replicas) == ("stopped", []), view
