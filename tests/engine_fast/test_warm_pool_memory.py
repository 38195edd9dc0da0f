"""scaling.warmPool on the in-memory runtime: containers kept created but not started, used by a
scale-out, refilled, replaced on a spec change, removed on down and delete, adopted after a restart,
and never counted, listed or routed as replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Container
from pathlib import Path

import pytest

from core.errors import RuntimeUnavailable
from core.runtime.base import ContainerInfo, ContainerRequest
from core.runtime.memory import MemoryRuntime
from core.runtime.ports import PortsExhausted
from tests.support.clock import FakeClock
from tests.support.offline_edit import set_warm_pool_offline
from tests.support.world import MemoryWorld, app_document, memory_world, unique_app


def warm_document(name: str, replicas: int, pool: int, **spec: object) -> dict[str, object]:
    document = app_document(name, replicas=replicas, **spec)
    document["scaling"]["warmPool"] = pool  # type: ignore[index]
    return document


async def pool_of(world: MemoryWorld, app: str) -> list[ContainerInfo]:
    return await world.runtime.list_warm(app)


async def with_pool(world: MemoryWorld, replicas: int, pool: int) -> str:
    name = unique_app("w")
    await world.engine.register(warm_document(name, replicas, pool))
    await world.engine.up(name)
    await world.ready(name, replicas)
    await world.settle(lambda: _count(world, name, pool), f"a warm pool of {pool}")
    return name


async def _count(world: MemoryWorld, app: str, count: int) -> bool:
    return len(await pool_of(world, app)) == count


def journal_of(world: MemoryWorld, app: str, since: int = 0) -> list[tuple[str, ...]]:
    return [e for e in world.journal[since:] if len(e) > 1 and e[1].startswith(f"{app}-")]


async def test_the_pool_is_filled_and_never_counted_listed_or_routed(world: MemoryWorld) -> None:
    name = await with_pool(world, replicas=2, pool=3)
    pool = await pool_of(world, name)
    assert all(c.state == "created" for c in pool)
    view = await world.engine.get_app(name)
    assert len(view.replicas) == 2 and view.ready_replicas == 2
    assert len(await world.runtime.list_managed(name)) == 2
    assert world.routed_slots(name) == world.running_slots(name) == [1, 2]
    assert {c.slot for c in pool}.isdisjoint({1, 2})


async def test_a_scale_out_starts_pool_members_then_the_pool_is_refilled(world: MemoryWorld) -> None:
    name = await with_pool(world, replicas=1, pool=3)
    warm_ids = {c.id for c in await pool_of(world, name)}
    mark = len(world.journal)
    await world.engine.scale(name, 4)
    await world.ready(name, 4)
    running = {c.id for c in world.runtime.running(name)}
    assert warm_ids <= running  # the three new replicas are the pool's containers
    kinds = [e[0] for e in journal_of(world, name, mark)]
    assert "create" not in kinds and kinds.count("start_warm") == 3
    assert world.routed_slots(name) == world.running_slots(name)
    await world.settle(lambda: _count(world, name, 3), "the pool refilled to 3")
    assert {c.id for c in await pool_of(world, name)}.isdisjoint(running)


async def test_a_scale_out_beyond_the_pool_creates_the_rest(world: MemoryWorld) -> None:
    name = await with_pool(world, replicas=1, pool=2)
    mark = len(world.journal)
    await world.engine.scale(name, 5)
    await world.ready(name, 5)
    kinds = [e[0] for e in journal_of(world, name, mark)]
    assert kinds.count("start_warm") == 2 and kinds.count("create") == 2
    assert len(set(world.running_slots(name))) == 5


async def test_a_spec_change_replaces_the_pool(world: MemoryWorld) -> None:
    name = await with_pool(world, replicas=1, pool=2)
    old = {c.id for c in await pool_of(world, name)}
    await world.engine.register(warm_document(name, 1, 2, environment=[{"name": "V", "value": "2"}]))

    async def replaced() -> bool:
        pool = await pool_of(world, name)
        return len(pool) == 2 and not old & {c.id for c in pool}

    await world.settle(replaced, "a pool of the new spec")
    assert not old & set(world.runtime.containers)  # the old members are removed, not left behind
    for info in await pool_of(world, name):
        assert world.runtime.containers[info.id].request.environment.get("V") == "2"


async def test_a_smaller_pool_drops_members_and_zero_removes_it(world: MemoryWorld) -> None:
    name = await with_pool(world, replicas=1, pool=3)
    await world.engine.register(warm_document(name, 1, 1))
    await world.settle(lambda: _count(world, name, 1), "the pool shrunk to 1")
    await world.engine.register(warm_document(name, 1, 0))
    await world.settle(lambda: _count(world, name, 0), "the pool removed")


async def test_down_and_delete_remove_the_pool(world: MemoryWorld) -> None:
    name = await with_pool(world, replicas=1, pool=2)
    await world.engine.down(name)
    await world.settle(lambda: _count(world, name, 0), "no pool once down")
    await world.engine.up(name)
    await world.ready(name, 1)
    await world.settle(lambda: _count(world, name, 2), "the pool back after up")
    await world.engine.delete(name)
    assert await pool_of(world, name) == []
    assert [c for c in world.runtime.containers.values() if c.app == name] == []


async def test_a_restarted_controller_adopts_the_pool(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with memory_world(state, stop_apps=False) as first:
        name = await with_pool(first, replicas=1, pool=2)
        pool = {c.id for c in await pool_of(first, name)}
    mark = len(first.journal)
    async with memory_world(state, runtime=first.runtime, clock=first.clock) as second:
        await second.ready(name, 1)
        await second.engine.scale(name, 3)
        await second.ready(name, 3)
        assert pool <= {c.id for c in second.runtime.running(name)}  # the adopted pool served it
        kinds = [e[0] for e in journal_of(second, name, mark)]
        assert "create" not in kinds and "remove" not in kinds


@pytest.mark.parametrize("lowered", [1, 0])
async def test_a_pool_lowered_while_no_controller_ran_is_cut_down_on_adoption(
    tmp_path: Path, lowered: int
) -> None:
    state = tmp_path / "state"
    async with memory_world(state, stop_apps=False) as first:
        name = await with_pool(first, replicas=1, pool=3)
        pool = {c.id for c in await pool_of(first, name)}
        database_url = first.engine.settings.database_url
    set_warm_pool_offline(database_url, name, lowered)
    mark = len(first.journal)
    async with memory_world(state, runtime=first.runtime, clock=first.clock) as second:
        await second.ready(name, 1)
        await second.settle(lambda: _count(second, name, lowered), f"the pool cut to {lowered}")
        await second.engine.reconciler.reconcile_now(name)
        left = {c.id for c in await pool_of(second, name)}
        assert len(left) == lowered and left <= pool  # the rest kept, nothing re-created
        kinds = [e[0] for e in journal_of(second, name, mark)]
        assert kinds.count("remove") == 3 - lowered and "create_warm" not in kinds
        events = [e for e in await second.engine.events(app=name) if e.kind == "warm_pool_shrunk"]
        assert len(events) == 1 and f"removed {3 - lowered}" in events[0].message


async def test_a_crashed_replica_is_replaced_in_its_slot_not_from_the_pool(world: MemoryWorld) -> None:
    """Its crash back-off counts per slot: a pool member in a fresh slot would start it over."""
    name = await with_pool(world, replicas=1, pool=2)
    warm = {c.id for c in await pool_of(world, name)}
    mark = len(world.journal)
    world.runtime.crash(f"{name}-1", exit_code=1)
    await world.engine.reconciler.reconcile_now(name)
    await world.ready(name, 1)
    assert world.running_slots(name) == [1]
    assert ("create", f"{name}-1") in journal_of(world, name, mark)
    assert {c.id for c in await pool_of(world, name)} == warm


class _NoPoolRuntime(MemoryRuntime):
    """A runtime that cannot keep containers created and not started, as a Swarm cannot."""

    create_warm = None  # type: ignore[assignment]


async def test_a_runtime_without_a_pool_ignores_warm_pool_and_says_so_once(tmp_path: Path) -> None:
    clock = FakeClock()
    runtime = _NoPoolRuntime(clock=clock.time)
    async with memory_world(tmp_path / "state", runtime=runtime, clock=clock) as world:
        name = unique_app("w")
        await world.engine.register(warm_document(name, 1, 3))
        await world.engine.up(name)
        await world.ready(name, 1)
        await world.engine.scale(name, 3)
        await world.ready(name, 3)
        assert await runtime.list_warm(name) == []
        kinds = [e.kind for e in await world.engine.events(app=name)]
        assert kinds.count("warm_pool_unsupported") == 1


def held_ports(world: MemoryWorld) -> frozenset[int]:
    return world.engine.reconciler.ports.held()


def member_ports(info: ContainerInfo) -> set[int]:
    return {info.port} | ({info.health_port} if info.health_port is not None else set())


async def test_a_member_removed_behind_our_back_gives_its_port_back(world: MemoryWorld) -> None:
    """``docker rm -f`` of a pool member: the scale-out that meets it starts a fresh container instead,
    and the member's port is released, not held until the controller restarts."""
    name = await with_pool(world, replicas=1, pool=2)
    pool = await pool_of(world, name)
    gone, kept = pool
    assert gone.port in held_ports(world)
    await world.runtime.remove(gone.id, force=True)
    mark = len(world.journal)
    await world.engine.scale(name, 3)
    await world.ready(name, 3)
    kinds = [e[0] for e in journal_of(world, name, mark)]
    assert kinds.count("start_warm") == 1 and kinds.count("create") == 1
    assert kept.id in {c.id for c in world.runtime.running(name)}
    assert len(set(world.running_slots(name))) == 3
    assert gone.port not in held_ports(world)
    await world.settle(lambda: _count(world, name, 2), "the pool refilled to 2")


