"""The Orchestry console: apps, replicas, charts and events of an embedded engine, steered by keys.

All I/O runs in workers; the App owns every state change.  The refresh loop schedules its next run
only when the last one finished (no pile-up when the engine is slow) and skips while a dialog is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from core.errors import NotLeader, OrchestryError
from core.models import AppView
from orchestry_tui.console.actions import ACTIONS, BY_ACTION, bindings
from orchestry_tui.console.backend import BackendUnreachable, ConsoleBackend
from orchestry_tui.console.formatting import APP_COLUMNS, REPLICA_COLUMNS, app_row, replica_row
from orchestry_tui.console.frame import Frame
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.screens.describe import DescribeScreen
from orchestry_tui.console.screens.help import HelpScreen
from orchestry_tui.console.screens.logs import LogsScreen
from orchestry_tui.console.screens.nodes import NodesScreen
from orchestry_tui.console.screens.quit_stop import QuitAndStopScreen
from orchestry_tui.console.screens.scale import ScaleScreen
from orchestry_tui.console.screens.whatif import WhatIfScreen
from orchestry_tui.console.widgets.charts import AppCharts
from orchestry_tui.console.widgets.events_pane import EventsPane
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from orchestry_tui.console.widgets.status_bar import StatusBar

# Like k9s' default refresh rate. Replicas are sampled every 2 s, so a faster refresh redrew the charts
# with no new data, and plotting was most of the console's idle CPU. Every action refreshes at once.
POLL_SECONDS = 2.0
QUIT_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
HANG_UP_STOP_SECONDS = 30.0
HISTORY_EVENTS = 50
NO_APPS = (
    "no apps registered: run `orchestry apply FILE` in another terminal, "
    "or start the console with --apply FILE"
)
QUIT_NOTE = "console closed: apps keep running and nginx keeps serving; `orchestry` again adopts them"
QUIT_AND_STOP_NOTE = "console closed: every app was stopped (`orchestry up NAME` starts one again)"


class OrchestryConsole(App[int]):
    CSS_PATH = "styles.tcss"
    AUTO_FOCUS = "#apps"
    TITLE = "orchestry"
    BINDINGS = bindings()

    def __init__(
        self, backend: ConsoleBackend, readonly: bool = False, poll_seconds: float = POLL_SECONDS
    ) -> None:
        super().__init__()
        self.backend = backend
        self.readonly = readonly
        self.poll_seconds = poll_seconds
        self.frame: Frame | None = None
        self.frames_applied = 0
        self.selected: str | None = None
        self.filter_text = ""
        self.engine_ready = asyncio.Event()
        self.start_error = ""
        self._stopped = False
        self._wake = asyncio.Event()
        self.last_snapshot: Path | None = None
        self.disconnected: BackendUnreachable | None = None

    # --- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Input(placeholder="filter apps by name · Enter keeps · Esc clears", id="filter")
        with Vertical(id="apps-pane", classes="pane"):
            yield KeyedTable(APP_COLUMNS, id="apps")
            yield Static("starting engine…", id="apps-empty", classes="empty")
        with Vertical(id="replicas-pane", classes="pane"):
            yield KeyedTable(REPLICA_COLUMNS, id="replicas")
            yield Static("select an app above to see its replicas", id="replicas-empty", classes="empty")
        with Horizontal(id="bottom"):
            yield AppCharts(id="charts", classes="pane")
            yield EventsPane(id="events", classes="pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#apps-pane").border_title = "apps"
        self.query_one("#replicas-pane").border_title = "replicas"
        self.query_one("#charts").border_title = "charts"
        self.query_one("#events").border_title = "events"
        self.query_one(StatusBar).show_starting("starting engine…")
        self._quit_on_signals()
        # After the first frame: the screen is up before Docker, nginx and the store are touched.
        self.call_after_refresh(self._start_backend)

    # --- start, refresh, events -----------------------------------------------------------------
    @work(exclusive=True, group="start")
    async def _start_backend(self) -> None:
        try:
            notices = await self.backend.start()
        except OrchestryError as exc:
            self._show_start_failure(str(exc))
            return
        except Exception as exc:  # an unexpected failure is still shown, never a traceback
            self._show_start_failure(f"{type(exc).__name__}: {exc}")
            return
        for notice in notices:
            self.notify(notice, severity="warning" if "not" in notice else "information", timeout=8)
        self.engine_ready.set()
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
        """One refresh at a time: the next starts a tick after the last finished, or when woken."""
        while not self._stopped:
            self._wake.clear()
            if not self._dialog_open():  # Dolphie's habit: no redraw behind a dialog
                try:
                    frame = await self.backend.frame(self.selected)
                except BackendUnreachable as exc:
                    self._show_disconnected(exc)
                except OrchestryError as exc:
                    self.notify(f"refresh failed: {exc}", severity="error", timeout=5)
                else:
                    if self.disconnected is not None:
                        self.notify(f"reconnected to {self.disconnected.url}")
                        self.disconnected = None
                    # A dialog or the logs screen may have opened while the frame was built: the main
                    # view's widgets are then not on the active screen, so this frame is dropped.
                    if not self._dialog_open():
                        try:
                            self._apply(frame)
                        except NoMatches:
                            return  # the console is closing: its widgets are already gone
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def _show_disconnected(self, exc: BackendUnreachable) -> None:
        """A state, not an error: shown in the header until a refresh succeeds again."""
        if self.disconnected is None:
            self.notify(f"{exc}, retrying", severity="warning", timeout=8)
        self.disconnected = exc
        if not self._dialog_open():
            self.query_one(StatusBar).show_disconnected(f"{exc}, retrying")

    def refresh_now(self) -> None:
        """Refresh soon after a change or a new selection instead of waiting for the next tick."""
        self._wake.set()

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
        self.frame = frame
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
            charts = frame.charts if frame.charts and frame.charts.app == self.selected else None
            self.query_one(AppCharts).show(charts, frame.now, self.selected)
        self.frames_applied += 1

    def _draw_apps(self, frame: Frame) -> None:
        table = self.query_one("#apps", KeyedTable)
        empty = self.query_one("#apps-empty", Static)
        apps = self._visible_apps(frame)
        table.sync({a.name: app_row(a, frame.figures.get(a.name)) for a in apps})
        empty.display = not apps
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
        rows = {r.name: replica_row(r) for r in sorted(app.replicas, key=lambda r: r.slot)} if app else {}
        table.sync(rows)
        empty.display = not rows
        if app is None:
            empty.update("select an app above to see its replicas")
        elif app.status == "stopped":
            empty.update(f"{app.name} is stopped: press u to start it")
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
            self.refresh_now()

    # --- filter -------------------------------------------------------------------------------
    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("shown")
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        if self.frame is not None:
            self._apply(self.frame)

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        field = self.query_one("#filter", Input)
        if not field.value:
            field.remove_class("shown")
        self.query_one("#apps", KeyedTable).focus()

    def on_key(self, event: Any) -> None:
        field = self.query_one("#filter", Input)
        if event.key == "escape" and field.has_focus:
            field.value = ""
            field.remove_class("shown")
            self.query_one("#apps", KeyedTable).focus()
            event.stop()

    # --- guarded changes ----------------------------------------------------------------------
    def _target(self, action: str) -> AppView | None:
        """The selected app if the action may run now; otherwise say why not and return None."""
        spec = BY_ACTION[action]
        if spec.mutating and self.readonly:
            self.notify(
                f"read-only: {spec.description.lower()} is disabled (console started with --readonly)",
                severity="warning",
            )
            return None
        if not self.engine_ready.is_set():
            self.notify(
                self.start_error or "the engine is still starting: try again in a moment", severity="warning"
            )
            return None
        app = self.selected_app()
        if app is None:
            self.notify("no app selected: add one with `orchestry apply FILE`", severity="warning")
        return app

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
            self._change(partial(self.backend.scale, app.name, replicas), self._scaled)

        self.push_screen(ScaleScreen(app.name, app.desired_replicas, app.mode), chosen)

    def _scaled(self, result: Any) -> str | None:
        if result.clamped:
            self.notify(
                result.message, title="clamped by the auto-scaling policy", severity="warning", timeout=10
            )
            return None
        if result.status == "no_change":
            return result.message
        return f"{result.app}: scaling to {result.replicas} replica(s)"

    def _confirm(self, question: str, label: str, then: Callable[[], None]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.push_screen(ConfirmScreen(question, label), answered)

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
        mode = "manual" if app.mode == "auto" else "auto"
        self._change(partial(self.backend.set_mode, app.name, mode), lambda _: f"{app.name}: {mode} scaling")

    def action_up(self) -> None:
        app = self._target("up")
        if app is None:
            return
        self.notify(f"{app.name}: starting…")
        self._change(partial(self.backend.up, app.name), lambda _: f"{app.name} is up")

    def action_down(self) -> None:
        app = self._target("down")
        if app is None:
            return
        self._confirm(
            f"Stop all {len(app.replicas)} replica(s) of {app.name}? Its traffic gets no answer until `up`.",
            f"Stop {app.name}",
            lambda: self._change(partial(self.backend.down, app.name), lambda _: f"{app.name} is stopped"),
        )

    # --- views --------------------------------------------------------------------------------
    def action_logs(self) -> None:
        app = self._target("logs")
        if app is not None:
            self.push_screen(LogsScreen(self.backend, app.name))

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
        self.push_screen(DescribeScreen(view))

    def action_whatif(self) -> None:
        app = self._target("whatif")
        if app is not None:
            self.push_screen(WhatIfScreen(self.backend, app.name, app.policy, self.readonly))

    def action_nodes(self) -> None:
        self.push_screen(NodesScreen(self.backend))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.readonly))

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
            if action.action in ("command_palette", "quit"):
                continue
            yield SystemCommand(
                f"{action.description} ({action.key_display})",
                action.help + (" [read-only]" if action.mutating and self.readonly else ""),
                partial(self.run_action, action.action),
            )

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
        apps = len(self.frame.apps) if self.frame is not None else 0
        attached = getattr(self.backend, "url", "")
        self.push_screen(
            QuitAndStopScreen(apps, self.backend.lb_address, attached),
            lambda yes: self.run_worker(self._quit_and_stop(), group="quit") if yes else None,
        )

    async def _quit_and_stop(self) -> None:
        self.query_one(StatusBar).show_starting("stopping every app and nginx…")
        await self._stop_backend(stop_apps=True)
        self.exit(0, message=QUIT_AND_STOP_NOTE)

    async def _stop_backend(self, stop_apps: bool = False) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.workers.cancel_group(self, "poll")
        self.workers.cancel_group(self, "events")
        if self.engine_ready.is_set():
            try:
                await self.backend.stop(stop_apps=stop_apps)
            except OrchestryError as exc:
                self.notify(f"engine stop: {exc}", severity="error")

    async def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            loop.remove_signal_handler(sig)
        await self._stop_backend()

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
