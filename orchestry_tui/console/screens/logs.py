"""The logs screen: every replica of one app merged, following the tail."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from core.errors import OrchestryError
from core.runtime.base import LogLine
from orchestry_tui.console.backend import ConsoleBackend
from orchestry_tui.console.widgets.footer import SteadyFooter
from orchestry_tui.console.widgets.log_view import LogView

BATCH_SECONDS = 0.1


class LogsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,l", "app.pop_screen", "Back", id="orchestry.logs.back")
    ]

    def __init__(self, backend: ConsoleBackend, app_name: str) -> None:
        super().__init__()
        self.backend = backend
        self.app_name = app_name
        self._pending: list[LogLine] = []

    def compose(self) -> ComposeResult:
        yield Static(
            f"logs {self.app_name}  (all replicas, following)", id="logs-title", classes="screen-title"
        )
        yield LogView(id="log-view")
        yield Static(f"waiting for log lines from {self.app_name}'s replicas…", id="logs-status")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.query_one(LogView).focus()
        # Lines are written in batches: one refresh per tenth of a second, however fast they come.
        self.set_interval(BATCH_SECONDS, self._flush)
        self._follow()

    @work(exclusive=True, group="logs")
    async def _follow(self) -> None:
        try:
            async for line in self.backend.follow_logs(self.app_name):
                self._pending.append(line)
        except OrchestryError as exc:
            self.query_one("#logs-status", Static).update(f"log stream ended: {exc}")

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        view = self.query_one(LogView)
        view.add_lines(batch)
        if view.following:
            self._status(True, 0)

    def on_log_view_follow_changed(self, event: LogView.FollowChanged) -> None:
        self._status(event.following, event.unseen)

    def _status(self, following: bool, unseen: int) -> None:
        view = self.query_one(LogView)
        if following:
            text = f"following · {len(view.lines)} lines · scroll up to pause"
        else:
            text = f"paused · {unseen} new lines · End or G resumes"
        self.query_one("#logs-status", Static).update(text)