def bridge_document(name: str, replicas: int, pool: int) -> dict[str, object]:
    """Bridge networking with the health check on a port of its own: each member holds two ports."""
    document = warm_document(name, replicas, pool, ports=[{"containerPort": 8080}, {"containerPort": 8081}])
    document["healthCheck"]["port"] = 8081  # type: ignore[index]
    return document


async def test_a_member_docker_refuses_to_start_gives_both_its_ports_back(tmp_path: Path) -> None:
    async with memory_world(tmp_path / "state", network_mode="bridge") as world:
        name = unique_app("w")
        await world.engine.register(bridge_document(name, 1, 2))
        await world.engine.up(name)
        await world.ready(name, 1)
        await world.settle(lambda: _count(world, name, 2), "a warm pool of 2")
        pool = await pool_of(world, name)
        assert all(info.health_port is not None for info in pool)
        world.runtime.fail_starts(name, "exec format error")
        await world.engine.scale(name, 2)

        async def blocked() -> bool:
            return bool(world.engine.reconciler.apps[name].blocked)

        await world.settle(blocked, f"{name} blocked")
        taken = next(info for info in pool if info.id not in world.runtime.containers)
        assert member_ports(taken).isdisjoint(held_ports(world))


async def test_a_member_that_could_not_be_created_gives_both_its_ports_back(tmp_path: Path) -> None:
    async with memory_world(tmp_path / "state", network_mode="bridge") as world:
        name = unique_app("w")
        await world.engine.register(bridge_document(name, 1, 0))
        await world.engine.up(name)
        await world.ready(name, 1)
        before = held_ports(world)
        asked: list[ContainerRequest] = []
        create_warm = world.runtime.create_warm

        async def refused(request: ContainerRequest) -> ContainerInfo:
            asked.append(request)
            world.runtime.fail_starts(name, "no space left on device")
            try:
                return await create_warm(request)
            finally:
                world.runtime.fail_starts(name, None)

        world.runtime.create_warm = refused  # type: ignore[method-assign]
        await world.engine.register(bridge_document(name, 1, 1))
        await world.settle(lambda: asked, "a warm create tried")
        await world.settle(lambda: not world.engine.reconciler.apps[name].warm_creating, "the create done")
        assert asked[0].health_host_port is not None
        assert held_ports(world) == before


