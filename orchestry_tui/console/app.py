"""The Orchestry console: apps, replicas, charts and events of an embedded engine, steered by keys.

All I/O runs in workers; the App owns every state change.  The refresh loop schedules its next run
only when the last one finished (no pile-up when the engine is slow) and skips while a dialog is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static, Tab, Tabs

from core.errors import NotLeader, OrchestryError
from core.models import AppView, Event
from orchestry_tui.console.actions import ACTIONS, BY_ACTION, bindings
from orchestry_tui.console.backend import BackendUnreachable, ConsoleBackend
from orchestry_tui.console.follower import follower_refusal
from orchestry_tui.console.formatting import APP_COLUMNS, REPLICA_COLUMNS, app_row, replica_row
from orchestry_tui.console.frame import ClusterView, Frame, Leadership
from orchestry_tui.console.gc_pacing import CollectionPacer
from orchestry_tui.console.layout import PANE_NAMES, TITLES, Layout, is_compact
from orchestry_tui.console.log_sink import ConsoleLog
from orchestry_tui.console.mode_toggle import ModeToggles
from orchestry_tui.console.natural import natural_key
from orchestry_tui.console.preferences import Preferences, config_path
from orchestry_tui.console.preferences import load as load_preferences
from orchestry_tui.console.preferences import save as save_preferences
from orchestry_tui.console.screens import confirm
from orchestry_tui.console.screens.describe import DescribeScreen
from orchestry_tui.console.screens.help import HelpScreen
from orchestry_tui.console.screens.kept import built, kept, warm
from orchestry_tui.console.screens.logs import LogsScreen
from orchestry_tui.console.screens.nodes import NodesScreen
from orchestry_tui.console.screens.quit_stop import QuitAndStopScreen
from orchestry_tui.console.screens.scale import ScaleScreen
from orchestry_tui.console.screens.whatif import WhatIfScreen
from orchestry_tui.console.textual_fixes import release_widget_styles
from orchestry_tui.console.widgets.charts import AppCharts
from orchestry_tui.console.widgets.cluster_pane import ClusterPane
from orchestry_tui.console.widgets.events_pane import EventsPane
from orchestry_tui.console.widgets.footer import SteadyFooter
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from orchestry_tui.console.widgets.log_pane import LogPane
from orchestry_tui.console.widgets.status_bar import StatusBar

# Like k9s' default refresh rate. Replicas are sampled every 2 s, so a faster refresh redrew the charts
# with no new data, and plotting was most of the console's idle CPU. Every action refreshes at once.
POLL_SECONDS = 2.0
# The one clock of every periodic repaint: each tick moves the lease countdown and writes the log lines
# received since the last, and every other tick (POLL_SECONDS) starts the refresh, whose frame carries
# them instead; so an idle second costs one compositor pass, not one per pane and one per refresh.
CLOCK_SECONDS = 1.0
# After the first frame, help, describe, the dialogs and the views are built and painted ahead one step
# at a time (5-40 ms of CPU at 1,000 replicas) this far apart: some 30 steps, done within 4 s of the first
# frame (at 0.15 s apart the last ones still ran 5 s after it, into what the benches take as idle)...
WARM_SCREEN_SECONDS = 0.1
# ...and none while keys come: a step waits until no input came for this long.
WARM_QUIET_SECONDS = 0.5
# While keys come (the last within this long), the clock's refresh waits: its frame, plots and the paint
# of every figure that moved hold the loop 30-70 ms of CPU at 1,000 replicas, and a key that came
# meanwhile waited for all of it (the slowest PageDowns through the apps table were those)...
KEYS_QUIET_SECONDS = 0.5
# ...but never more than this many ticks: under keys that never pause, the figures are at most two
# seconds later than the refresh's own rhythm (a newly selected app's replicas are read at once anyway).
REFRESH_WAITS_TICKS = 2
QUIT_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
HANG_UP_STOP_SECONDS = 30.0
# A quit while the engine starts waits this long for the start, so that it can stop what started (see
# _stop_backend); a start that hangs longer is given up, as before.
QUIT_WAITS_FOR_START_SECONDS = 30.0
# Closing waits this long for a screen being built ahead to finish mounting (see _shutdown).
CLOSE_WAITS_FOR_BUILD_SECONDS = 5.0
HISTORY_EVENTS = 50
# A new selection's charts wait until the cursor has rested this long (see _refresh_when_settled).
SELECTION_SETTLE_SECONDS = 0.15
NO_APPS = (
    "no apps registered: run `orchestry apply FILE` in another terminal, "
    "or start the console with --apply FILE"
)
QUIT_NOTE = "console closed: apps keep running and nginx keeps serving; `orchestry` again adopts them"
# Keys of every action that changes state: read-only hides them and answers them with a notice.
READONLY_REFUSED = {key: action for action in ACTIONS if action.mutating for key in action.keys.split(",")}
QUIT_AND_STOP_NOTE = "console closed: every app was stopped (`orchestry up NAME` starts one again)"
LIGHT_THEME = "textual-light"
DARK_THEME = "textual-dark"
# What each write key asks for, as a follower's refusal names it.
FOLLOWER_REFUSES = {
    "scale": "scaling {app}",
    "restart_app": "restarting {app}",
    "restart_replica": "restarting a replica of {app}",
    "toggle_mode": "switching {app} between auto and manual",
    "up": "starting {app}",
    "down": "stopping {app}",
}
# The keys of those actions, which a follower shows dimmed and answers itself (see check_action).
FOLLOWER_KEYS = {
    key: action.action
    for action in ACTIONS
    if action.action in FOLLOWER_REFUSES
    for key in action.keys.split(",")
}
# The widget that is each pane on screen.
PANE_IDS = {
    "apps": "apps-pane",
    "replicas": "replicas-pane",
    "charts": "charts",
    "events": "events",
    "logs": "logs-pane",
    "cluster": "cluster-pane",
}


def no_logs_reason(app: AppView) -> str:
    """Why the logs pane will show no line of ``app`` (it has no replica that could write one), or ""."""
    if app.status == "stopped":
        return f"{app.name} is stopped: no replica writes logs; press u to start it"
    if app.desired_replicas == 0 and not app.replicas:
        return f"{app.name} is scaled to 0 replicas: no replica writes logs; press s to scale it up"
    if app.status == "error" and not app.replicas:
        return f"{app.name} cannot start its replicas, so none writes logs: the replicas pane says why"
    return ""


def policy_bounds(app: AppView) -> tuple[int, int] | None:
    """The app's (minReplicas, maxReplicas), or None when its policy does not say."""
    low, high = app.policy.get("minReplicas"), app.policy.get("maxReplicas")
    return (low, high) if isinstance(low, int) and isinstance(high, int) else None


