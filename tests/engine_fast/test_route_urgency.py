"""Which routing changes go to nginx without its coalescing pause: only one after which nothing of the app
is on its way to ready (no replica being started, none started and not passed yet).  A scale-out's last
replica is routed at once; the ones before it still share reloads."""

from __future__ import annotations

from tests.support.world import MemoryWorld, app_document, unique_app


def servers_in(routes: list[tuple[str, str]], app: str) -> list[int]:
    return [len(servers.split(",")) if servers else 0 for name, servers in routes if name == app]


async def app_up_and_ready(world: MemoryWorld, replicas: int) -> str:
    """A new app up with ``replicas`` ready; the urgent routings made so far are forgotten, so a test sees
    only those of what it does next."""
    name = unique_app()
    await world.engine.register(app_document(name, replicas=replicas))
    await world.engine.up(name)
    await world.ready(name, replicas)
    world.nginx.urgent.clear()
    return name


async def test_only_the_routing_of_a_scale_outs_last_replica_is_urgent(world: MemoryWorld) -> None:
    name = await app_up_and_ready(world, 1)
    routed_before = len([e for e in world.journal if e[0] == "route" and e[1] == name])

    await world.clock.advance(1.0)
    await world.engine.scale(name, 4)
    await world.ready(name, 4)

    routes = [(e[1], e[2]) for e in world.journal if e[0] == "route" and e[1] == name][routed_before:]
    assert servers_in(routes, name)[-1] == 4
    # The routing that completes the scale-out is urgent; none made while replicas were still coming.
    assert servers_in(world.nginx.urgent, name) == [4]


async def test_a_replacement_for_a_crashed_replica_is_routed_urgently(world: MemoryWorld) -> None:
    name = await app_up_and_ready(world, 2)

    await world.clock.advance(1.0)
    world.runtime.crash(f"{name}-2")
    await world.ready(name, 2)
    assert servers_in(world.nginx.urgent, name)[-1:] == [2]
