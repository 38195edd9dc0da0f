"""The console's what-if screen: a key on an app, both replica curves and summaries from a backtest,
edits rerun it, bad input is one notification, and the candidate is applied only after a confirmation."""

from __future__ import annotations

from pathlib import Path

import yaml
from textual import events
from textual.widgets import DataTable, Input, Select

from core.engine import Engine
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.fixed_backend import FIXED_DATA, FixedBackend, sample_backend
from orchestry_tui.console.http_backend import HttpBackend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.screens.whatif import WhatIfScreen
from tests.cli.conftest import start_daemon, stop_daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app
from tests.tui.conftest import until

SIZE = (160, 45)


def notes(app: OrchestryConsole) -> list[str]:
    return [n.message for n in app._notifications]


def summary(screen: WhatIfScreen, row: str) -> tuple[str, str]:
    table = screen.query_one("#whatif-summary", DataTable)
    for index in range(table.row_count):
        cells = [str(c) for c in table.get_row_at(index)]
        if cells[0] == row:
            return cells[1], cells[2]
    raise AssertionError(f"no row {row!r}")


async def open_whatif(app: OrchestryConsole, pilot: object) -> WhatIfScreen:
    await until(lambda: app.frames_applied, what="first frame")
    await pilot.press("w")  # type: ignore[attr-defined]
    await until(lambda: isinstance(app.screen, WhatIfScreen), what="the what-if screen")
    screen = app.screen
    assert isinstance(screen, WhatIfScreen)
    await until(lambda: screen.runs >= 1, what="the first backtest")
    return screen


async def rerun(screen: WhatIfScreen, change: object) -> None:
    before = screen.runs
    change()  # type: ignore[operator]
    await until(lambda: screen.runs > before, what="the backtest to rerun")


