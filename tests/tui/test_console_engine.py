"""The console against a real Engine: real Docker, nginx and SQLite, driven by keys through Pilot."""

from __future__ import annotations

import socket
import tarfile
from pathlib import Path

import aiohttp
from textual.widgets import Button, Input

from core.engine import Engine
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.screens.logs import LogsScreen
from orchestry_tui.console.screens.scale import ScaleScreen
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from orchestry_tui.console.widgets.log_view import LogView
from tests.integration.harness import engine_settings
from tests.tui.conftest import hold_frames, until

SIZE = (160, 45)


def console(engine: Engine, readonly: bool = False) -> OrchestryConsole:
    return OrchestryConsole(
        EngineBackend(engine.settings, engine=engine), readonly=readonly, poll_seconds=0.3
    )


def notifications(app: OrchestryConsole) -> list[str]:
    return [n.message for n in app._notifications]


def cell(app: OrchestryConsole, table_id: str, row: str, column: str) -> str:
    return str(app.query_one(table_id, KeyedTable).cell(row, column))


async def test_apps_table_shows_the_registered_app_and_the_api_answers(
    engine: Engine, running_app: str
) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE):
        await until(lambda: app.frames_applied, what="first frame")
        assert cell(app, "#apps", running_app, "name") == running_app
        assert cell(app, "#apps", running_app, "status") == "running"
        assert cell(app, "#apps", running_app, "ready") == "1/1"
        assert cell(app, "#apps", running_app, "mode") == "manual"
        replica = f"{running_app}-1"
        assert cell(app, "#replicas", replica, "state") == "ready"
        container = (await engine.get_app(running_app)).replicas[0].container_id
        assert cell(app, "#replicas", replica, "container") == container[:12]
        # The CLI works beside the console: the same API is served in the console's loop.
        url = f"http://{engine.settings.host}:{engine.settings.port}/api/v1/apps"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert running_app in await response.text()


async def test_scale_dialog_is_prefilled_and_enter_scales(engine: Engine, running_app: str) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, ScaleScreen), what="scale dialog")
        field = app.screen.query_one(Input)
        assert field.value == "1"
        await pilot.press("2", "enter")  # the pre-filled count is selected: typing replaces it
        await until(lambda: not isinstance(app.screen, ScaleScreen), what="dialog closed")
        view = await until(lambda: _desired(engine, running_app, 2), what="desired 2")
        assert view.desired_replicas == 2
        await until(
            lambda: cell(app, "#apps", running_app, "ready") == "2/2", timeout=30, what="2/2 in the table"
        )


async def _desired(engine: Engine, name: str, count: int) -> object:
    view = await engine.get_app(name)
    return view if view.desired_replicas == count else None


async def test_scale_dialog_refuses_out_of_range_and_escape_cancels(engine: Engine, running_app: str) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, ScaleScreen), what="scale dialog")
        await pilot.press("5", "0", "0", "enter")
        assert isinstance(app.screen, ScaleScreen), "500 replicas must not be accepted"
        assert "from 0 to 100" in str(app.screen.query_one("#hint").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, ScaleScreen)
        assert (await engine.get_app(running_app)).desired_replicas == 1


async def test_restart_asks_naming_the_app_and_cancel_changes_nothing(
    engine: Engine, running_app: str
) -> None:
    before = (await engine.get_app(running_app)).replicas[0].container_id
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("r")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="confirm dialog")
        assert running_app in str(app.screen.query_one("#question").render())
        assert app.screen.focused is app.screen.query_one("#cancel", Button), "Cancel must have the focus"
        await pilot.press("enter")  # Enter on the focused Cancel
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("r")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="confirm dialog again")
        await pilot.press("escape")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.pause(1.0)
    events = await engine.events(app=running_app, limit=50)
    assert not [e for e in events if e.kind == "restart_requested"]
    assert (await engine.get_app(running_app)).replicas[0].container_id == before


async def test_restart_confirmed_replaces_the_replica(engine: Engine, running_app: str) -> None:
    before = (await engine.get_app(running_app)).replicas[0].container_id
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("r")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="confirm dialog")
        await pilot.click("#confirm")
        await until(lambda: _replaced(engine, running_app, before), timeout=60, what="a new container")


