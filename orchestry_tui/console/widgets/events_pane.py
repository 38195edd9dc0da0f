"""The events pane: a bounded log of what the engine did and decided, newest at the bottom."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from core.models import Event
from orchestry_tui.console.formatting import event_text

MAX_EVENTS = 500
EMPTY = "no events yet: actions, scaling decisions and health changes appear here as they happen"


class EventsPane(RichLog):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_EVENTS, wrap=True, min_width=20, markup=False, **kwargs)  # type: ignore[arg-type]
        self._empty = True
        self._seen: set[int] = set()

    def on_mount(self) -> None:
        self.write(Text(EMPTY, style="dim italic"))

    def add(self, events: list[Event]) -> None:
        """Append events oldest first; an id already shown is skipped (history and live overlap)."""
        fresh = [e for e in events if e.id not in self._seen]
        if not fresh:
            return
        if self._empty:
            self.clear()
            self._empty = False
        for event in fresh:
            self._seen.add(event.id)
            self.write(event_text(event))
        if len(self._seen) > MAX_EVENTS * 4:
            self._seen = set(sorted(self._seen)[-MAX_EVENTS:])
