"""The logs screen: every replica of one app merged, following the tail.

One screen for every app, built on first use (or ahead, while idle) and shown again (see kept.py):
``show`` points it at an app before each push; it follows that app's logs from their tail while it is
on the stack, and stops and forgets them once it is closed.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker

from core.errors import OrchestryError
from core.runtime.base import LogLine
from orchestry_tui.console.backend import ConsoleBackend
from orchestry_tui.console.screens.kept import KeptScreen
from orchestry_tui.console.widgets.footer import SteadyFooter
from orchestry_tui.console.widgets.log_view import LogView

BATCH_SECONDS = 0.1


def logs_title(app_name: str) -> str:
    return f"logs {app_name}  (all replicas, following)"


def waiting(app_name: str) -> str:
    return f"waiting for log lines from {app_name}'s replicas…"


class LogsScreen(KeptScreen, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,l", "app.pop_screen", "Back", id="orchestry.logs.back")
    ]

    def __init__(self, backend: ConsoleBackend, app_name: str) -> None:
        super().__init__()
        self.backend = backend
        self.app_name = app_name
        self._pending: list[LogLine] = []
        self._following: Worker[None] | None = None
        self._flusher: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(logs_title(self.app_name), id="logs-title", classes="screen-title")
        yield LogView(id="log-view")
        yield Static(waiting(self.app_name), id="logs-status")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.query_one(LogView).focus()
        # Lines are written in batches: one refresh per tenth of a second, however fast they come (and
        # none while the screen is closed).
        self._flusher = self.set_interval(BATCH_SECONDS, self._flush, pause=True)

    def show(self, app_name: str) -> None:
        """Follow ``app_name``'s logs from their tail, as a new screen would (before it is pushed)."""
        self._stop()
        if self.is_mounted:
            if app_name != self.app_name:
                self.query_one("#logs-title", Static).update(logs_title(app_name))
            self.query_one("#logs-status", Static).update(waiting(app_name))
            view = self.query_one(LogView)
            view.clear()
            view.focus()
        self.app_name = app_name

    def on_screen_resume(self) -> None:
        # Also when a screen pushed over it (help) closes: its stream then still runs.
        if self._following is None:
            self._following = self._follow()
            if self._flusher is not None:
                self._flusher.resume()

    def on_screen_suspend(self) -> None:
        if self not in self.app.screen_stack:  # closed, not merely covered: the stream and lines go
            self._stop()
            self.query_one(LogView).clear()

    def _stop(self) -> None:
        if self._following is not None:
            self._following.cancel()
            self._following = None
        if self._flusher is not None:
            self._flusher.pause()
        self._pending = []

    @work(exclusive=True, group="logs")
    async def _follow(self) -> None:
        try:
            async for line in self.backend.follow_logs(self.app_name):
                self._pending.append(line)
        except OrchestryError as exc:
            # The stream may end because the console closes: its widgets are then gone already.
            with contextlib.suppress(NoMatches):
                self.query_one("#logs-status", Static).update(f"log stream ended: {exc}")

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            view = self.query_one(LogView)
            view.add_lines(batch)
            if view.following:
                self._status(True, 0)
        except NoMatches:
            # The timer fired while the console closed, after the screen's widgets were removed: an
            # error here would end the console with a traceback instead of quitting.
            return

    def on_log_view_follow_changed(self, event: LogView.FollowChanged) -> None:
        self._status(event.following, event.unseen)

    def _status(self, following: bool, unseen: int) -> None:
        view = self.query_one(LogView)
        if following:
            text = f"following · {len(view.lines)} lines · scroll up to pause"
        else:
            text = f"paused · {unseen} new lines · End or G resumes"
        self.query_one("#logs-status", Static).update(text)
