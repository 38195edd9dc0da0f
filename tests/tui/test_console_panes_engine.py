"""The cluster and logs panes against a real Engine (Docker, nginx, SQLite), driven by keys."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from textual.widgets import Button

from core import __version__
from core.engine import Engine
from core.services import app_logs
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.widgets.cluster_pane import ClusterPane
from orchestry_tui.console.widgets.events_pane import EventsPane
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from orchestry_tui.console.widgets.log_pane import LogPane
from tests.integration.harness import get_text, lb, ready_is
from tests.tui.conftest import until

SIZE = (200, 50)


def console(engine: Engine, readonly: bool = False) -> OrchestryConsole:
    backend = EngineBackend(engine.settings, engine=engine)
    return OrchestryConsole(backend, readonly=readonly, poll_seconds=0.3)


def pane_text(app: OrchestryConsole) -> str:
    return "\n".join(line.plain for line in app.query_one(LogPane).view.lines)


def status(app: OrchestryConsole) -> str:
    return str(app.query_one("#pane-log-status").render())


async def not_found(engine: Engine, app_name: str) -> None:
    """One request through nginx for a missing page: the replica logs "response:404" (its health
    checks log only 200s), so the line can be told apart from the steady probe lines."""
    await get_text(lb(engine, app_name, f"missing-{uuid.uuid4().hex[:8]}"))


def misses(app: OrchestryConsole) -> int:
    return pane_text(app).count("response:404")


async def test_logs_pane_follows_pauses_resumes_and_switches_with_the_selection(
    engine: Engine, running_app: str
) -> None:
    await engine.scale(running_app, 2)
    await until(lambda: ready_is(engine, running_app, 2), timeout=60, what="2 ready")
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        logs = app.query_one(LogPane)
        await until(lambda: f"{running_app}-1" in pane_text(app), timeout=15, what="the tail of the logs")
        assert logs.border_title == f"logs {running_app} (all replicas)"

        before = misses(app)
        await not_found(engine, running_app)
        sent = time.monotonic()
        await until(lambda: misses(app) > before, timeout=10, what="the new line")
        print(f"a new log line reached the pane {time.monotonic() - sent:.2f} s after its request")
        assert status(app).startswith("following")

        logs.view.focus()
        await pilot.press("pageup")
        assert not logs.view.following and status(app).startswith("paused")
        paused_at = misses(app)
        for _ in range(3):
            await not_found(engine, running_app)
        await until(lambda: logs.view.unseen >= 3, timeout=10, what="lines counted while paused")
        assert f"{logs.view.unseen} new lines" in status(app)
        await pilot.press("G")
        assert logs.view.following and logs.view.unseen == 0
        await until(lambda: misses(app) >= paused_at + 3, what="the lines that came while paused")

        replicas = app.query_one("#replicas", KeyedTable)
        replicas.focus()
        await pilot.press("down")  # onto the second replica: the pane narrows to it
        second = f"{running_app}-2"
        await until(lambda: logs.replica == second, what="the pane follows the selected replica")
        assert logs.border_title == f"logs {second}"
        shown = [line.plain for line in logs.view.lines]
        assert shown and all(second in line for line in shown)

        app.query_one("#apps", KeyedTable).focus()
        app.query_one(LogPane).follow(running_app, None)  # what highlighting an app row does
        await until(lambda: f"{running_app}-1 " in pane_text(app), what="all replicas again")

        logs.view.focus()
        await pilot.press("slash", *"404")
        await until(lambda: logs.filter_text == "404", what="the filter")
        # The filter matches the message anywhere: a probe line whose client port holds "404"
        # (127.0.0.1:34042: response:200) is rightly shown too.
        messages = [re.sub(r"^\S+ \S+\s+(│ )?", "", line.plain) for line in logs.view.lines]
        assert all("404" in message for message in messages)
        assert any("response:404" in message for message in messages)
        await pilot.press("escape")
        assert logs.filter_text == "" and f"{running_app}-2 " in pane_text(app)


async def replicas_are(engine: Engine, name: str, count: int) -> bool:
    return len((await engine.get_app(name)).replicas) == count


def lines_of(app: OrchestryConsole, replica: str) -> int:
    return sum(1 for line in app.query_one(LogPane).view.lines if f" {replica} " in line.plain)


async def test_logs_pane_follows_a_scaled_up_replica_and_lets_go_of_a_removed_one(
    engine: Engine, running_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Out of reach: each replica the pane picks up here was found through the engine's events.
    monkeypatch.setattr(app_logs, "FOLLOW_FALLBACK_RELIST_SECONDS", 3600.0)
    first, second = f"{running_app}-1", f"{running_app}-2"
    app = console(engine)
    async with app.run_test(size=SIZE):
        await until(lambda: lines_of(app, first), timeout=15, what="the first replica's lines")

        await engine.scale(running_app, 2)
        await until(lambda: ready_is(engine, running_app, 2), timeout=60, what="2 ready")
        # The demo logs each health probe (one a second): the new replica's lines come at once.
        await until(lambda: lines_of(app, second), timeout=10, what="the scaled-up replica's lines")

        await engine.scale(running_app, 1)
        await until(lambda: replicas_are(engine, running_app, 1), timeout=60, what="slot 2 removed")
        shown_first = lines_of(app, first)
        # One more line of the kept replica: whatever the removed one wrote last has arrived too.
        await until(lambda: lines_of(app, first) > shown_first, timeout=10, what="a line after the removal")
        gone, shown_first = lines_of(app, second), lines_of(app, first)
        await until(lambda: lines_of(app, first) >= shown_first + 3, timeout=10, what="the kept replica")
        assert lines_of(app, second) == gone, "the removed replica's stream ended with it"
        assert status(app).startswith("following")

        await engine.scale(running_app, 2)  # a new container in slot 2: followed again
        await until(lambda: lines_of(app, second) > gone, timeout=60, what="the new slot-2 replica's lines")


async def test_cluster_pane_shows_this_node_and_step_down_moves_the_term(
    engine: Engine, running_app: str
) -> None:
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.query_one(ClusterPane).view, what="the cluster overview")
        view = app.query_one(ClusterPane).view
        assert view is not None
        me = engine.node_id
        node = next(n for n in view.nodes if n.node_id == me)
        assert (node.state, node.database, node.version) == ("leader", "ok", __version__)
        first_term = view.term
        assert first_term is not None and view.history[0].ended is None
        left = app.query_one(ClusterPane).lease_left()
        assert left is not None and 0 < left <= engine.cluster.ttl

        await pilot.press("L")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        assert me in str(app.screen.query_one("#question").render())
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("enter")  # Cancel has the focus: nothing happens
        assert engine.cluster.term == first_term and engine.cluster.is_leader()

        await pilot.press("L")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation again")
        app.screen.query_one("#confirm", Button).press()
        # A lone node takes the lease back at once, as the next term.
        await until(lambda: engine.cluster.is_leader() and engine.cluster.term != first_term, what="term+1")

        def released() -> bool:
            view = app.query_one(ClusterPane).view
            return bool(view and view.term != first_term and view.history[1].ended == "released")

        await until(released, timeout=15, what="the pane's history shows the released term")
        said = "".join(f"leader is now {me} (term {engine.cluster.term})".split())

        def events() -> str:
            return "".join("".join(seg.text for seg in strip) for strip in app.query_one(EventsPane).lines)

        await until(lambda: said in "".join(events().split()), what="the leader change event")


async def test_readonly_refuses_step_down(engine: Engine, running_app: str) -> None:
    app = console(engine, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.query_one(ClusterPane).view, what="the cluster overview")
        term = engine.cluster.term
        await pilot.press("L")
        # The refusal is a notification; wait for its delivery rather than a fixed pause.
        await until(lambda: any("read-only" in n.message for n in app._notifications), what="the refusal")
        assert len(app.screen_stack) == 1, "no confirmation dialog opens in read-only mode"
        assert engine.cluster.term == term and engine.cluster.is_leader()