async def _replaced(engine: Engine, name: str, old: str) -> bool:
    view = await engine.get_app(name)
    return any(r.container_id and r.container_id != old and r.ready for r in view.replicas)


MUTATING_KEYS = {"s": "scale", "r": "restart_app", "R": "restart_replica", "m": "toggle_mode", "u": "up",
                 "x": "down", "Q": "quit_and_stop"}  # fmt: skip


def footer_actions(app: OrchestryConsole) -> set[str]:
    return {active.binding.action for active in app.screen.active_bindings.values()}


def palette_titles(app: OrchestryConsole) -> list[str]:
    return [command.title for command in app.get_system_commands(app.screen)]


async def test_readonly_refuses_every_mutating_key_and_hides_them(engine: Engine, running_app: str) -> None:
    before = await engine.get_app(running_app)
    app = console(engine, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await until(app.engine_ready.is_set, what="engine attached")
        app.query_one("#replicas", KeyedTable).focus()  # R acts on the replica selected there
        for key in MUTATING_KEYS:
            await pilot.press(key)
            await pilot.pause(0.2)
            assert len(app.screen_stack) == 1, f"{key} opened a dialog in read-only mode"
            said = [n.message for n in app._notifications]
            assert said and said[-1].startswith("read-only: "), (key, said)  # each key says why not
            app.clear_notifications()
        assert app.is_running, "Q must not quit a read-only console"
        assert not set(MUTATING_KEYS.values()) & footer_actions(app), footer_actions(app)
        assert not [t for t in palette_titles(app) if t.split(" (")[0] in ("Scale", "Restart", "Up", "Down")]
        assert {"logs", "describe"} <= footer_actions(app)  # what only reads stays
        assert "READ-ONLY" in str(app.query_one("#status-bar").render())
        await pilot.pause(1.0)
    view = await engine.get_app(running_app)
    assert (view.desired_replicas, view.mode, view.status) == (1, "manual", "running")
    assert [r.container_id for r in view.replicas] == [r.container_id for r in before.replicas]
    events = await engine.events(app=running_app, limit=100)
    assert not [
        e for e in events if e.timestamp > before.updated_at and e.kind in ("restart_requested", "scaled")
    ]


async def test_mutating_actions_are_in_the_footer_and_palette_when_not_readonly(
    engine: Engine, running_app: str
) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE):
        await until(lambda: app.frames_applied, what="first frame")
        assert {"scale", "restart_app", "toggle_mode"} <= footer_actions(app)
        assert any(t.startswith("Restart replica (R)") for t in palette_titles(app)), palette_titles(app)


async def test_keys_r_R_m_x_u_change_the_engine(engine: Engine, running_app: str) -> None:
    """Each key path, confirmed by keys only (Tab to the confirm button, Enter), checked in the engine."""
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await until(app.engine_ready.is_set, what="engine attached")

        async def confirm_by_keys() -> None:
            await until(lambda: isinstance(app.screen, ConfirmScreen), what="confirm dialog")
            await pilot.press("tab", "enter")
            await until(lambda: not isinstance(app.screen, ConfirmScreen), what="dialog closed")

        first = (await engine.get_app(running_app)).replicas[0].container_id
        await pilot.press("r")
        await confirm_by_keys()
        await until(lambda: _replaced(engine, running_app, first), timeout=30, what="r: a new replica")

        replicas = (await engine.get_app(running_app)).replicas
        second = next(r.container_id for r in replicas if r.ready and r.container_id != first)
        await until(lambda: _only(engine, running_app, second), timeout=30, what="the old replica gone")
        # The replacement has a slot of its own: R must act on the row of the replica left, not on a
        # frame from before the old one went (a one-row table could still be showing that one).
        second_name = next(r.name for r in replicas if r.container_id == second)
        table = app.query_one("#replicas", KeyedTable)
        await until(lambda: table.row_count == 1 and table.selected_key == second_name, what="its row alone")
        table.focus()
        await pilot.press("R")
        await confirm_by_keys()
        await until(lambda: _replaced(engine, running_app, second), timeout=30, what="R: a new replica")

        await pilot.press("m")
        await until(lambda: _mode_is(engine, running_app, "auto"), what="m: auto mode")
        await pilot.press("m")
        await until(lambda: _mode_is(engine, running_app, "manual"), what="m: manual again")

        await pilot.press("x")
        await confirm_by_keys()
        await until(lambda: _status_is(engine, running_app, "stopped", 0), timeout=30, what="x: stopped")
        await until(lambda: _no_containers(engine, running_app), timeout=30, what="x: no container left")

        await pilot.press("u")
        await until(lambda: _status_is(engine, running_app, "running", 1), timeout=30, what="u: running")


