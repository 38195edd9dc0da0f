"""A slot waiting out a crash back-off is forgotten when the app is scaled below it: the console showed
"sick-1 CrashLoopBackOff ... next attempt in 0 s" under an app scaled to 0, for good."""

from __future__ import annotations

from core.runtime.memory import MemoryContainer
from tests.support.world import MemoryWorld, app_document, unique_app


def _not_listening(container: MemoryContainer) -> None:
    container.listening = False


async def test_scaling_to_0_drops_the_crash_looping_slot_from_the_replicas(world: MemoryWorld) -> None:
    name = unique_app()
    world.runtime.on_create = _not_listening  # never proves healthy: its back-off is never forgiven
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    reconciler = world.engine.reconciler
    for crash in range(3):  # the third crash puts slot 1 in CrashLoopBackOff
        world.runtime.crash(f"{name}-1", exit_code=1, message=f"boom {crash}")
        await reconciler.reconcile_now(name)
        if crash < 2:
            await world.settle(lambda: bool(world.runtime.running(name)), "slot 1 recreated")
    waiting = (await world.engine.get_app(name)).replicas
    assert [r.state for r in waiting] == ["CrashLoopBackOff"], waiting

    await world.engine.scale(name, 0)
    await world.clock.advance(120.0)  # long past the back-off: the slot must not come back
    await reconciler.reconcile_now(name)
    view = await world.engine.get_app(name)
    assert (view.desired_replicas, view.replicas) == (0, []), view.replicas
    assert world.runtime.running(name) == []

    await world.engine.scale(name, 1)  # wanted again: a fresh replica, at once
    await world.settle(lambda: bool(world.runtime.running(name)), "slot 1 started again")