async def test_edits_rerun_the_backtest_and_bad_input_is_one_notification() -> None:
    app = OrchestryConsole(sample_backend(), poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_whatif(app, pilot)
        # Fixed data has no history: said once, naming the way out.
        assert screen.answer is None and "no recorded metric history" in screen.error
        # Notified through the message queue, after the run is counted: on a loaded host (load 12-15,
        # three runs of this file at once) the count was read before the notification came.
        await until(lambda: any("no recorded metric history" in n for n in notes(app)), what="the note")
        await pilot.pause(0.2)
        assert sum("no recorded metric history" in n for n in notes(app)) == 1

        await rerun(screen, lambda: setattr(screen.query_one("#whatif-source", Select), "value", "step"))
        assert screen.error == "" and screen.answer is not None
        assert summary(screen, "peak replicas") == ("6", "6")
        assert screen.query_one("#field-cooldownSeconds", Input).value == "180"  # defaults shown

        await rerun(screen, lambda: setattr(screen.query_one("#field-maxReplicas", Input), "value", "2"))
        assert summary(screen, "peak replicas") == ("6", "2")
        current, candidate = summary(screen, "replica-minutes")
        assert float(candidate) < float(current)

        await rerun(screen, lambda: setattr(screen.query_one("#field-minReplicas", Input), "value", "9"))
        assert "minReplicas" in screen.error and "maxReplicas" in screen.error
        # The notification is posted through the message queue: wait for it rather than race it.
        await until(lambda: any("minReplicas" in n for n in notes(app)), what="the minReplicas notification")

        await rerun(screen, lambda: setattr(screen.query_one("#field-minReplicas", Input), "value", "1"))
        await rerun(screen, lambda: setattr(screen.query_one("#field-scaleInStep", Input), "value", "lots"))
        assert "scaleInStep" in screen.error

        # Fixed data refuses changes: applying says so, through the confirmation first.
        screen.query_one("#field-scaleInStep", Input).value = "1"
        await pilot.press("ctrl+o")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        assert "maxReplicas 6 → 2" in app.screen.question  # type: ignore[attr-defined]
        await pilot.click("#confirm")
        await until(lambda: FIXED_DATA in notes(app), what="the refusal")
        await pilot.press("escape")
        assert not isinstance(app.screen, WhatIfScreen)


async def test_a_readonly_console_backtests_but_never_applies() -> None:
    app = OrchestryConsole(sample_backend(), readonly=True, poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_whatif(app, pilot)
        screen.query_one("#field-maxReplicas", Input).value = "3"
        await pilot.press("ctrl+o")
        await until(lambda: any("read-only" in n for n in notes(app)), what="the read-only notice")
        assert isinstance(app.screen, WhatIfScreen)


async def test_the_candidate_is_applied_after_the_confirmation(engine: Engine) -> None:
    name = unique_name("wif")
    doc = demo_app(name)
    doc["scaling"] = {**doc["scaling"], "mode": "auto", "maxReplicas": 6}
    await engine.register(doc)
    app = OrchestryConsole(EngineBackend(engine.settings, engine=engine, serve_api=False), poll_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_whatif(app, pilot)
        await rerun(screen, lambda: setattr(screen.query_one("#whatif-source", Select), "value", "ramp"))
        await rerun(screen, lambda: setattr(screen.query_one("#field-maxReplicas", Input), "value", "3"))
        assert summary(screen, "peak replicas")[1] == "3"
        await pilot.press("ctrl+o")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("escape")  # cancelled: nothing changes
        assert (await engine.get_app(name)).policy["maxReplicas"] == 6
        await pilot.press("ctrl+o")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.click("#confirm")
        await until(lambda: any("policy applied" in n for n in notes(app)), what="applied")
        assert (await engine.get_app(name)).policy["maxReplicas"] == 3
        assert screen.current_policy["maxReplicas"] == 3


async def test_attached_to_a_daemon_the_backtest_and_the_apply_go_through_its_api(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "daemon")
    try:
        name = unique_name("wifx")
        doc = demo_app(name)
        doc["scaling"] = {**doc["scaling"], "mode": "auto", "maxReplicas": 6}
        spec = tmp_path / f"{name}.yml"
        spec.write_text(yaml.safe_dump(doc))
        daemon.ok("register", str(spec))
        app = OrchestryConsole(HttpBackend(daemon.url, None, tmp_path / "snapshots"), poll_seconds=0.3)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_whatif(app, pilot)
            assert "no recorded metric history" in screen.error  # the daemon's 400, as one notification
            await rerun(screen, lambda: setattr(screen.query_one("#whatif-source", Select), "value", "step"))
            assert screen.answer is not None
            await rerun(screen, lambda: setattr(screen.query_one("#field-maxReplicas", Input), "value", "2"))
            current, candidate = summary(screen, "peak replicas")
            assert int(current) > 2 and candidate == "2"
            await pilot.press("ctrl+o")
            await until(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
            await pilot.click("#confirm")
            await until(lambda: any("policy applied" in n for n in notes(app)), what="applied")
        described = daemon.json("describe", name)
        assert described["scaling"]["maxReplicas"] == 2, described["scaling"]
    finally:
        stop_daemon(daemon)


async def test_the_screen_is_painted_before_its_backtest_answers() -> None:
    """The key is answered by the screen with the app's fields; the backtest (its chart, the costliest
    thing drawn) follows in a later paint, each time the screen is opened."""
    app = OrchestryConsole(sample_backend(), poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        runs_painted: list[list[int]] = []  # per opening: the backtests answered at each paint
        display = app._display

        def painted(screen: object, renderable: object) -> None:
            display(screen, renderable)  # type: ignore[arg-type]
            if renderable is not None and isinstance(app.screen, WhatIfScreen):
                runs_painted[-1].append(app.screen.runs)

        app._display = painted  # type: ignore[method-assign]
        for _ in range(2):
            before = app.get_screen("whatif", WhatIfScreen).runs if app.is_screen_installed("whatif") else 0
            runs_painted.append([])
            await pilot.press("w")
            await until(lambda: bool(runs_painted[-1]), what="the what-if screen painted")
            assert runs_painted[-1][0] == before  # no answer drawn in the paint that answers the key
            await until(lambda: before + 1 in runs_painted[-1], what="the backtest's answer painted")  # noqa: B023
            screen = app.screen
            assert isinstance(screen, WhatIfScreen) and "no recorded metric history" in screen.error
            await pilot.press("escape")
            await until(lambda: len(app.screen_stack) == 1, what="the what-if screen closed")


def count_backtests(backend: FixedBackend) -> list[str]:
    """The names of the apps the console asks ``backend`` to backtest, in order, as it asks."""
    asked: list[str] = []
    backtest = backend.backtest

    async def counted(name: str, *args: object) -> dict[str, object]:
        asked.append(name)
        return await backtest(name, *args)  # type: ignore[arg-type]

    backend.backtest = counted  # type: ignore[method-assign]
    return asked


async def test_a_screen_closed_at_once_runs_no_backtest() -> None:
    """Opened and closed again before its backtest started (a moment after its first paint): none runs
    for a screen no one sees; opened again, it runs."""
    backend = sample_backend()
    asked = count_backtests(backend)
    app = OrchestryConsole(backend, poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        app.post_message(events.Key("w", None))
        app.post_message(events.Key("escape", None))
        await until(lambda: app.is_screen_installed("whatif"), what="the what-if screen")
        screen = app.get_screen("whatif", WhatIfScreen)
        await until(lambda: screen.is_mounted and len(app.screen_stack) == 1, what="it closed")
        await pilot.pause(0.3)
        assert asked == [] and screen.runs == 0
        assert await open_whatif(app, pilot) is screen
        assert asked == [app.selected] and screen.runs == 1


async def test_a_screen_built_ahead_runs_no_backtest_until_it_is_opened() -> None:
    """Built and painted ahead while the console idles, the what-if ran a backtest no one saw (its
    fields' first Changed events) and drew its results off screen: at 1,000 replicas some 30-60 ms of
    CPU for nothing, and its first open cleared them and laid the screen out again (twice the CPU of a
    later open).  It waits for its first open, which runs one."""
    backend = sample_backend()
    asked = count_backtests(backend)
    app = OrchestryConsole(backend, poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        ready = lambda: app.get_screen("whatif", WhatIfScreen).painted_ahead  # noqa: E731
        await until(lambda: app.is_screen_installed("whatif") and ready(), what="the what-if painted ahead")
        screen = app.get_screen("whatif", WhatIfScreen)
        await pilot.pause(0.6)  # longer than the edits' debounce
        assert asked == [] and screen.runs == 0
        assert screen.query_one("#whatif-summary", DataTable).row_count == 0
        assert await open_whatif(app, pilot) is screen
        assert asked == [app.selected] and screen.runs == 1


async def test_a_timer_firing_after_the_close_runs_no_backtest() -> None:
    """Closed, the screen leaves the stack at once but handles its suspend (which stops its timer) in
    its turn: a timer firing in between (a loaded host, 1 run in 6) ran a backtest no one saw."""
    backend = sample_backend()
    asked = count_backtests(backend)
    app = OrchestryConsole(backend, poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_whatif(app, pilot)
        screen.query_one("#field-maxReplicas", Input).value = "2"  # an edit, its rerun pending
        app.pop_screen()
        screen._debounced()  # as its timer firing before the screen handled its suspend
        await pilot.pause(0.6)
        assert asked == [app.selected] and screen.runs == 1


async def test_a_rerun_timer_firing_as_the_console_closes_does_nothing() -> None:
    """A full run caught the what-if's timer firing while the console closed, after the screen's widgets
    were removed: NoMatches '#whatif-source' ended the console with a traceback instead of quitting.
    Likewise its Mount, for a screen being built ahead as the console closed ('#whatif-summary')."""
    backend = sample_backend()
    app = OrchestryConsole(backend, poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_whatif(app, pilot)
        runs = screen.runs
        await screen.query_one("#whatif-body").remove()  # as the console's shutdown removes them
        screen.rerun(force=True)
        screen.on_mount()  # a screen built ahead meanwhile: its Mount came after the removal
        await pilot.pause(0.2)
        assert screen.runs == runs and app.is_running
