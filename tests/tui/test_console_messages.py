"""What the console says in words: each line names the app once, and says what to do next."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from textual.widgets import Label, Static

from core.models import Event, ScaleResult
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_NOW, FixedBackend, sample_backend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.screens.scale import ScaleScreen
from orchestry_tui.console.widgets.events_pane import EventsPane
from orchestry_tui.console.widgets.keyed_table import KeyedTable
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


def notifications(app: OrchestryConsole) -> list[str]:
    return [str(n.message) for n in app._notifications]


def cell(app: OrchestryConsole, row: str, column: str) -> str:
    return str(app.query_one("#apps", KeyedTable).cell(row, column))


def with_web(**changes: Any) -> FixedBackend:
    """The sample data with its first app, web, changed as given."""
    backend = sample_backend()
    backend.apps[0] = dataclasses.replace(backend.apps[0], **changes)
    return backend


async def test_a_stopped_app_reads_0_of_0_and_shows_no_stale_load(tmp_path: Path) -> None:
    # Its metric windows still hold the last samples of the replicas it had (the sample's figures).
    app = console(tmp_path, with_web(status="stopped", status_reason="stopped by the operator", replicas=[]))
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.pause()
        assert cell(app, "web", "ready") == "0/0"  # stopped, not one of three replicas missing
        assert [cell(app, "web", c) for c in ("rps", "p95", "cpu", "mem")] == ["–"] * 4
        assert cell(app, "worker", "cpu") == "2.5%"  # a running app keeps its figures


async def test_u_on_a_running_app_says_there_is_nothing_to_start(tmp_path: Path) -> None:
    app = console(tmp_path, sample_backend())
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        assert app.selected == "web"
        await pilot.press("u")
        await until(lambda: notifications(app), what="a notice")
        await pilot.pause()
        said = notifications(app)
        assert said == [
            "web is already running (3/3 ready): nothing to start; press s to change its replica count"
        ]


async def test_x_on_a_stopped_app_says_it_is_stopped_instead_of_asking_to_stop_0_replicas(
    tmp_path: Path,
) -> None:
    app = console(tmp_path, with_web(status="stopped", status_reason="stopped by the operator", replicas=[]))
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.press("x")
        await until(lambda: notifications(app), what="a notice")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert notifications(app) == ["web is already stopped: press u to start it"]


async def test_x_asks_before_stopping_and_says_how_to_start_the_app_again(tmp_path: Path) -> None:
    app = console(tmp_path, sample_backend())
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.press("x")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the confirm dialog")
        question = str(app.screen.query_one("#question", Label).render())
        assert "`up`" not in question and "started again (u)" in question, question


async def test_j_and_k_move_the_apps_selection_as_in_k9s(tmp_path: Path) -> None:
    app = console(tmp_path, sample_backend())
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        assert app.selected == "web"
        await pilot.press("j")
        await until(lambda: app.selected == "worker", what="j selects the next app")
        await pilot.press("k")
        await until(lambda: app.selected == "web", what="k selects the previous app")


async def test_the_scale_dialog_of_an_auto_app_says_the_autoscaler_may_change_the_count(
    tmp_path: Path,
) -> None:
    app = console(tmp_path, sample_backend())
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.press("s")  # web: auto mode, minReplicas 1, maxReplicas 6
        await until(lambda: isinstance(app.screen, ScaleScreen), what="the scale dialog")
        question = str(app.screen.query_one("#question", Label).render())
        assert "The autoscaler keeps it within 1-6 and may change this count" in question, question
        assert "press m on the main view to switch to manual first" in question
        await pilot.press("escape")
        await pilot.press("j", "s")  # worker: manual mode, the count stays as set
        await until(lambda: isinstance(app.screen, ScaleScreen), what="the scale dialog again")
        question = str(app.screen.query_one("#question", Label).render())
        assert question == "Scale worker (now 2 desired, manual mode)"


async def test_the_logs_pane_of_a_stopped_app_says_why_no_line_comes(tmp_path: Path) -> None:
    backend = with_web(status="stopped", status_reason="stopped by the operator", replicas=[])
    backend.log_lines = {}  # a stopped app has no replica to write a line
    app = console(tmp_path, backend)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        status = app.query_one("#pane-log-status", Static)
        await until(lambda: "is stopped" in str(status.render()), what="the logs pane says why")
        assert str(status.render()) == "web is stopped: no replica writes logs; press u to start it"
        await pilot.press("j")  # worker has replicas: its lines are awaited as before
        await until(lambda: app.selected == "worker", what="worker selected")
        await until(lambda: "waiting for log lines from worker" in str(status.render()), what="waiting")


async def test_a_filter_matching_no_app_is_named_in_the_replicas_pane(tmp_path: Path) -> None:
    app = console(tmp_path, sample_backend())
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.press("slash", "z", "z", "enter")
        empty = app.query_one("#replicas-empty", Static)
        await until(lambda: "filter 'zz'" in str(empty.render()), what="the replicas pane names the filter")
        assert str(empty.render()) == "no app shown: the filter 'zz' matches none (press / then Esc)"


class ScalingBackend(FixedBackend):
    """The sample data, with scale answering as the engine does for an auto app (clamped to 1-6)."""

    async def scale(self, name: str, replicas: int) -> ScaleResult:
        target = min(max(replicas, 1), 6)
        cli = f"switch to manual mode (orchestry mode {name} manual) to go outside"
        message = f"{name} is in auto mode ...: scaled to {target} instead of {replicas}; {cli}"
        return ScaleResult(name, "scaled", target, replicas, clamped=target != replicas, message=message)


def scaling_backend(**web_changes: Any) -> ScalingBackend:
    sample = with_web(**web_changes)
    return ScalingBackend(sample.apps, sample.figures, sample.events, sample.charts, sample.log_lines)


async def scaled(tmp_path: Path, backend: FixedBackend, count: str) -> list[str]:
    app = console(tmp_path, backend)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, ScaleScreen), what="the scale dialog")
        await pilot.press(*count, "enter")
        await until(lambda: notifications(app), what="a notice")
        await pilot.pause()
        return notifications(app)


async def test_scaling_a_stopped_app_says_the_count_waits_for_its_start(tmp_path: Path) -> None:
    backend = scaling_backend(status="stopped", status_reason="stopped by the operator", replicas=[])
    said = await scaled(tmp_path, backend, "3")
    assert said == ["web is stopped: it runs 3 replica(s) once started (press u)"]


async def test_a_clamped_scale_names_the_console_key_not_a_cli_command(tmp_path: Path) -> None:
    said = await scaled(tmp_path, scaling_backend(), "0")
    assert len(said) == 1 and "scaled to 1 instead of 0" in said[0], said
    assert "press m to switch to manual" in said[0] and "orchestry mode" not in said[0]