async def test_a_member_whose_start_met_no_engine_stays_in_the_pool(world: MemoryWorld) -> None:
    """The engine did not answer the start: the member may still be there, created and not started.  The
    pool is listed again, not the member forgotten (its port then held by nobody, the member replaced
    by a fresh create in its slot)."""
    name = await with_pool(world, replicas=1, pool=2)
    pool = {c.id for c in await pool_of(world, name)}
    start_warm = world.runtime.start_warm
    failed: list[str] = []

    async def no_answer(container_id: str, request: ContainerRequest) -> ContainerInfo | None:
        if not failed:
            failed.append(container_id)
            raise RuntimeUnavailable("the Docker engine does not answer")
        return await start_warm(container_id, request)

    world.runtime.start_warm = no_answer  # type: ignore[method-assign]
    await world.engine.scale(name, 2)
    await world.ready(name, 2)
    await world.settle(lambda: _count(world, name, 2), "the pool back to 2")
    await world.engine.reconciler.reconcile_now(name)
    members = await pool_of(world, name)
    running = {c.id for c in world.runtime.running(name)}
    assert len(members) == 2 and len(running) == 2
    assert failed[0] in running | {c.id for c in members}  # the member met no engine, but is not lost
    assert len(pool & (running | {c.id for c in members})) == 2
    ports = [c.port for c in members] + [c.request.host_port for c in world.runtime.running(name)]
    assert len(set(ports)) == 4 and held_ports(world) == set(ports)


