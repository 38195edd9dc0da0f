"""What the console says in words: each line names the app once, and says what to do next."""

from __future__ import annotations

from pathlib import Path

from core.models import Event
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_NOW, FixedBackend, sample_backend
from orchestry_tui.console.widgets.events_pane import EventsPane
from tests.tui.conftest import until


def console(tmp_path: Path, backend: FixedBackend) -> OrchestryConsole:
    return OrchestryConsole(backend, poll_seconds=3600, preferences_path=tmp_path / "config.toml")


async def events_pane_lines(tmp_path: Path, events: list[Event]) -> list[str]:
    backend = sample_backend()
    backend.events = events
    app = console(tmp_path, backend)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        pane = app.query_one(EventsPane)
        await until(lambda: any("lifecycle" in strip.text for strip in pane.lines), what="events shown")
        await pilot.pause()
        return [strip.text.rstrip() for strip in pane.lines]


async def test_events_that_name_their_app_are_not_prefixed_with_it_again(tmp_path: Path) -> None:
    said = [
        "web is starting with 2 replica(s)",
        "web is stopping",
        "registered web",
        "started replica web-1 on 127.0.0.1:20515",
    ]
    events = [
        Event(i + 1, "web", "lifecycle", "kind", message, {}, FIXED_NOW - 60 + i)
        for i, message in enumerate(said)
    ]
    lines = await events_pane_lines(tmp_path, events)
    assert not [line for line in lines if "web: web" in line or "web: registered web" in line], lines
    assert any(line.endswith("lifecycle web is starting with 2 replica(s)") for line in lines), lines
    assert any(line.endswith("lifecycle web is stopping") for line in lines), lines
    assert any(line.endswith("lifecycle registered web") for line in lines), lines
    # A replica's name is not the app's: which app still needs saying.
    assert any(line.endswith("lifecycle web: started replica web-1 on 127.0.0.1:20515") for line in lines)
