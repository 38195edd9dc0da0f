"""The events pane: a bounded log of what the engine did and decided, newest at the bottom.

New events repaint this pane alone.  ``RichLog.write`` sets its virtual size, whose reactive asks for
a layout pass, and a layout pass in Textual reflows the whole screen (tables, charts): at 1,000
replicas the engine records an event every half second or so while idle, and those passes were about
a third of the idle console's own CPU.  Only the scrollbars depend on the virtual size here (the
pane's size comes from the layout's fractions, not from its lines), so they are updated directly, as
the logs view does (widgets/log_view.py); a scrollbar that comes or goes still lays out.
"""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Region
from textual.widgets import RichLog

from core.models import Event
from orchestry_tui.console.formatting import event_text

MAX_EVENTS = 500
EMPTY = "no events yet: actions, scaling decisions and health changes appear here as they happen"


class EventsPane(RichLog):
    _writing = False  # within add: the lines' virtual size asks for no layout pass

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
        sized_by_lines = self.styles.height is not None and self.styles.height.is_auto
        # Laid out already and sized by the layout alone: the tail is scrolled to at once, in the one
        # repaint of the new lines (write's own scroll waits for a repaint and then asks another).
        at_once = not sized_by_lines and self._size_known and self.auto_scroll
        self._writing = not sized_by_lines
        try:
            if self._empty:
                self.clear()
                self._empty = False
            for event in fresh:
                self._seen.add(event.id)
                self.write(event_text(event), scroll_end=False if at_once else None)
        finally:
            self._writing = False
        if not sized_by_lines:
            # What the skipped layout pass would have done for this pane (Textual is pinned in
            # pyproject: the hook its own resize path calls); a scrollbar that comes or goes lays out
            # through its own reactive.
            bars = (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
            self._scroll_update(self.virtual_size)
            if at_once:
                if bars == (self.show_vertical_scrollbar, self.show_horizontal_scrollbar):
                    self.scroll_end(animate=False, immediate=True, x_axis=False)
                else:  # after that layout: the scrollbar changes the height left for lines
                    self.scroll_end(animate=False, immediate=False, x_axis=False)
        if len(self._seen) > MAX_EVENTS * 4:
            self._seen = set(sorted(self._seen)[-MAX_EVENTS:])

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> EventsPane:
        if self._writing:
            layout = False  # see the module's docstring
        super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        return self
