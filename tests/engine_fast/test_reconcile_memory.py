"""The real engine on the in-memory runtime and a fake clock: what real Docker and real time cannot
reach quickly (adoption, crash back-off, rolling and drain order, status transitions, races)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from core.errors import Conflict
from core.events import EventLog
from core.models import (
    APP_DEGRADED,
    APP_RUNNING,
    APP_STOPPED,
    REPLICA_CRASHLOOP,
    REPLICA_FAILED,
    Event,
    ReplicaView,
)
from core.runtime.memory import MemoryContainer
from tests.support.world import MemoryWorld, app_document, memory_world, unique_app


def creates(world: MemoryWorld, app: str) -> list[str]:
    return [entry[1] for entry in world.journal if entry[0] == "create" and entry[1].startswith(f"{app}-")]


def stops(world: MemoryWorld, app: str) -> list[str]:
    return [entry[1] for entry in world.journal if entry[0] == "stop" and entry[1].startswith(f"{app}-")]


# --- adoption after a controller restart ---------------------------------------------------------


async def test_restarted_controller_adopts_running_replicas_and_creates_nothing_twice(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    async with memory_world(state, stop_apps=False) as first:
        name = await first.started("m", 3)
        ids = {c.slot: c.id for c in first.runtime.running(name)}
    runtime, clock = first.runtime, first.clock
    before = list(runtime.journal)
    async with memory_world(state, runtime=runtime, clock=clock) as second:
        await second.ready(name, 3)
        view = await second.engine.get_app(name)
        assert view.status == APP_RUNNING
        assert {r.slot: r.container_id for r in view.replicas} == ids
        after = runtime.journal[len(before) :]
        assert not [e for e in after if e[0] in ("create", "stop", "remove")], after
        kinds = [e.kind for e in await second.engine.events(app=name)]
        assert "replicas_adopted" in kinds


async def test_events_since_a_restarted_controller_started_show_its_adoption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded Docker answers the start-up ping after the new leader's first pass adopted the replicas
    (that pass begins when the election is won, inside start): the adoption is still among the events
    since the engine started, as a user asking for them expects."""
    state = tmp_path / "state"
    async with memory_world(state, stop_apps=False) as first:
        name = await first.started("m", 3)
    adopted = asyncio.Event()
    emit = EventLog.emit

    async def noting_adoption(self: EventLog, *args: Any, **kwargs: Any) -> Event:
        event = await emit(self, *args, **kwargs)
        if event.kind == "replicas_adopted":
            adopted.set()
        return event

    async def ping_after_adoption() -> None:
        await asyncio.wait_for(adopted.wait(), 30)

    monkeypatch.setattr(EventLog, "emit", noting_adoption)
    monkeypatch.setattr(first.runtime, "ping", ping_after_adoption)
    async with memory_world(state, runtime=first.runtime, clock=first.clock) as second:
        kinds = [e.kind for e in await second.engine.events(app=name, since=second.engine.started_at)]
        assert "replicas_adopted" in kinds, kinds


