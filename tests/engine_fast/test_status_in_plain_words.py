"""An announced status reads as a sentence: an app that cannot start says so, not "ghost is error"."""

from __future__ import annotations

from core.errors import AppBlocked
from core.runtime.memory import MemoryRuntime
from orchestry_tui.console.formatting import event_text
from tests.support.world import MemoryWorld, app_document, unique_app


async def test_an_app_whose_image_is_missing_is_announced_as_unable_to_start(world: MemoryWorld) -> None:
    assert isinstance(world.runtime, MemoryRuntime)
    world.runtime.images = {"orchestry/demo:latest"}
    name = unique_app()
    await world.engine.register(app_document(name, image="orchestry/gone:1"))
    try:
        await world.engine.up(name)
    except AppBlocked:
        pass
    [event] = [e for e in await world.engine.events(app=name) if e.kind == "status_changed"]
    assert "is error" not in event.message
    assert event.message.startswith(f"{name} cannot start its replicas: image 'orchestry/gone:1'")
    # The events pane names the app once: the sentence already does.
    assert event_text(event).plain.split(maxsplit=2)[2] == event.message