async def test_a_refill_that_ran_out_of_ports_hands_back_what_it_took(world: MemoryWorld) -> None:
    """The second member's port could not be had: the first one's slot and port are handed back, and
    the next refill makes the whole pool (a slot left 'being created' kept it one short for ever)."""
    name = await with_pool(world, replicas=1, pool=0)
    ports = world.engine.reconciler.ports
    allocate = ports.allocate
    calls: list[int] = []
    exhausted = True  # until the test has looked: a pass in between (any wake-up) must not refill

    def second_runs_out(exclude: Container[int] = frozenset()) -> int:
        calls.append(1)
        if len(calls) >= 2 and exhausted:
            raise PortsExhausted("no free port (test)")
        return allocate(exclude)

    ports.allocate = second_runs_out  # type: ignore[method-assign]
    await world.engine.register(warm_document(name, 1, 2))
    await world.settle(lambda: len(calls) >= 2, "a refill that ran out of ports")
    await world.settle(lambda: world.engine.reconciler.apps[name].warm_refill.done(), "the refill over")
    assert await pool_of(world, name) == []
    assert not world.engine.reconciler.apps[name].warm_creating
    exhausted = False
    await world.engine.reconciler.reconcile_now(name)
    await world.settle(lambda: _count(world, name, 2), "the whole pool made by the next refill")
    live = {c.port for c in await pool_of(world, name)} | {
        c.request.host_port for c in world.runtime.running(name)
    }
    assert held_ports(world) == live


async def test_a_pool_listed_again_never_takes_back_a_member_still_being_started(world: MemoryWorld) -> None:
    """One start of a scale-out met no engine while its sibling's start was still under way: the pass
    waits for the sibling before it gives up, so the next pass's listing of the pool cannot adopt, as a
    member still created, the container that becomes a replica a moment later (and start it again)."""
    name = await with_pool(world, replicas=1, pool=2)
    first, second = await pool_of(world, name)
    start_warm = world.runtime.start_warm
    gate = asyncio.Event()
    waiting: list[str] = []

    async def one_lost_one_slow(container_id: str, request: ContainerRequest) -> ContainerInfo | None:
        if container_id == first.id:
            raise RuntimeUnavailable("the Docker engine does not answer")
        waiting.append(container_id)
        await gate.wait()
        return await start_warm(container_id, request)

    world.runtime.start_warm = one_lost_one_slow  # type: ignore[method-assign]
    await world.engine.scale(name, 3)
    await world.settle(lambda: waiting, "the second start under way")
    # A pass asked for meanwhile (a command, Docker back): it lists the pool again.
    asked = asyncio.create_task(world.engine.reconciler.reconcile_now(name))
    for _ in range(30):
        await world.clock.advance(0.1)
        await asyncio.sleep(0.01)
    gate.set()
    world.runtime.start_warm = start_warm  # type: ignore[method-assign]
    await asyncio.wait_for(asked, 10)
    await world.ready(name, 3)
    await world.engine.reconciler.reconcile_now(name)
    state = world.engine.reconciler.apps[name]
    assert second.id in state.replicas
    assert not set(state.warm) & set(state.replicas)
    assert waiting == [second.id]  # taken once: a second start of it would have run it twice


async def test_a_delete_during_a_refill_leaves_no_member_behind(
    world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Docker create runs in a thread: it ends when Docker is done, whether its caller still waits
    or not.  A delete that comes while the pool is being refilled removes what that refill made."""
    name = unique_app("w")
    asked, made = asyncio.Event(), asyncio.Event()
    in_docker: list[asyncio.Task[ContainerInfo]] = []
    create = world.runtime.create_warm

    async def create_in_docker(request: ContainerRequest) -> ContainerInfo:
        async def docker_side() -> ContainerInfo:
            asked.set()
            await made.wait()
            return await create(request)

        in_docker.append(asyncio.ensure_future(docker_side()))
        return await asyncio.shield(in_docker[-1])

    monkeypatch.setattr(world.runtime, "create_warm", create_in_docker)
    await world.engine.register(warm_document(name, replicas=1, pool=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    await world.settle(asked.is_set, "a refill of the pool under way")
    deleting = asyncio.create_task(world.engine.delete(name))
    for _ in range(20):  # Docker ends the create a moment after the delete came
        if deleting.done():
            break
        await world.clock.advance(0.1)
        await asyncio.sleep(0.01)
    made.set()
    await deleting
    await asyncio.gather(*in_docker)
    assert await pool_of(world, name) == []
    assert await world.runtime.list_managed(name) == []