async def test_restarted_controller_replaces_only_the_replica_that_died_meanwhile(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with memory_world(state, stop_apps=False) as first:
        name = await first.started("m", 3)
    first.runtime.crash(f"{name}-2", exit_code=3)  # dies while no controller runs
    made = len(creates(first, name))
    async with memory_world(state, runtime=first.runtime, clock=first.clock) as second:
        await second.ready(name, 3)
        assert creates(second, name)[made:] == [f"{name}-2"]
        assert second.running_slots(name) == [1, 2, 3]


# --- crash back-off ----------------------------------------------------------------------------


async def test_crash_back_off_doubles_and_reports_crash_loop(world: MemoryWorld) -> None:
    name = unique_app()
    world.runtime.on_create = _not_listening  # never proves healthy: the back-off is never forgiven
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    reconciler = world.engine.reconciler
    # The first crash is replaced at once, then after 1, 2, 4, 8 s; from the third, CrashLoopBackOff.
    for crash, delay in enumerate([0.0, 1.0, 2.0, 4.0, 8.0], start=1):
        old = world.container(name, 1).id
        world.runtime.crash(f"{name}-1", exit_code=1, message=f"boom {crash}")
        await reconciler.reconcile_now(name)  # the pass that finds it dead
        if delay:
            assert world.runtime.running(name) == [], f"recreated at once after crash {crash}"
            await world.clock.advance(delay - 0.05)
            await reconciler.reconcile_now(name)
            assert world.runtime.running(name) == [], f"recreated before {delay} s after crash {crash}"
            view = await _slot_state(world, name, 1)
            assert view is not None and "exited with code 1" in view.reason and f"boom {crash}" in view.reason
            assert view.state == (REPLICA_CRASHLOOP if crash >= 3 else REPLICA_FAILED), (crash, view)
            assert (await world.engine.get_app(name)).status == APP_DEGRADED
            await world.clock.advance(0.1)
        # Nobody asks: the worker wakes by itself when the back-off ends.
        await world.settle(
            lambda old=old: any(c.id != old for c in world.runtime.running(name)),
            f"slot 1 recreated after crash {crash}",
        )
    messages = [e.message for e in await world.engine.events(app=name) if e.kind == "replica_crashed"]
    assert sum("CrashLoopBackOff" in m for m in messages) == 3, messages  # crashes 3, 4 and 5


def _not_listening(container: MemoryContainer) -> None:
    container.listening = False


async def _slot_state(world: MemoryWorld, app: str, slot: int) -> ReplicaView | None:
    view = await world.engine.get_app(app)
    return next((r for r in view.replicas if r.slot == slot), None)


async def test_a_replica_that_turns_healthy_ends_its_back_off(world: MemoryWorld) -> None:
    name = await world.started("m", 1)
    # Each crash follows a healthy replica, so each is a first crash again: replaced without waiting
    # (without the reset the third would wait 2 s in CrashLoopBackOff).
    for crash in range(1, 4):
        old = world.container(name, 1).id
        world.runtime.crash(f"{name}-1")
        await world.engine.reconciler.reconcile_now(name)
        assert [c.id != old for c in world.runtime.running(name)] == [True], f"crash {crash}"
        await world.ready(name, 1)


# --- rolling update ------------------------------------------------------------------------------


async def test_rolling_update_surges_into_lowest_free_slot_and_never_drops_capacity(
    world: MemoryWorld,
) -> None:
    name = await world.started("m", 3)
    mark = len(world.journal)
    old_hash = world.container(name, 1).labels["orchestry.spec-hash"]
    await world.engine.register(
        app_document(name, replicas=3, environment=[{"name": "VERSION", "value": "2"}])
    )

    def rolled() -> bool:
        running = world.runtime.running(name)
        return (
            len(running) == 3
            and all(c.labels["orchestry.spec-hash"] != old_hash for c in running)
            and len(world.routed_slots(name)) == 3
        )

    await world.settle(rolled, "every replica on the new spec")
    journal = world.journal[mark:]
    assert creates(world, name)[-3:] == [f"{name}-4", f"{name}-3", f"{name}-2"]
    assert [e[1] for e in journal if e[0] == "stop"] == [f"{name}-3", f"{name}-2", f"{name}-1"]
    routed_counts = [len(e[2].split(",")) if e[2] else 0 for e in journal if e[0] == "route"]
    assert routed_counts and min(routed_counts) >= 3, routed_counts
    assert world.running_slots(name) == [2, 3, 4]


# --- drain order on scale-in -------------------------------------------------------------------------


async def test_scale_in_drains_highest_slots_unrouted_before_stopped(world: MemoryWorld) -> None:
    name = await world.started("m", 4)
    ports = {c.slot: c.request.host_port for c in world.runtime.running(name)}
    mark = len(world.journal)
    await world.engine.scale(name, 2)
    await world.settle(lambda: world.running_slots(name) == [1, 2], "slots 3 and 4 gone")
    journal = world.journal[mark:]
    unrouted_at = next(
        i
        for i, e in enumerate(journal)
        if e[0] == "route" and str(ports[3]) not in e[2] and str(ports[4]) not in e[2]
    )
    for slot in (3, 4):
        drained_at = journal.index(("drained", str(ports[slot])))
        stopped_at = journal.index(("stop", f"{name}-{slot}"))
        assert unrouted_at < drained_at < stopped_at, journal
    assert world.routed_slots(name) == [1, 2]
    assert world.runtime.find(f"{name}-3") is None and world.runtime.find(f"{name}-4") is None


async def test_scale_in_removes_an_unhealthy_replica_before_a_healthy_one(world: MemoryWorld) -> None:
    name = await world.started("m", 4)
    world.runtime.on_create = _unhealthy  # slot 2's replacement does not turn healthy either
    world.runtime.set_health(f"{name}-2", healthy=False)
    await world.settle(lambda: world.routed_slots(name) == [1, 3, 4], "slot 2 unrouted")
    await world.engine.scale(name, 3)
    await world.settle(lambda: world.running_slots(name) == [1, 3, 4], "slot 2 removed")
    assert f"{name}-4" not in stops(world, name)


# --- status transitions ----------------------------------------------------------------------------


async def test_status_goes_running_degraded_running_stopped(world: MemoryWorld) -> None:
    name = await world.started("m", 2)
    app = await world.engine.get_app(name)
    assert (app.status, app.status_reason) == (APP_RUNNING, "2/2 replicas ready")

    world.runtime.on_create = _unhealthy  # its replacement does not turn healthy either, for now
    world.runtime.set_health(f"{name}-1", healthy=False)
    degraded = await world.settle(
        lambda: _status_is(world, name, APP_DEGRADED), "degraded while slot 1 fails its checks"
    )
    assert degraded.status_reason.startswith("1/2 replicas ready"), degraded.status_reason

    world.runtime.on_create = None
    for container in world.runtime.running(name):
        container.healthy = True
    await world.settle(lambda: _status_is(world, name, APP_RUNNING), "running again once replaced")
    assert world.running_slots(name) == [1, 2]

    async def announced() -> list[str]:
        said = [e for e in reversed(await world.engine.events(app=name)) if e.kind == "status_changed"]
        return [(e.details or {}).get("to", "") for e in said]

    await world.settle(
        lambda: _ends_with(announced(), [APP_DEGRADED, APP_RUNNING]), "degraded then running announced"
    )

    await world.engine.down(name)
    stopped = await world.engine.get_app(name)
    assert stopped.status == APP_STOPPED and world.runtime.running(name) == []
    saved = await asyncio.to_thread(world.engine.store.apps.get, name)
    assert saved is not None and saved.status == APP_STOPPED


async def _ends_with(values: Awaitable[list[str]], tail: list[str]) -> bool:
    return (await values)[-len(tail) :] == tail


def _unhealthy(container: MemoryContainer) -> None:
    container.healthy = False


async def _status_is(world: MemoryWorld, app: str, status: str) -> object:
    view = await world.engine.get_app(app)
    return view if view.status == status else None


# --- two operations racing on one app --------------------------------------------------------------


async def test_down_wins_over_a_concurrent_scale(world: MemoryWorld) -> None:
    for first_down in (False, True):
        name = await world.started("m", 2)
        operations = [world.engine.scale(name, 5), world.engine.down(name)]
        if first_down:
            operations.reverse()
        await asyncio.gather(*operations)
        await world.clock.advance(60)  # any pass still due runs now
        await world.engine.reconciler.reconcile_now(name)
        assert world.runtime.running(name) == [], f"down first: {first_down}"
        assert world.nginx.servers(name) == []
        assert (await world.engine.get_app(name)).status == APP_STOPPED


async def test_down_wins_over_a_concurrent_restart(world: MemoryWorld) -> None:
    name = await world.started("m", 2)
    results = await asyncio.gather(
        world.engine.restart(name), world.engine.down(name), return_exceptions=True
    )
    # The restart may come second and be refused ("app is stopped"): a refusal is fine, a failure is not.
    assert all(not isinstance(r, BaseException) or isinstance(r, Conflict) for r in results), results
    await world.clock.advance(60)
    await world.engine.reconciler.reconcile_now(name)
    assert world.runtime.running(name) == []
    assert (await world.engine.get_app(name)).status == APP_STOPPED


async def test_delete_right_after_down_always_returns(world: MemoryWorld) -> None:
    # A pass in flight when the app was deleted used to end its worker without answering the delete's
    # own request for a pass: the delete then hung until its 125 s timeout (a 500 from the API).
    for attempt in range(25):
        name = unique_app()
        await world.engine.register(app_document(name, replicas=1))
        await world.engine.up(name)  # not waited for: its replica's health events race the delete
        await world.engine.down(name)
        await asyncio.wait_for(world.engine.delete(name), 30)  # a hang guard, not a speed claim
        assert world.runtime.running(name) == [], attempt


async def test_a_crash_docker_lists_late_is_replaced_without_waiting_for_the_health_checks(
    world: MemoryWorld,
) -> None:
    """Docker sends a container's die event before its list shows the container stopped: the pass the
    event wakes may still list it running.  The replica is listed again shortly and replaced then, not
    only once its health checks fail (here failureThreshold 2 × periodSeconds 1 = 2 s later)."""
    name = await world.started("m", 2)
    dead = world.container(name, 1).id
    world.runtime.listed_running.add(dead)
    world.runtime.crash(f"{name}-1", exit_code=137)
    await world.settle(lambda: world.routed_slots(name) == [2], "the dead replica unrouted", step=0.01)
    await world.clock.advance(0.01)
    await asyncio.sleep(0.05)  # the pass the event woke has listed it running
    assert world.container(name, 1).id == dead
    world.runtime.listed_running.discard(dead)  # Docker has saved its state now (no event says so)

    def replaced() -> bool:
        # The dead container is removed before its replacement is created under the same name: while
        # the name is free the replacement is under way, so wait on (world.container() would fail).
        new = world.runtime.find(f"{name}-1")
        return new is not None and new.id != dead

    await world.settle(replaced, "the replica replaced", step=0.05, limit=10)


async def test_a_signal_the_replica_survives_unroutes_it_only_until_it_passes_its_checks_again(
    world: MemoryWorld,
) -> None:
    """``docker kill -s HUP`` (a config reload) makes Docker send a "kill" event: the replica is unrouted
    at once, as a SIGTERM/SIGKILL would stop it, but it keeps running.  Once Docker still lists it
    running after the event's grace, it is probed afresh and routed again: same container, no
    replacement, no restart counted."""
    name = await world.started("m", 2)
    signalled = world.container(name, 1).id
    made, stopped = len(creates(world, name)), len(stops(world, name))
    world.runtime.signal(f"{name}-1", "SIGHUP")
    await world.settle(lambda: world.routed_slots(name) == [2], "the signalled replica unrouted", step=0.01)
    await world.settle(
        lambda: world.routed_slots(name) == [1, 2], "the signalled replica routed again", limit=60
    )
    assert world.container(name, 1).id == signalled
    assert len(creates(world, name)) == made and len(stops(world, name)) == stopped
    view = await world.engine.get_app(name)
    replica = next(r for r in view.replicas if r.slot == 1)
    assert (replica.container_id, replica.ready, replica.restarts, replica.reason) == (signalled, True, 0, "")
    assert view.status == APP_RUNNING
    messages = [e.message for e in await world.engine.events(app=name) if e.kind == "replica_survived_signal"]
    assert messages == [f"replica {name}-1 is still running after a kill signal: routed again once healthy"]


async def test_a_signal_survivor_is_said_to_survive_before_it_is_routed_again(world: MemoryWorld) -> None:
    """On a loaded host the event's store write can take longer than the replica's next probe: the
    event is saved before the replica is probed again, so it is there once the replica is routed again
    and the log never reads "healthy and routed" before "still running after a kill signal"."""
    name = await world.started("m", 2)
    add = world.engine.store.events.add

    def slow_add(app: str | None, category: str, kind: str, *rest: Any) -> int:
        if kind == "replica_survived_signal":
            time.sleep(0.5)  # a store write on a loaded host (runs in a thread: the loop goes on)
        return add(app, category, kind, *rest)

    world.engine.store.events.add = slow_add  # type: ignore[method-assign]
    world.runtime.signal(f"{name}-1", "SIGHUP")
    await world.settle(lambda: world.routed_slots(name) == [2], "the signalled replica unrouted", step=0.01)
    await world.settle(lambda: world.routed_slots(name) == [1, 2], "the signalled replica routed again")
    # Saved before it was probed again, so before the "healthy and routed" that follows it (whose own
    # write comes after the routing: it may not be saved yet).
    kinds = [e.kind for e in await world.engine.events(app=name)]
    assert "replica_survived_signal" in kinds, kinds