async def _no_containers(engine: Engine, name: str) -> bool:
    return await engine.runtime.list_managed(name) == []


async def _only(engine: Engine, name: str, container_id: str) -> bool:
    return [c.id for c in await engine.runtime.list_managed(name)] == [container_id]


async def _mode_is(engine: Engine, name: str, mode: str) -> bool:
    return (await engine.get_app(name)).mode == mode


async def _status_is(engine: Engine, name: str, status: str, ready: int) -> bool:
    view = await engine.get_app(name)
    return view.status == status and view.ready_replicas == ready


async def test_ctrl_s_writes_a_diagnostic_snapshot(engine: Engine, running_app: str) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        # ctrl+s before the engine is attached only says "still starting"; that is another test's subject.
        await until(app.engine_ready.is_set, what="engine attached")
        await pilot.press("ctrl+s")
        path: Path = await until(lambda: app.last_snapshot, what="snapshot written")
        assert path.is_relative_to(engine.settings.state_dir) and path.name.endswith(".tar.gz")
        with tarfile.open(path) as archive:
            assert "snapshot.json" in [m.name.split("/")[-1] for m in archive.getmembers()]
        assert any(str(path) in m for m in notifications(app))


async def test_logs_screen_shows_replica_lines(engine: Engine, running_app: str) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("l")
        await until(lambda: isinstance(app.screen, LogsScreen), what="logs screen")
        view = app.screen.query_one(LogView)
        await until(lambda: view.lines, timeout=15, what="log lines")
        text = "\n".join(line.plain for line in view.lines)
        assert f"{running_app}-1" in text and "orchestry demo" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, LogsScreen)


async def test_mode_key_switches_to_auto(engine: Engine, running_app: str) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("m")
        await until(lambda: cell(app, "#apps", running_app, "mode") == "auto", what="auto in the table")
    assert (await engine.get_app(running_app)).mode == "auto"


async def test_m_twice_before_a_frame_ends_in_the_first_mode_with_both_changes_logged(
    engine: Engine, running_app: str
) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await until(app.engine_ready.is_set, what="engine attached")
        held = await hold_frames(app)
        await pilot.press("m", "m")
        modes = await until(lambda: _modes_asked(engine, running_app, 2), timeout=30, what="two mode changes")
        assert modes == ["auto", "manual"]
        assert (await engine.get_app(running_app)).mode == "manual"
        held.release.set()


async def _modes_asked(engine: Engine, name: str, count: int) -> list[str] | None:
    """The modes the policy changes of the app asked for, oldest first, once there are ``count``."""
    events = await engine.events(app=name, limit=50)
    modes = [e.details["changes"]["mode"] for e in reversed(events) if e.kind == "policy_updated"]
    return modes if len(modes) >= count else None


async def test_engine_starts_after_first_frame_and_a_taken_api_port_is_a_notice(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = engine_settings(tmp_path / "state", port=port)
        app = OrchestryConsole(EngineBackend(settings), poll_seconds=0.3)
        async with app.run_test(size=SIZE):
            assert "starting engine" in str(app.query_one("#status-bar").render())
            await until(lambda: app.frames_applied, timeout=30, what="first frame")
            assert any("API not served" in m and str(port) in m for m in notifications(app))
            assert "no apps registered" in str(app.query_one("#apps-empty").render())
            assert "API not served" in str(app.query_one("#status-bar").render())
            engine = app.backend.engine
        assert engine is not None and engine._reconciler is None, "quitting stops the engine it started"


async def test_an_engine_that_cannot_start_is_shown_not_a_traceback(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path / "state", database_url="postgresql://nobody@127.0.0.1:1/none")
    app = OrchestryConsole(EngineBackend(settings), poll_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.start_error, timeout=30, what="start error")
        assert "engine could not start" in str(app.query_one("#apps-empty").render())
        await pilot.press("s")
        assert len(app.screen_stack) == 1
