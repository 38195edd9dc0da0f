"""The live logs pane on the main screen: the selected app's replicas merged, or one replica.

Lines stream only while the pane is shown; they are written in batches on the console's one-second
clock (the app calls ``flush`` with the other panes' periodic work, so one compositor pass a second
carries the new lines, the lease countdown and the refresh) and the last ``KEPT_LINES`` are kept raw,
so switching between the app and one of its replicas, or changing the filter, redraws at once without
asking the engine again.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import Static

from core.errors import OrchestryError
from core.runtime.base import LogLine
from orchestry_tui.console.backend import ConsoleBackend
from orchestry_tui.console.widgets.log_view import LogView

# Lines are written in batches: one repaint per batch however fast they come.  Each repaint costs a
# compositor pass (~5 ms at 200×50); the batch is written on the app's clock tick, the pass that also
# moves the lease countdown and shows the refresh, so a busy app's 10 lines a second cost no pass of
# their own, and a line still shows within a second.
KEPT_LINES = 5000
VIEW_LINES = 2000
# Another app's lines are followed once the cursor has rested this long, as its charts are: a follow
# started for each app the cursor passes cost each key a worker, a subscription, a store read and a task
# per replica, and each one cancelled left ~560 objects in reference cycles for the garbage collector.
FOLLOW_SETTLE_SECONDS = 0.15


class LogPane(Vertical):
    def __init__(self, backend: ConsoleBackend, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.backend = backend
        self.app_name: str | None = None
        self.replica: str | None = None
        self.filter_text = ""
        self.active = False
        self.kept: deque[LogLine] = deque(maxlen=KEPT_LINES)
        self._pending: list[LogLine] = []
        self._ended = ""
        self._restart_at: float | None = None  # monotonic time the follow of a new app starts
        self._idle: tuple[str, str] | None = None  # (app, why it has no replica to log), from the app
        self._settle_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield LogView(max_lines=VIEW_LINES, id="pane-log")
        yield Static("select an app to follow its logs", id="pane-log-status")

    @property
    def view(self) -> LogView:
        return self.query_one("#pane-log", LogView)

    # --- what to follow -----------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        """A hidden pane streams nothing: its worker stops, and starts again (with the tail) when shown."""
        if active == self.active:
            return
        self.active = active
        if active:
            self._restart()
        else:
            self._restart_at = None
            self.workers.cancel_group(self, "pane-logs")

    def follow(self, app: str | None, replica: str | None = None) -> None:
        if app != self.app_name:
            first = self.app_name is None  # the console's first selection: nothing to pass over
            self.app_name, self.replica = app, replica
            if self.active and first:
                self._restart()
            elif self.active:
                self._restart_when_settled()
            return
        if replica != self.replica:
            self.replica = replica
            self._redraw()

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self._redraw()

    def _restart_when_settled(self) -> None:
        """One timer however many keys move the cursor meanwhile: each key only moves the deadline."""
        self._restart_at = time.monotonic() + FOLLOW_SETTLE_SECONDS
        if self._settle_timer is None:
            self._settle_timer = self.set_timer(FOLLOW_SETTLE_SECONDS, self._settled)

    def _settled(self) -> None:
        self._settle_timer = None
        if self._restart_at is None or not self.active:
            return
        wait = self._restart_at - time.monotonic()
        if wait > 0.01:  # the cursor moved again meanwhile
            self._settle_timer = self.set_timer(wait, self._settled)
            return
        with contextlib.suppress(NoMatches):  # the console closes: the pane's widgets are gone already
            self._restart()

    def _restart(self) -> None:
        self._restart_at = None
        self.workers.cancel_group(self, "pane-logs")
        self.kept.clear()
        self._pending = []
        self._ended = ""
        self.view.clear()
        self._title()
        if self.app_name is None:
            self._status_text("select an app to follow its logs")
            return
        self._status_text(self._waiting())
        self._stream(self.app_name)

    def idle(self, app: str, why: str) -> None:
        """Why ``app`` has no replica writing logs ("" once it has): said while no line has come,
        instead of waiting for lines that cannot come.  Called on every refresh: a change only."""
        idle = (app, why) if why else None
        if idle == self._idle:
            return
        self._idle = idle
        if app == self.app_name and not self.kept and not self._pending:
            self._status_text(self._waiting())

    def _waiting(self) -> str:
        if self._idle is not None and self._idle[0] == self.app_name:
            return self._idle[1]
        return f"waiting for log lines from {self.app_name}…"

    @work(exclusive=True, group="pane-logs")
    async def _stream(self, app: str) -> None:
        try:
            async for line in self.backend.follow_logs(app):
                self._pending.append(line)
        except OrchestryError as exc:
            self._ended = f"log stream ended: {exc}"

    @property
    def settled(self) -> bool:
        """Every line received so far is on screen: no batch waits to be written, no follow to start."""
        return not self._pending and not self._ended and self._restart_at is None

    # --- drawing ------------------------------------------------------------------------------
    def _shows(self, line: LogLine) -> bool:
        if self.replica is not None and line.replica != self.replica:
            return False
        return not self.filter_text or self.filter_text.lower() in line.message.lower()

    def flush(self) -> None:
        """Write the lines received since the last call (the app's clock calls it once a second)."""
        if self._ended:
            self._status_text(self._ended)
            self._ended = ""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self.kept.extend(batch)
        shown = [line for line in batch if self._shows(line)]
        if shown:
            self.view.add_lines(shown)
        self._status()

    def _redraw(self) -> None:
        view = self.view
        view.clear()
        view.add_lines([line for line in self.kept if self._shows(line)][-VIEW_LINES:])
        self._title()
        self._status()

    def _title(self) -> None:
        if self.app_name is None:
            self.border_title = "logs"
        else:
            scope = self.replica or f"{self.app_name} (all replicas)"
            shown = f" · filter '{self.filter_text}'" if self.filter_text else ""
            self.border_title = f"logs {scope}{shown}"

    def _status(self) -> None:
        view = self.view
        if view.following:
            self._status_text(f"following · {len(view.lines)} lines · scroll up to pause")
        else:
            self._status_text(f"paused · {view.unseen} new lines · End or G resumes")

    def _status_text(self, text: str) -> None:
        self.query_one("#pane-log-status", Static).update(text, layout=False)  # one fixed line

    def on_log_view_follow_changed(self, event: LogView.FollowChanged) -> None:
        event.stop()
        self._status()
