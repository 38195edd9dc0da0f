from tests.support.world import MemoryWorld, app_document, unique_app


async def test_up_starts_and_routes_replicas(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=3))
    await world.engine.up(name)
    await world.ready(name, 3)
    assert world.running_slots(name) == [1, 2, 3]
