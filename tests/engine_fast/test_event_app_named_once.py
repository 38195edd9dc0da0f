"""An app's event names the app once: the event carries it (the console's events pane prints "APP: ",
`orchestry events` has an APP column), so its message does not start with the name again."""

from __future__ import annotations

from core.events import Event
from orchestry_tui.console.formatting import event_text
from tests.support.world import MemoryWorld, app_document, unique_app


def pane_line(event: Event) -> str:
    return event_text(event).plain.split(maxsplit=2)[2]  # after the clock and the category


async def test_a_manual_scale_reads_the_app_name_once(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    await world.engine.scale(name, 0)
    [event] = [e for e in await world.engine.events(app=name) if e.kind == "scaled"]
    assert event.message == "1 → 0 replicas (manual scale to 0)"
    assert pane_line(event) == f"{name}: 1 → 0 replicas (manual scale to 0)"


async def test_a_cooldown_notice_reads_the_app_name_once(world: MemoryWorld) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1, mode="auto"))
    await world.engine.up(name)
    await world.ready(name, 1)
    # Load that asks for more replicas, twice: the first scales out, the second meets its cooldown.
    await world.engine.simulate_metrics(name, {"rps": 500})
    await world.engine.simulate_metrics(name, {"rps": 5000})
    [event] = [e for e in await world.engine.events(app=name) if e.kind == "scale_deferred"]
    assert not event.message.startswith(f"{name}:"), event.message
    assert pane_line(event).count(name) == 1, pane_line(event)
