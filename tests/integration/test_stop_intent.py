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


async def started(engine: Engine, prefix: str, replicas: int, **spec: object) -> str:
    """A demo app with the long grace period (and ``spec``'s fields) and ``replicas`` ready."""
    name = unique_name(prefix)
    doc = demo_app(name)
    doc["spec"]["terminationGracePeriodSeconds"] = GRACE_SECONDS
    doc["spec"].update(spec)
    await engine.register(doc)
    await engine.up(name)
    if replicas != 1:
        await engine.scale(name, replicas)
    await wait_for(lambda: ready_is(engine, name, replicas), timeout=30, what=f"{replicas} ready replicas")
    return name


def noting_grace(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The grace period of each stop asked of Docker from now on; Docker still stops the containers."""
    grace: list[float] = []
    docker_stop = engine.runtime.stop

    async def noting_stop(container_id: str, timeout: float) -> None:
        grace.append(timeout)
        await docker_stop(container_id, timeout=timeout)

    monkeypatch.setattr(engine.runtime, "stop", noting_stop)
    return grace


async def test_a_forced_down_stays_forced_when_a_plain_down_races_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await started(engine, "force", 2)
    grace = noting_grace(engine, monkeypatch)
    await asyncio.gather(engine.down(name, force=True), engine.down(name))

    assert await engine.runtime.list_managed(name) == []
    assert grace == [FORCE_STOP_SECONDS, FORCE_STOP_SECONDS], "the forced stop was drained instead"
    events = await engine.events(app=name, category="lifecycle")
    assert any(e.kind == "app_down" and "(forced)" in e.message for e in events)


async def test_a_plain_down_gives_replicas_their_grace_period(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await started(engine, "grace", 1)
    grace = noting_grace(engine, monkeypatch)
    assert await engine.down(name) == 1
    assert grace == [GRACE_SECONDS]


async def test_a_forced_down_cuts_short_a_plain_down_already_stopping(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``down --force`` typed while a plain down waits out the spec's grace period: the replicas go
    within the force grace, and the forced down returns then, not when the plain grace ends."""
    # Ignores SIGTERM (the ignore survives exec): only Docker's kill when a grace period runs out stops it.
    name = await started(engine, "cut", 2, command=["sh", "-c", "trap '' TERM; exec /bin/serve"])
    grace = noting_grace(engine, monkeypatch)
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
    assert [e.details for e in events if e.kind == "stop_forced"] == [{"replicas": 2}]
    assert [e.message for e in events if e.category == "error" or e.kind == "replica_crashed"] == []
    view = await engine.get_app(name)
    assert (view.status, view.replicas) == ("stopped", []), view
