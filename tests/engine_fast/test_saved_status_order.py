"""The status the leader saves (what followers, the next leader and `orchestry --connect` to a follower
show) is the newest one, even when two saves of it end in the other order on the store's two write
threads (in-memory engine, fake clock)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import MemoryWorld, app_document, memory_world, unique_app


def save_degraded_after_running(world: MemoryWorld, monkeypatch: pytest.MonkeyPatch, app: str) -> None:
    """The app's first 'degraded' save waits until a 'running' one was saved: on a loaded host the
    save of the status a failed health check brought can end after the save of the status its
    replacement's passed check brought."""
    apps = world.engine.store.apps
    save = apps.save_status
    running_saved = threading.Event()
    held = False

    def save_in_that_order(name: str, status: str, reason: str) -> Any:
        nonlocal held
        if name == app and status == "degraded" and not held:
            held = True
            # Bounded: an engine that saves one status of an app at a time saves no other meanwhile,
            # so this wait runs out; one that lets saves overlap saves 'running' well within it.
            running_saved.wait(timeout=5)
        saved = save(name, status, reason)
        if name == app and status == "running":
            running_saved.set()
        return saved

    monkeypatch.setattr(apps, "save_status", save_in_that_order)


async def test_a_follower_shows_the_status_the_leader_reached_last(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = unique_app("status")
    await world.engine.register(app_document(name, replicas=2))
    await world.engine.up(name)
    await world.ready(name, 2)
    save_degraded_after_running(world, monkeypatch, name)
    failing = world.container(name, 1)
    world.runtime.set_health(failing.name, healthy=False)
    await world.settle(lambda: not failing.running, "the unhealthy replica replaced")
    await world.ready(name, 2)
    leader = await world.engine.get_app(name)
    assert (leader.status, leader.status_reason) == ("running", "2/2 replicas ready")
    async with memory_world(tmp_path / "state", runtime=world.runtime, clock=world.clock) as follower:

        async def follower_says_running() -> bool:
            view = await follower.engine.get_app(name)
            return (view.status, view.status_reason) == ("running", "2/2 replicas ready")

        await world.settle(follower_says_running, "the follower showing the leader's newest status")
