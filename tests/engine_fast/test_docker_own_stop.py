"""Docker's own stop is no crash.  A dockerd stopping without live-restore removes its socket first,
then stops every container, and keeps answering on the connections it already has while it does: a
pass whose listing goes over such a kept connection sees the replicas exited before any call failed.
They stopped with Docker (replaced without back-off once it answers), not crashed (restarts counted,
back-off) as the full chaos run found (test_fast_health_checks_report_each_lost_replica_once...)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from core.errors import RuntimeUnavailable
from core.runtime.memory import MemoryRuntime
from tests.support.clock import FakeClock
from tests.support.world import MemoryWorld, app_document, memory_world, unique_app

REPLICAS = 3
SIGTERM_EXIT_CODE = 143  # what a replica run with init exits with when dockerd stops it


class StoppingDocker(MemoryRuntime):
    """The in-memory engine with a socket that can go away before the engine itself does: while
    ``accepting`` is false a fresh connection (the ping) fails, and calls over kept connections (the
    listing) are still answered until one call has failed to connect (the runtime then closes its
    pool: every later call needs a new connection)."""

    accepting = True

    async def ping(self) -> None:
        if not self.accepting:
            self.available = False  # the pool closed
            raise RuntimeUnavailable("Docker engine does not answer (No such file or directory)")
        await super().ping()


async def test_replicas_dockerd_stops_on_its_way_out_are_stopped_with_docker_not_crashed(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    docker = StoppingDocker(clock=clock.time)
    async with memory_world(tmp_path / "state", runtime=docker, clock=clock) as world:
        name = unique_app("own")
        await world.engine.register(app_document(name, replicas=REPLICAS))
        await world.engine.up(name)
        await world.ready(name, REPLICAS)
        originals = {c.name: c.id for c in docker.running(name)}

        # dockerd stops: the socket goes first, then it stops each replica; its die events arrive and
        # the passes they wake list the exited containers over a connection kept from before.
        docker.accepting = False
        for container in docker.running(name):
            docker.crash(container.name, exit_code=SIGTERM_EXIT_CODE)
        await world.settle(lambda: _passes_saw_them(world), "a pass to find the replicas exited")
        # Then it is gone altogether, and comes back (its exited containers with it).
        docker.available = False
        for _ in range(20):  # 2 s: passes and probes fail meanwhile
            await world.clock.advance(0.1)
            await asyncio.sleep(0.01)  # real time: store calls run in threads
        docker.available = docker.accepting = True
        world.engine.reconciler.wake_all()
        await world.settle(lambda: _replaced(world, name, originals), f"{REPLICAS} new replicas routed")

        view = await world.engine.get_app(name)
        assert [r.restarts for r in view.replicas] == [0] * REPLICAS, view.replicas
        events = await world.engine.events(app=name, limit=500)
        kinds = Counter(e.kind for e in events)
        assert kinds["replica_crashed"] == 0, [e.message for e in events if e.kind == "replica_crashed"]
        assert kinds["replicas_stopped_with_docker"] >= 1, kinds


async def _passes_saw_them(world: MemoryWorld) -> bool:
    """Docker reported down (the death was not counted) or a crash counted (the old code)."""
    kinds = {e.kind for e in await world.engine.events(limit=500)}
    return bool(kinds & {"docker_unreachable", "replica_crashed"})


async def _replaced(world: MemoryWorld, name: str, originals: dict[str, str]) -> bool:
    running = world.runtime.running(name)
    return (
        len(running) == REPLICAS
        and not {c.id for c in running} & set(originals.values())
        and world.routed_slots(name) == sorted(c.slot for c in running)
    )
