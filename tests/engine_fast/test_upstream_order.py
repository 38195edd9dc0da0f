"""The order of an app's servers in its nginx upstream: a replica that has just turned ready comes first,
so a reload's fresh workers (which pick among equally idle servers in list order) send it the next
request; ip_hash keeps slot order, as there the order maps clients to replicas."""

from __future__ import annotations

from core.reconciler import upstream_order
from core.replicas import Replica
from tests.support.world import MemoryWorld, app_document, unique_app


def routed_ports(world: MemoryWorld, app: str) -> list[int]:
    """The ports of the last routing of ``app``, in the order nginx was given them."""
    last = [entry for entry in world.journal if entry[0] == "route" and entry[1] == app][-1]
    return [int(server.rsplit(":", 1)[1]) for server in last[2].split(",")]


def port_of(world: MemoryWorld, app: str, slot: int) -> int:
    return world.container(app, slot).request.host_port


async def test_each_new_replica_is_routed_ahead_of_those_already_serving(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=2))
    await world.engine.up(name)
    await world.ready(name, 2)

    # Time passes before each scale-out, as it does for an operator.  Without it the new replica could
    # turn ready at the same fake instant as those before it: in-memory probes pass at once, so on a
    # loaded host (slow store threads) ``scale`` returns with it already ready and routed, before
    # ``ready`` first advances the clock; replicas ready at one instant keep slot order (last test).
    await world.clock.advance(1.0)
    await world.engine.scale(name, 3)
    await world.ready(name, 3)
    third = port_of(world, name, 3)
    assert routed_ports(world, name)[0] == third

    await world.clock.advance(1.0)
    await world.engine.scale(name, 4)
    await world.ready(name, 4)
    ports = routed_ports(world, name)
    assert ports[:2] == [port_of(world, name, 4), third]  # newest first, then the one before
    assert sorted(ports[2:]) == sorted([port_of(world, name, 1), port_of(world, name, 2)])


async def test_ip_hash_keeps_its_servers_in_slot_order(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=2, loadBalancing="ip_hash"))
    await world.engine.up(name)
    await world.ready(name, 2)

    await world.engine.scale(name, 3)
    await world.ready(name, 3)
    assert routed_ports(world, name) == [port_of(world, name, slot) for slot in (1, 2, 3)]


def test_replicas_ready_at_the_same_time_keep_slot_order_and_the_order_is_stable() -> None:
    def replica(slot: int, ready_since: float) -> Replica:
        return Replica(
            slot,
            f"c{slot}",
            f"app-{slot}",
            "127.0.0.1",
            20000 + slot,
            "h",
            ready=True,
            ready_since=ready_since,
        )

    adopted = [replica(1, 0.0), replica(2, 0.0), replica(3, 0.0)]
    assert [r.slot for r in upstream_order(adopted, "least_conn")] == [1, 2, 3]
    mixed = [replica(1, 0.0), replica(2, 7.0), replica(3, 5.0), replica(4, 0.0)]
    first = upstream_order(mixed, "round_robin")
    assert [r.slot for r in first] == [2, 3, 1, 4]
    assert upstream_order(sorted(first, key=lambda r: r.slot), "round_robin") == first
