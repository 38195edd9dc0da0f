"""A log pane that renders only the visible lines and follows the tail unless the reader scrolls up.

Lines live in a bounded deque; ``render_line`` draws the rows on screen only, so a 10 000-line
buffer costs the same per frame as a 20-line one, and each line is rendered to segments once (a new
line scrolls every row on screen; re-rendering them all was most of a redraw).  New lines repaint
this widget alone: the virtual size changes without a layout pass, which in Textual reflows the whole
screen (tables, charts) and was most of an idle console's cost while a pane followed a log.  Scrolling
up pauses follow and counts the lines that arrived since; End or G resumes.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.runtime.base import LogLine
from orchestry_tui.console.formatting import clock

MAX_LINES = 10_000


REPLICA_COLOURS = (
    "cyan",
    "green",
    "magenta",
    "yellow",
    "blue",
    "bright_cyan",
    "bright_green",
    "bright_magenta",
)


def replica_colour(replica: str) -> str:
    """A stable colour per replica name: the slot number picks it, so web-1 is always the same."""
    slot = replica.rsplit("-", 1)[-1]
    index = int(slot) if slot.isdigit() else sum(map(ord, replica))
    return REPLICA_COLOURS[index % len(REPLICA_COLOURS)]


class LogView(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end,G", "resume_follow", "Follow", id="orchestry.logs.follow"),
        Binding("home,g", "scroll_top", "Top", show=False, id="orchestry.logs.top"),
        Binding("up,k", "scroll_up", "Up", show=False, id="orchestry.logs.up"),
        Binding("down,j", "scroll_down", "Down", show=False, id="orchestry.logs.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="orchestry.logs.pageup"),
        Binding("pagedown", "page_down", "Page down", show=False, id="orchestry.logs.pagedown"),
    ]

    class FollowChanged(Message):
        def __init__(self, following: bool, unseen: int) -> None:
            super().__init__()
            self.following = following
            self.unseen = unseen

    def __init__(self, max_lines: int = MAX_LINES, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: deque[Text] = deque(maxlen=max_lines)
        # Each line's segments, rendered on first draw; kept in step with ``lines`` (same maxlen).
        self._segments: deque[list[Segment] | None] = deque(maxlen=max_lines)
        self.following = True
        self.unseen = 0
        self._width = 0
        self._base = Style()

    def add_lines(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        dropped = max(0, len(self.lines) + len(lines) - (self.lines.maxlen or 0))
        for line in lines:
            text = Text(clock(line.timestamp) + " ", style="dim")
            # One colour per replica, as `docker compose logs` does; stderr is marked, not alarming (many
            # servers, the demo's httpd included, log every request there).
            text.append(f"{line.replica:<14} ", style=f"bold {replica_colour(line.replica)}")
            if line.stream == "stderr":
                text.append("│ ", style="dim")
            else:
                text.append("  ")
            text.append(line.message.rstrip("\n"))
            self.lines.append(text)
            self._segments.append(None)
            self._width = max(self._width, text.cell_len)
        relaid = self._set_virtual_size(Size(self._width, len(self.lines)))
        if self.following:
            if relaid or not self.size:
                # After the layout: a scrollbar that just appeared changes the height it leaves.
                self.call_after_refresh(self.scroll_end, animate=False, immediate=True)
            else:
                self.scroll_end(animate=False, immediate=True)  # the one refresh below draws the tail
        else:
            self.unseen += len(lines)
            if dropped:
                # Keep the lines the reader is looking at in place while old ones fall off the top.
                self.scroll_to(y=max(0, self.scroll_offset.y - dropped), animate=False, immediate=True)
            self.post_message(self.FollowChanged(False, self.unseen))
        self.refresh()

    def _set_virtual_size(self, size: Size) -> bool:
        """What ``self.virtual_size = size`` does minus the layout pass of the whole screen: only the
        scrollbars depend on it.  True when a scrollbar came or went: that still lays out (its reactive
        asks), and the height left for lines is known only afterwards."""
        if size == self.virtual_size:
            return False
        bars = (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        self.set_reactive(LogView.virtual_size, size)
        self._scroll_update(size)  # textual is pinned (pyproject): the hook its own resize path calls
        return bars != (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)

    def clear(self) -> None:
        """Forget every line and follow the tail again (the pane switched to another app or replica)."""
        self.lines.clear()
        self._segments.clear()
        self._width = 0
        self.unseen = 0
        self.following = True
        self._set_virtual_size(Size(0, 0))
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's own style under every line (the theme's background, light or dark), looked up
        # once per repaint: it walks every ancestor's background, which cost more than the line itself.
        self._base = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        base = self._base
        if index >= len(self.lines):
            return Strip.blank(self.size.width, base)
        rendered = self._segments[index]
        if rendered is None:
            rendered = [s for s in self.lines[index].render(self.app.console) if s.text != "\n"]
            self._segments[index] = rendered
        strip = Strip([Segment(s.text, base + (s.style or Style())) for s in rendered])
        return strip.crop_extend(self.scroll_offset.x, self.scroll_offset.x + self.size.width, base)

    def _at_bottom(self) -> bool:
        return self.scroll_offset.y >= self.max_scroll_y

    def _pause(self) -> None:
        if self.following:
            self.following = False
            self.unseen = 0
            self.post_message(self.FollowChanged(False, 0))

    def action_scroll_up(self) -> None:
        self._pause()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._pause()
        super().action_page_up()

    def action_scroll_top(self) -> None:
        self._pause()
        self.scroll_home(animate=False)

    def on_mouse_scroll_up(self, event: object) -> None:
        self._pause()

    def action_resume_follow(self) -> None:
        self.following = True
        self.unseen = 0
        self.scroll_end(animate=False, immediate=True)
        self.post_message(self.FollowChanged(True, 0))