def docker_outage(status_reason: str) -> str:
    """The Docker outage the engine puts in an app's status reason (compute_status appends the
    runtime's "Docker engine at URL does not answer (why): start it ..."), or "" while Docker answers."""
    for marker in ("Docker engine at ", "Swarm manager at "):
        start = status_reason.find(marker)
        if start >= 0 and " does not answer" in status_reason[start:]:
            return status_reason[start:]
    return ""


class OrchestryConsole(App[int]):
    CSS_PATH = "styles.tcss"
    AUTO_FOCUS = "#apps"
    TITLE = "orchestry"
    BINDINGS = bindings()

    def __init__(
        self,
        backend: ConsoleBackend,
        readonly: bool = False,
        poll_seconds: float = POLL_SECONDS,
        preferences_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        # Tests and screenshots pass their own file; the console reads the user's config file.
        self.preferences_path = preferences_path if preferences_path is not None else config_path()
        self.preferences: Preferences = load_preferences(self.preferences_path)
        self.layout_state: Layout = self.preferences.layout
        self.compact = False
        self.cluster: ClusterView | None = None
        self._last_leadership: Leadership | None = None
        self._filter_target = "apps"
        self._apps_rows = 0  # the apps pane's height in compact mode
        self.readonly = readonly
        self.poll_seconds = poll_seconds
        self.frame: Frame | None = None
        self.frames_applied = 0
        # Every screen built and painted ahead (_warm_screens): the console is idle from here on, and
        # snapshot tests wait for it, as what a screen built ahead does shows then, not by chance.
        self.screens_warmed = False
        self.selected: str | None = None
        self.filter_text = ""
        self.engine_ready = asyncio.Event()
        self.start_error = ""
        self._starting = False
        self._start_over = asyncio.Event()
        self._stopped = False
        self._shutting_down = False  # Textual's shutdown began: no screen is built ahead any more
        self._wake = asyncio.Event()
        self._poll_started = 0.0  # monotonic time the last refresh began
        self._mode_toggles = ModeToggles()  # what `m` toggles from while the frame lags the presses
        self._polling = False
        self._panes_wait_for_frame = False  # this tick's pane work rides on the refresh it started
        self._collections = CollectionPacer()  # full garbage collections where no key waits (see there)
        self._input_unanswered = False  # input came that no paint has shown yet
        self._collect_after_paint = False
        self._last_input = float("-inf")
        self._refresh_waited = 0  # clock ticks the due refresh waited for keys (see KEYS_QUIET_SECONDS)
        self._settle_timer: Timer | None = None
        self.last_snapshot: Path | None = None
        self.disconnected: BackendUnreachable | None = None
        self.console_log = ConsoleLog(backend.state_dir, self._log_record_arrived)
        self._log_event_ids = itertools.count(-1, -1)  # below every stored event id: never a clash

    # --- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Input(placeholder="filter apps by name · Enter keeps · Esc clears", id="filter")
        yield Tabs(id="pane-tabs")
        with Vertical(id="main"):
            with Horizontal(id="row-top", classes="row"):
                with Vertical(id="apps-pane", classes="pane"):
                    yield KeyedTable(APP_COLUMNS, id="apps")
                    yield Static("starting engine…", id="apps-empty", classes="empty")
                yield ClusterPane(id="cluster-pane", classes="pane")
            with Vertical(id="replicas-pane", classes="pane"):
                yield KeyedTable(REPLICA_COLUMNS, positional=True, id="replicas")
                yield Static("select an app above to see its replicas", id="replicas-empty", classes="empty")
            with Horizontal(id="row-bottom", classes="row"):
                yield AppCharts(id="charts", classes="pane")
                with Vertical(id="side"):
                    yield EventsPane(id="events", classes="pane")
                    yield LogPane(self.backend, id="logs-pane", classes="pane")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.console_log.attach(asyncio.get_running_loop())
        self.query_one("#apps-pane").border_title = "apps"
        self.query_one("#replicas-pane").border_title = "replicas"
        self.query_one("#charts").border_title = "charts"
        self.query_one("#events").border_title = "events"
        self.query_one("#logs-pane").border_title = "logs"
        self.query_one("#cluster-pane").border_title = "cluster"
        self.query_one(StatusBar).show_starting("starting engine…")
        self._apply_preferences()
        self._apply_layout()
        self._quit_on_signals()
        self.set_interval(CLOCK_SECONDS, self._on_clock)
        self._collections.start()
        release_widget_styles()  # closed screens' widgets no longer pinned (see there)
        # After the first frame: the screen is up before Docker, nginx and the store are touched.
        self.call_after_refresh(self._start_backend)

    # --- start, refresh, events -----------------------------------------------------------------
    @work(exclusive=True, group="start")
    async def _start_backend(self) -> None:
        if self._stopped:
            return  # quit before the engine was touched
        self._starting = True
        try:
            notices = await self.backend.start()
        except OrchestryError as exc:
            self._show_start_failure(str(exc))
            return
        except Exception as exc:  # an unexpected failure is still shown, never a traceback
            self._show_start_failure(f"{type(exc).__name__}: {exc}")
            return
        else:
            self.engine_ready.set()
        finally:
            self._starting = False
            self._start_over.set()
        if self._stopped:
            return  # quit while it started: the quit stops it now (it waited for this)
        for notice in notices:
            self.notify(notice, severity="warning" if "not" in notice else "information", timeout=8)
        self._follow_events()
        self._poll()

    def _show_start_failure(self, message: str) -> None:
        self.start_error = message
        self.query_one(StatusBar).show_starting("engine failed to start")
        self.query_one("#apps-empty", Static).update(
            f"the engine could not start: {message}\nfix the cause and start the console again (q quits)"
        )
        self.notify(message, title="engine failed to start", severity="error", timeout=30)

    @work(exclusive=True, group="poll")
    async def _poll(self) -> None:
        """One refresh at a time: the next starts on the clock's tick when one is due (never while the
        last still runs), or when an action wakes it."""
        while not self._stopped:
            self._wake.clear()
            self._poll_started, self._polling = time.monotonic(), True
            self._refresh_waited = 0
            if not self._dialog_open():  # Dolphie's habit: no redraw behind a dialog
                try:
                    # Work only for what is on screen: no chart series without the charts pane, no
                    # cluster overview (a store read and a /health per peer) without the cluster pane.
                    frame, cluster = await asyncio.gather(
                        self.backend.frame(self.selected, charts=self._shows("charts")),
                        self._cluster_view(),
                    )
                except BackendUnreachable as exc:
                    self._show_disconnected(exc)
                except OrchestryError as exc:
                    self.notify(f"refresh failed: {exc}", severity="error", timeout=5)
                else:
                    if self.disconnected is not None:
                        self.notify(f"reconnected to {self.disconnected.url}")
                        self.disconnected = None
                    # A dialog or the logs screen may have opened while the frame was built (or its
                    # charts): the main view's widgets are then not on the active screen, so this
                    # frame is dropped.
                    with contextlib.suppress(NoMatches):  # the console is closing
                        await self._prepare_charts(frame)
                    if not self._dialog_open():
                        try:
                            self._apply(frame)
                            if cluster is not None:
                                self.cluster = cluster
                                self.query_one(ClusterPane).show(cluster)
                        except NoMatches:
                            return  # the console is closing: its widgets are already gone
            # In the same burst as the frame: the screen repaints once for both.
            self._polling = False
            self._tick_panes()
            if self.poll_seconds >= CLOCK_SECONDS:
                await self._wake.wait()  # the clock (or an action) wakes it
            else:  # tests refresh faster than the clock ticks
                # Not wait_for: on Python 3.11 it swallows a cancel (the console closing) that comes
                # with a wake, and this loop would go on.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()

    async def _prepare_charts(self, frame: Frame) -> None:
        """Build the frame's chart plots ahead of applying it, each in its own step of the loop: built
        in the paint, as the plot widget does, the four of them and the tables held the loop in one
        go (~30 ms at 1,000 replicas), and a key that came meanwhile waited for all of it."""
        if self._dialog_open() or not self._shows("charts"):
            return
        pane = self.query_one(AppCharts)
        data = frame.charts if frame.charts and frame.charts.app == self.selected else None
        for chart, request in pane.drawable(data, frame.now, self.selected):
            for step in (partial(chart.prepare, request), chart.paint_ahead):
                step()
                await asyncio.sleep(0)  # what came meanwhile (a key) goes first
                if self._dialog_open():
                    return

    def _on_clock(self) -> None:
        """Once a second: start the refresh when one is due (the panes' work then waits for its frame,
        unless the last tick's still does: a slow refresh never holds the countdown or the logs back)
        or else move the countdown and write new log lines now."""
        if self.frames_applied:
            if self._input_unanswered:
                # A key came since the last paint: collect right after the paint that answers it (a
                # full collection stops the loop 10-35 ms at 1,000 replicas; one run between a key and
                # its paint added that to the key, and a person's next key comes later than that).
                self._collect_after_paint = True
            else:
                self._collections.tick()
        now = time.monotonic()
        due = now - self._poll_started >= self.poll_seconds - CLOCK_SECONDS / 2
        if self.engine_ready.is_set() and due and not self._polling and not self._panes_wait_for_frame:
            if now - self._last_input < KEYS_QUIET_SECONDS and self._refresh_waited < REFRESH_WAITS_TICKS:
                self._refresh_waited += 1
            else:
                self._refresh_waited = 0
                self._panes_wait_for_frame = True
                self.refresh_now()
                return
        self._tick_panes()

    def _tick_panes(self) -> None:
        self._panes_wait_for_frame = False
        with contextlib.suppress(NoMatches):  # the console closes
            self.query_one(ClusterPane).tick()
            self.query_one(LogPane).flush()

    async def _cluster_view(self) -> ClusterView | None:
        if not self._shows("cluster"):
            return None
        try:
            return await self.backend.cluster()
        except BackendUnreachable:
            raise
        except OrchestryError as exc:
            with contextlib.suppress(NoMatches):  # the console closes: its panes are gone already
                self.query_one(ClusterPane).border_subtitle = f"cluster overview failed: {exc}"
            return None

    def _show_disconnected(self, exc: BackendUnreachable) -> None:
        """A state, not an error: shown in the header until a refresh succeeds again."""
        if self.disconnected is None:
            self.notify(f"{exc}, retrying", severity="warning", timeout=8)
        self.disconnected = exc
        if not self._dialog_open():
            with contextlib.suppress(NoMatches):  # the console closes: its header is gone already
                self.query_one(StatusBar).show_disconnected(f"{exc}, retrying")

    def refresh_now(self) -> None:
        """Refresh soon after a change or a new selection instead of waiting for the next tick."""
        self._wake.set()

    def _refresh_when_settled(self) -> None:
        """Refresh (charts of the newly selected app) once the cursor rests: a refresh reads every app,
        so paging through 100 apps refreshed after every key, on the loop the keys wait for."""
        if self._settle_timer is not None:
            self._settle_timer.stop()
        self._settle_timer = self.set_timer(SELECTION_SETTLE_SECONDS, self.refresh_now)

    def _dialog_open(self) -> bool:
        return len(self.screen_stack) > 1

    @work(exclusive=True, group="events")
    async def _follow_events(self) -> None:
        pane = self.query_one(EventsPane)
        try:
            pane.add(list(reversed(await self.backend.recent_events(HISTORY_EVENTS))))
            async for event in self.backend.live_events():
                pane.add([event])
        except OrchestryError as exc:
            self.notify(f"event stream ended: {exc}", severity="error")

    # --- drawing ------------------------------------------------------------------------------
    def _visible_apps(self, frame: Frame) -> list[AppView]:
        needle = self.filter_text.strip().lower()
        return [a for a in frame.apps if needle in a.name.lower()]

    def _apply(self, frame: Frame) -> None:
        follows = self._follows()
        self.frame = frame
        self._mode_toggles.seen(frame.apps, self._poll_started)
        self._note_leader_change(frame.leadership, frame.now)
        if self._follows() != follows:
            self.refresh_bindings()  # the write keys dim on a follower and light up on the leader
        with self.batch_update():
            self.query_one(StatusBar).show(
                frame.leadership,
                frame.now,
                self.backend.lb_address,
                self.backend.api_address,
                self.readonly,
                runtime=getattr(self.backend, "runtime", "docker"),
            )
            self._draw_apps(frame)
            self._draw_replicas(frame)
            if self._shows("charts"):
                charts = frame.charts if frame.charts and frame.charts.app == self.selected else None
                self.query_one(AppCharts).show(charts, frame.now, self.selected)
        self.frames_applied += 1
        if self.frames_applied == 1:
            self.set_timer(WARM_SCREEN_SECONDS, self._warm_screens)

    def _note_leader_change(self, now: Leadership, at: float) -> None:
        """A new leader or term shows as it happens: a line in the events pane and a notification.

        The engine's own "became leader" event is written by the node that won, which an in-process
        follower's event bus never carries: the console says it from what every refresh reads."""
        if now.leader_id is None or now.term is None:
            return  # between terms: the change shows once someone leads
        before, self._last_leadership = self._last_leadership, now
        if before is None or (now.leader_id, now.term) == (before.leader_id, before.term):
            return
        was = f"was {before.leader_id} (term {before.term})"
        message = f"leader is now {now.leader_id} (term {now.term}); {was}"
        event = Event(-now.term, None, "cluster", "leader_changed", message, {}, at)
        self.query_one(EventsPane).add([event])
        self.notify(message, title="leadership moved", timeout=8)
        self.refresh_now()

    def _draw_apps(self, frame: Frame) -> None:
        table = self.query_one("#apps", KeyedTable)
        empty = self.query_one("#apps-empty", Static)
        apps = sorted(self._visible_apps(frame), key=lambda a: natural_key(a.name))  # app2 before app10
        table.sync({a.name: app_row(a, frame.figures.get(a.name)) for a in apps})
        empty.display = not apps
        if self.compact and self._apps_rows != self._compact_apps_height():
            self._apply_layout()
        if not frame.apps:
            empty.update(NO_APPS)
        elif not apps:
            empty.update(f"no app matches the filter '{self.filter_text}': press / then Esc to clear it")
        names = [a.name for a in apps]
        if self.selected not in names:
            self.selected = names[0] if names else None
            if self.selected:
                table.select_key(self.selected)
                self.refresh_now()  # this frame has no charts for the newly selected app

    def _draw_replicas(self, frame: Frame) -> None:
        table = self.query_one("#replicas", KeyedTable)
        empty = self.query_one("#replicas-empty", Static)
        app = self.selected_app()
        self.query_one("#replicas-pane").border_title = f"replicas of {app.name}" if app else "replicas"
        # A frame lists only the then-selected app's replicas: another's are read at once (never shown
        # with figures of an older frame).
        pending = app is not None and app.name in frame.summarised
        if app is not None and pending:
            now = self.backend.app_now(app.name)
            if now is not None:
                frame = self._with_replicas(frame, now)
                app, pending = now, False
        rows = {r.name: replica_row(r) for r in sorted(app.replicas, key=lambda r: r.slot)} if app else {}
        table.sync({} if pending else rows)
        empty.display = pending or not rows
        if app is not None and not pending:
            with contextlib.suppress(NoMatches):
                self.query_one(LogPane).idle(app.name, no_logs_reason(app))
        if app is None and self.filter_text.strip() and frame.apps:
            # Apps exist but the filter hides them all: "select an app above" pointed at an empty table.
            empty.update(f"no app shown: the filter '{self.filter_text}' matches none (press / then Esc)")
        elif app is None:
            empty.update("select an app above to see its replicas")
        elif pending:
            empty.update(f"reading the replicas of {app.name}…")
            self._read_replicas(app.name)
        elif app.status == "stopped":
            empty.update(f"{app.name} is stopped: press u to start it")
        elif not rows and app.status == "error":
            # Blocked (missing image, port clash...): the engine is not starting anything until it is fixed.
            empty.update(
                f"{app.name} cannot start its replicas (desired {app.desired_replicas}): "
                f"{app.status_reason}. Once that is fixed, press u to try again"
            )
        elif not rows and app.desired_replicas == 0:
            empty.update(f"{app.name} is scaled to 0 replicas: press s to scale it up")
        elif not rows and (outage := docker_outage(app.status_reason)):
            # Nothing starts while Docker is down: the engine retries and starts them once it answers.
            empty.update(
                f"{app.name} has no replicas (desired {app.desired_replicas}): Docker does not answer, so "
                f"none can start; they start when it answers (start dockerd, or check DOCKER_HOST). {outage}"
            )
        elif not rows:
            empty.update(
                f"{app.name} has no replicas yet (desired {app.desired_replicas}): "
                f"the engine is starting them; {app.status_reason}"
            )

    def selected_app(self) -> AppView | None:
        if self.frame is None or self.selected is None:
            return None
        return next((a for a in self.frame.apps if a.name == self.selected), None)

    @on(DataTable.RowHighlighted, "#apps")
    def _app_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name and name != self.selected:
            self.selected = name
            if self.frame is not None:
                self._draw_replicas(self.frame)
            self._refresh_when_settled()
        # A highlight that arrives while the console closes finds its panes already removed.
        with contextlib.suppress(NoMatches):
            self.query_one(LogPane).follow(self.selected, None)

    @work(exclusive=True, group="replicas")
    async def _read_replicas(self, name: str) -> None:
        """The newly selected app's replicas, with their current figures, without waiting for a frame
        (the last one listed that app as a summary)."""
        try:
            view = await self.backend.get_app(name)
        except OrchestryError:
            return  # deleted meanwhile, or the engine is away: the next frame shows what holds
        frame = self.frame
        if frame is None or name != self.selected or name not in frame.summarised:
            return  # moved on, or a newer frame already carries them
        with contextlib.suppress(NoMatches):  # the console closes
            self._draw_replicas(self._with_replicas(frame, view))

    def _with_replicas(self, frame: Frame, view: AppView) -> Frame:
        """``frame`` with ``view`` (an app with its replicas) in place of its summary; kept as current."""
        apps = [view if a.name == view.name else a for a in frame.apps]
        self.frame = dataclasses.replace(frame, apps=apps, summarised=frame.summarised - {view.name})
        return self.frame

    @on(DataTable.RowHighlighted, "#replicas")
    def _replica_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving through the replicas table narrows the logs pane to that replica."""
        with contextlib.suppress(NoMatches):  # as for the apps table: the console closes
            table = self.query_one("#replicas", KeyedTable)
            replica = table.key_of(event.row_key.value)
            if table.has_focus and replica:
                self.query_one(LogPane).follow(self.selected, replica)

    # --- filter -------------------------------------------------------------------------------
    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        logs = self.query_one(LogPane)
        self._filter_target = "logs" if logs.has_focus_within else "apps"
        if self._filter_target == "logs":
            field.placeholder = "filter log lines · Enter keeps · Esc clears"
            field.value = logs.filter_text
        else:
            field.placeholder = "filter apps by name · Enter keeps · Esc clears"
            field.value = self.filter_text
        field.add_class("shown")
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_target == "logs":
            self.query_one(LogPane).set_filter(event.value)
            return
        self.filter_text = event.value
        if self.frame is not None:
            self._apply(self.frame)

    def _filter_done(self) -> None:
        if self._filter_target == "logs":
            self.query_one("#pane-log").focus()
        else:
            self.query_one("#apps", KeyedTable).focus()

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        field = self.query_one("#filter", Input)
        if not field.value:
            field.remove_class("shown")
        self._filter_done()

    def on_key(self, event: Any) -> None:
        refused = READONLY_REFUSED.get(event.key) if self.readonly else None
        if refused is None and event.key in FOLLOWER_KEYS and self._follows():
            # Disabled by check_action, so Textual runs nothing: the action itself says why at once.
            getattr(self, f"action_{FOLLOWER_KEYS[event.key]}")()
            event.stop()
            return
        if refused is not None:  # hidden by check_action; the key still says why it does nothing
            self.notify(
                f"read-only: {refused.description.lower()} is disabled (console started with --readonly)",
                severity="warning",
            )
            event.stop()
            return
        field = self.query_one("#filter", Input)
        if event.key == "escape" and field.has_focus:
            field.value = ""
            field.remove_class("shown")
            self._filter_done()
            event.stop()

    # --- guarded changes ----------------------------------------------------------------------
    def _refused(self, action: str) -> bool:
        """True (and the reason said) when ``action`` may not run now: read-only, or still starting."""
        spec = BY_ACTION[action]
        if spec.mutating and self.readonly:
            self.notify(
                f"read-only: {spec.description.lower()} is disabled (console started with --readonly)",
                severity="warning",
            )
            return True
        if not self.engine_ready.is_set():
            self.notify(
                self.start_error or "the engine is still starting: try again in a moment", severity="warning"
            )
            return True
        return False

    def _target(self, action: str) -> AppView | None:
        """The selected app if the action may run now; otherwise say why not and return None."""
        if self._refused(action):
            return None
        app = self.selected_app()
        if app is None:
            self.notify("no app selected: add one with `orchestry apply FILE`", severity="warning")
            return None
        refused = FOLLOWER_REFUSES.get(action)
        if refused is not None and self.refused_on_follower(refused.format(app=app.name)):
            return None
        return app

    def refused_on_follower(self, what: str) -> bool:
        """True (and where to do it said, at once) when this console's node follows: its engine would
        refuse ``what``, and a dialog asked first threw its answer away."""
        leadership = self.frame.leadership if self.frame is not None else None
        refusal = follower_refusal(leadership, what, getattr(self.backend, "url", ""))
        if refusal:
            self.notify(refusal, title="not the leader", severity="warning", timeout=12)
            self.refresh_now()  # a leadership that moved meanwhile shows at once
        return bool(refusal)

    @work(group="change")
    async def _change(self, call: Callable[[], Awaitable[Any]], done: Callable[[Any], str | None]) -> None:
        try:
            result = await call()
        except NotLeader as exc:
            who = exc.leader_id or "not elected yet"
            self.notify(f"read-only: this node follows; leader is {who}", severity="warning")
            return
        except OrchestryError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        message = done(result)
        if message:
            self.notify(message)
        self.refresh_now()

    def action_scale(self) -> None:
        app = self._target("scale")
        if app is None:
            return

        def chosen(replicas: int | None) -> None:
            if replicas is None:
                return
            self._change(
                partial(self.backend.scale, app.name, replicas),
                partial(self._scaled, stopped=app.status == "stopped"),
            )

        asked = (app.name, app.desired_replicas, app.mode, policy_bounds(app))
        screen = kept(self, "scale", lambda: ScaleScreen(*asked), ScaleScreen)
        if screen not in self.screen_stack:
            screen.ask(*asked)
            self.push_screen(screen, chosen)

    def _scaled(self, result: Any, stopped: bool = False) -> str | None:
        """What a scale did, in this console's keys (the engine's message names CLI commands)."""
        app = result.app
        # A stopped app keeps the count for its next start: "scaling to 3" said something started.
        later = (
            f"{app} is stopped: it runs {result.replicas} replica(s) once started (press u)"
            if stopped
            else ""
        )
        if result.clamped:
            clamped = (
                f"{app} is in auto mode: scaled to {result.replicas} instead of {result.requested}, within "
                "its policy's minReplicas and maxReplicas; press m to switch to manual and go outside them"
            )
            self.notify(
                f"{clamped}; {later}" if later else clamped,
                title="clamped by the auto-scaling policy",
                severity="warning",
                timeout=10,
            )
            return None
        if later:
            return later
        if result.status == "no_change":
            return result.message
        return f"{app}: scaling to {result.replicas} replica(s)"

    def _confirm(self, question: str, label: str, then: Callable[[], None]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        confirm.ask(self, question, label, answered)

    def action_restart_app(self) -> None:
        app = self._target("restart_app")
        if app is None:
            return
        self._confirm(
            f"Restart every replica of {app.name}? They are replaced one at a time.",
            f"Restart {app.name}",
            lambda: self._change(
                partial(self.backend.restart, app.name),
                lambda slots: f"{app.name}: rolling restart of slot(s) {', '.join(map(str, slots))}",
            ),
        )

    def action_restart_replica(self) -> None:
        app = self._target("restart_replica")
        if app is None:
            return
        key = self.query_one("#replicas", KeyedTable).selected_key
        replica = next((r for r in app.replicas if r.name == key), None)
        if replica is None:
            self.notify(
                f"{app.name} has no replica selected: pick one in the replicas table", severity="warning"
            )
            return
        self._confirm(
            f"Restart replica {replica.name} (slot {replica.slot}) of {app.name}?",
            f"Restart {replica.name}",
            lambda: self._change(
                partial(self.backend.restart, app.name, replica.slot),
                lambda _slots: f"{replica.name}: restarting",
            ),
        )

    def action_toggle_mode(self) -> None:
        app = self._target("toggle_mode")
        if app is None:
            return
        mode = self._mode_toggles.ask(app)
        self._change(
            partial(self._mode_toggles.send, app.name, mode, self.backend.set_mode),
            lambda _: f"{app.name}: {mode} scaling",
        )

    def action_up(self) -> None:
        app = self._target("up")
        if app is None:
            return
        if app.status == "running" and app.desired_replicas == 0:
            # up keeps the replica count: "already running (0/0 ready)" hid that nothing runs.
            self.notify(f"{app.name} is scaled to 0: up starts nothing; press s to scale it up", timeout=6)
            return
        if app.status == "running" and app.ready_replicas >= app.desired_replicas:
            # The engine would answer "up" and change nothing: saying "starting…" suggested it did.
            self.notify(
                f"{app.name} is already running ({app.ready_replicas}/{app.desired_replicas} ready): "
                "nothing to start; press s to change its replica count",
                timeout=6,
            )
            return
        # An app in error is unblocked by up: its replicas are tried again.
        trying = "trying its replicas again" if app.status == "error" else "starting"
        self.notify(f"{app.name}: {trying}…")
        self._change(partial(self.backend.up, app.name), lambda _: f"{app.name} is up")

    def action_down(self) -> None:
        app = self._target("down")
        if app is None:
            return
        if app.status == "stopped" and not app.replicas:
            self.notify(f"{app.name} is already stopped: press u to start it", timeout=6)
            return
        self._confirm(
            f"Stop all {len(app.replicas)} replica(s) of {app.name}? Its traffic gets no answer until it "
            "is started again (u).",
            f"Stop {app.name}",
            lambda: self._change(partial(self.backend.down, app.name), lambda _: f"{app.name} is stopped"),
        )

    def action_step_down(self) -> None:
        if self._refused("step_down"):
            return
        leadership = self.frame.leadership if self.frame is not None else None
        leader = leadership.leader_id if leadership else None
        if leadership is None or leader is None:
            self.notify("no node leads right now: there is nothing to step down", severity="warning")
            return
        self._confirm(
            f"Ask the leader {leader} to step down? It releases the lease of term {leadership.term} and a "
            "follower takes the next term; apps keep running. With a single controller it takes the lease "
            "back at once.",
            f"Step down {leader}",
            lambda: self._change(self.backend.step_down, lambda message: message),
        )

    # --- views --------------------------------------------------------------------------------
    def action_logs(self) -> None:
        app = self._target("logs")
        if app is None:
            return
        screen = kept(self, "logs", lambda: LogsScreen(self.backend, app.name), LogsScreen)
        self._push_kept(screen, partial(screen.show, app.name))

    def action_describe(self) -> None:
        app = self._target("describe")
        if app is not None:
            self._describe(app.name)

    @work(group="describe")
    async def _describe(self, name: str) -> None:
        try:
            view = await self.backend.get_app(name)
        except OrchestryError as exc:
            self.notify(str(exc), severity="error")
            return
        screen = kept(self, "describe", lambda: DescribeScreen(view), DescribeScreen)
        screen.show(view)
        self._push_kept(screen)

    def action_whatif(self) -> None:
        app = self._target("whatif")
        if app is None:
            return
        build = partial(WhatIfScreen, self.backend, app.name, app.policy, self.readonly)
        screen = kept(self, "whatif", build, WhatIfScreen)
        self._push_kept(screen, partial(screen.show, app.name, app.policy))

    def action_nodes(self) -> None:
        screen = kept(self, "nodes", partial(NodesScreen, self.backend), NodesScreen)
        self._push_kept(screen, screen.show)

    def action_help(self) -> None:
        self._push_kept(kept(self, "help", lambda: HelpScreen(self.readonly), HelpScreen))

    def _warm_screens(self) -> None:
        """Build help, describe, the dialogs and the other views while idle, one every
        WARM_SCREEN_SECONDS, so that their first key finds them built (screens/kept.py)."""
        if self._shutting_down:
            return
        if time.monotonic() - self._last_input < WARM_QUIET_SECONDS:
            self.set_timer(WARM_SCREEN_SECONDS, self._warm_screens)  # a key now would wait for the step
            return
        shown = self.selected_app()
        screens: dict[str, Callable[[], Screen[Any]]] = {
            "help": lambda: HelpScreen(self.readonly),
            confirm.INSTALLED_AS: lambda: confirm.ConfirmScreen("", ""),
            "scale": lambda: ScaleScreen("", 0, "manual"),
            "nodes": partial(NodesScreen, self.backend),
        }
        if shown is not None:
            screens["describe"] = lambda: DescribeScreen(shown)
            screens["logs"] = partial(LogsScreen, self.backend, shown.name)
            screens["whatif"] = partial(WhatIfScreen, self.backend, shown.name, shown.policy, self.readonly)
        if warm(self, screens):
            self.set_timer(WARM_SCREEN_SECONDS, self._warm_screens)
        else:
            self.screens_warmed = True

    def _push_kept(self, screen: Screen[Any], fill: Callable[[], None] | None = None) -> None:
        """Push a kept screen, ``fill`` first giving it what it shows now; not when it is already on
        the stack (e.g. help chosen in the palette over help)."""
        if screen not in self.screen_stack:
            if fill is not None:
                fill()
            self.push_screen(screen)

    def action_snapshot(self) -> None:
        if not self.engine_ready.is_set():
            self.notify("the engine is still starting: no snapshot yet", severity="warning")
            return
        self._snapshot()

    @work(exclusive=True, group="snapshot")
    async def _snapshot(self) -> None:
        self.notify("writing a diagnostic snapshot…")
        try:
            data = await self.backend.diagnostic_snapshot()
            directory = self.backend.state_dir / "snapshots"
            path = directory / time.strftime("orchestry-snapshot-%Y%m%d-%H%M%S.tar.gz")
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(path.write_bytes, data)
        except (OrchestryError, OSError) as exc:
            self.notify(f"snapshot failed: {exc}", severity="error", timeout=10)
            return
        self.notify(f"snapshot written to {path}", title="diagnostic snapshot", timeout=15)
        self.last_snapshot = path

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in ACTIONS:
            if action.action in ("command_palette", "quit") or not self.check_action(action.action, ()):
                continue
            yield SystemCommand(
                f"{action.description} ({action.key_display})",
                action.help,
                partial(self.run_action, action.action),
            )

    # --- preferences and layout ---------------------------------------------------------------
    def _apply_preferences(self) -> None:
        prefs = self.preferences
        for problem in prefs.problems:
            self.notify(problem, title="config file", severity="warning", timeout=12)
        if prefs.keymap:
            self.set_keymap(prefs.keymap)
        if prefs.theme:
            if prefs.theme in self.available_themes:
                self.theme = prefs.theme
            else:
                known = ", ".join(sorted(self.available_themes))
                self.notify(
                    f"[console] theme {prefs.theme!r} is unknown: use one of {known}",
                    title="config file",
                    severity="warning",
                    timeout=12,
                )
        # Subscribed after the saved theme is applied: only the operator's later choices are saved.
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme: Any) -> None:
        if theme.name != self.preferences.theme:
            self.preferences.theme = theme.name
            self._save_preferences()

    def _save_preferences(self) -> None:
        try:
            save_preferences(self.preferences_path, self.preferences)
        except (OSError, ValueError) as exc:
            self.notify(
                f"preferences not saved to {self.preferences_path}: {exc}", severity="warning", timeout=8
            )

    def action_toggle_theme(self) -> None:
        self.theme = DARK_THEME if self.current_theme.name == LIGHT_THEME else LIGHT_THEME

    def _shows(self, pane: str) -> bool:
        """Whether ``pane`` is on screen now (its refresh work is done only then)."""
        return pane in self.layout_state.displayed(self.compact)

    def action_toggle_pane(self, pane: str) -> None:
        layout = self.layout_state
        if self.compact and pane != "apps":
            # On a small terminal a pane's key brings its tab forward (showing it again if hidden).
            layout.hidden.discard(pane)
            layout.tab = pane
        else:
            layout.toggle(pane)
        self._apply_layout()
        self._focus_pane(pane)
        self.preferences.layout = layout
        self._save_preferences()

    def action_next_charts(self) -> None:
        if not self._shows("charts"):
            self.notify("the charts pane is hidden: press 3 to show it", timeout=4)
        elif not self.query_one(AppCharts).next_page():
            self.notify("every chart is on screen: nothing to page through", timeout=4)

    def _focused_pane(self) -> str | None:
        node: Widget | None = self.focused
        ids = {widget_id: name for name, widget_id in PANE_IDS.items()}
        while node is not None:
            if node.id in ids:
                return ids[node.id]
            node = node.parent if isinstance(node.parent, Widget) else None
        return None

    def _focus_pane(self, pane: str) -> None:
        if not self._shows(pane):
            return
        widget = self.query_one(f"#{PANE_IDS[pane]}")
        focusable = [w for w in widget.query("*") if w.focusable]
        if focusable:
            focusable[0].focus()

    def action_resize(self, taller: int, wider: int) -> None:
        if self.compact:
            self.notify("the terminal is too small to resize panes: each pane has its own tab", timeout=4)
            return
        pane = self._focused_pane() or "apps"
        if taller:
            self.layout_state.grow(pane, taller)
        if wider:
            self.layout_state.widen(pane, wider)
        self._apply_layout()
        self._save_preferences()

    def on_resize(self, event: events.Resize) -> None:
        # This runs before Textual's own App handler takes the new size (``self.size`` is still the
        # old one here), so the layout is decided from the event and laid out once the size is taken.
        if is_compact(event.size.width, event.size.height) != self.compact:
            self.call_later(self._apply_layout)

    @on(Tabs.TabActivated, "#pane-tabs")
    def _tab_chosen(self, event: Tabs.TabActivated) -> None:
        pane = (event.tab.id or "").removeprefix("tab-")
        if pane in PANE_NAMES and pane != self.layout_state.tab:
            self.layout_state.tab = pane
            self._apply_layout()

    def _apply_layout(self) -> None:
        """Show, hide and size the panes as the layout says; in compact mode one tab under the apps."""
        layout = self.layout_state
        self.compact = compact = is_compact(self.size.width, self.size.height)
        on = layout.displayed(compact)
        rows, splits = layout.rows, layout.splits
        panes = {name: self.query_one(f"#{widget_id}") for name, widget_id in PANE_IDS.items()}
        for name, widget in panes.items():
            widget.display = name in on
        top, bottom, side = (self.query_one(f"#{i}") for i in ("row-top", "row-bottom", "side"))
        top.display = bool(on & {"apps", "cluster"})
        bottom.display = bool(on & {"charts", "events", "logs"})
        side.display = bool(on & {"events", "logs"})
        if compact:
            top.styles.layout = "vertical"
            apps_height = self._apps_rows = self._compact_apps_height()
            top.styles.height = "1fr" if "cluster" in on else apps_height
            panes["apps"].styles.height = apps_height
            for name in ("apps", "cluster", "charts", "events", "logs"):
                panes[name].styles.width = "1fr"
            for name in ("cluster", "replicas", "events", "logs"):
                panes[name].styles.height = "1fr"
            bottom.styles.height = side.styles.width = "1fr"
        else:
            top.styles.layout = "horizontal"
            top.styles.height = f"{rows['top']}fr"
            panes["apps"].styles.height = panes["cluster"].styles.height = "100%"
            panes["apps"].styles.width = f"{splits['top']}fr"
            panes["cluster"].styles.width = f"{100 - splits['top']}fr"
            panes["replicas"].styles.height = f"{rows['middle']}fr"
            bottom.styles.height = f"{rows['bottom']}fr"
            panes["charts"].styles.width = f"{splits['bottom']}fr"
            side.styles.width = f"{100 - splits['bottom']}fr"
            panes["events"].styles.height = f"{splits['side']}fr"
            panes["logs"].styles.height = f"{100 - splits['side']}fr"
        self._sync_tabs(compact)
        self.query_one(ClusterPane).set_active("cluster" in on)
        logs = self.query_one(LogPane)
        logs.follow(self.selected, logs.replica)
        logs.set_active("logs" in on)
        focused = self._focused_pane()
        if self.focused is None or (focused is not None and focused not in on):
            for name in ("apps", *PANE_NAMES):
                if name in on:
                    self._focus_pane(name)
                    break
        self.refresh_now()

    def _compact_apps_height(self) -> int:
        """On a small terminal the apps table keeps its rows (up to 40 % of the screen) above the tab."""
        rows = len(self._visible_apps(self.frame)) if self.frame is not None else 1
        return max(4, min(rows + 3, int(self.size.height * 0.4)))

    def _sync_tabs(self, compact: bool) -> None:
        tabs = self.query_one("#pane-tabs", Tabs)
        tabs.display = compact
        if not compact:
            return
        wanted = self.layout_state.tabs()
        present = [tab.id.removeprefix("tab-") for tab in tabs.query(Tab) if tab.id]
        if present != wanted:
            tabs.clear()
            for name in wanted:
                tabs.add_tab(Tab(TITLES[name], id=f"tab-{name}"))
        active = self.layout_state.active_tab()
        if active is not None and tabs.active != f"tab-{active}":
            tabs.active = f"tab-{active}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only hides every change of state from the footer, the palette and the keys at once; on
        a follower the app's write keys show dimmed (they work on the leader), and say why when pressed."""
        spec = BY_ACTION.get(action)
        if spec is None or not spec.mutating:
            return True
        if self.readonly:
            return False
        return None if action in FOLLOWER_REFUSES and self._follows() else True

    def _follows(self) -> bool:
        leadership = self.frame.leadership if self.frame is not None else None
        return leadership is not None and not leadership.is_leader

    # --- quitting -----------------------------------------------------------------------------
    async def action_quit(self) -> None:
        self.query_one(StatusBar).show_starting("stopping the engine: apps keep running…")
        await self._stop_backend()
        self.exit(0, message=getattr(self.backend, "quit_note", QUIT_NOTE))

    def action_quit_and_stop(self) -> None:
        spec = BY_ACTION["quit_and_stop"]
        if self.readonly:
            self.notify(f"read-only: {spec.description.lower()} is disabled", severity="warning")
            return
        attached = getattr(self.backend, "url", "")
        leadership = self.frame.leadership if self.frame is not None else None
        if not attached and leadership is not None and not leadership.is_leader:
            leader = leadership.leader_id
            if leader is not None and leader != leadership.node_id:
                # The engine's stop leaves the apps to the node that leads (it would start them again):
                # asking "stop all?" and then stopping nothing promised what cannot be done here.
                self.notify(
                    f"this console follows {leader}, which runs the apps: stop them with `orchestry down "
                    "NAME` (or Q in the leader's own console); q quits this console and leaves them running",
                    severity="warning",
                    timeout=10,
                )
                return
        apps = len(self.frame.apps) if self.frame is not None else 0
        self.push_screen(
            QuitAndStopScreen(apps, self.backend.lb_address, attached),
            lambda yes: self.run_worker(self._quit_and_stop(), group="quit") if yes else None,
        )

    async def _quit_and_stop(self) -> None:
        self.query_one(StatusBar).show_starting("stopping every app and nginx…")
        refused = await self._stop_backend(stop_apps=True)
        # A peer that leads keeps running the apps, and a refused stop stopped nothing: quitting must not
        # claim they stopped (the notice of the refusal goes with the screen).
        left = f"the apps were not stopped: {refused}" if refused else getattr(self.backend, "stop_note", "")
        self.exit(0, message=f"console closed: {left}" if left else QUIT_AND_STOP_NOTE)

    async def _stop_backend(self, stop_apps: bool = False) -> str:
        """Why the backend's stop failed, or ""."""
        if self._stopped:
            return ""
        self._stopped = True
        self.workers.cancel_group(self, "poll")
        self.workers.cancel_group(self, "events")
        if self._starting:
            # The console's exit cancels its workers: a start cancelled midway left an engine holding
            # the leader lease that nothing stopped, and the next console or `orchestry stop` on the
            # state dir waited out the lease. So the start ends first, and is stopped below.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(QUIT_WAITS_FOR_START_SECONDS):
                    await self._start_over.wait()
        if self.engine_ready.is_set():
            try:
                await self.backend.stop(stop_apps=stop_apps)
            except OrchestryError as exc:
                self.notify(f"engine stop: {exc}", severity="error")
                return str(exc)
        return ""

    async def _shutdown(self) -> None:
        # A screen built ahead still mounting is let finish first: closed halfway, its widgets' on_mount
        # failed (kept.built). Textual is pinned (pyproject): this is where every exit path closes.
        self._shutting_down = True
        await built(self, CLOSE_WAITS_FOR_BUILD_SECONDS)
        await super()._shutdown()

    async def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            loop.remove_signal_handler(sig)
        await self._stop_backend()
        self.console_log.detach()
        self._collections.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):  # a person is at the keys: no collection for a while
            self._collections.input_seen()
            self._input_unanswered = True
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        """Each painted screen: what input came before it is answered, and a collection the clock held
        back for it runs now, once the loop is free (after this paint is out)."""
        super()._display(screen, renderable)
        if renderable is None:
            return
        self._input_unanswered = False
        if self._collect_after_paint:
            self._collect_after_paint = False
            asyncio.get_running_loop().call_soon(self._collections.tick)

    def _log_record_arrived(self, record: logging.LogRecord) -> None:
        """A warning logged in this process (the embedded engine's, mostly), already redacted: shown in
        the events pane, beside what the engine recorded as events."""
        event = Event(
            id=next(self._log_event_ids),
            app=None,
            category="error",
            kind="log_warning",
            message=f"{record.levelname.lower()} ({record.name}): {record.getMessage()}",
            details={},
            timestamp=record.created,
        )
        with contextlib.suppress(NoMatches):  # closing, or not composed yet
            self.screen_stack[0].query_one("#events", EventsPane).add([event])

    def _quit_on_signals(self) -> None:
        """A closed terminal (SIGHUP) or a `kill` (SIGTERM) quits as `q` does.

        Dying on the signal's default action left the lease held until it expired, so the next console
        on the same state dir had to follow a dead leader for up to the lease TTL.
        """
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, partial(self._quit_on_signal, sig))

    def _quit_on_signal(self, sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            self.run_worker(self._hang_up(), group="quit")
        else:
            self.run_worker(self.action_quit(), group="quit")

    async def _hang_up(self) -> None:
        """The terminal is gone: stop the engine (releasing the lease), then leave without restoring it.

        Textual's own shutdown writes escape codes to the vanished terminal and blocks forever.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_backend(), HANG_UP_STOP_SECONDS)
        os._exit(128 + signal.SIGHUP)
