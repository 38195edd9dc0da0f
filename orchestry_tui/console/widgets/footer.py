"""Textual's footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes (removes and mounts a widget per key, then lays the whole screen out again)
every time its screen's bindings signal fires: on every return to a screen and every focus move, though
the keys it shows are nearly always the same.  On the main screen that was about half of what closing
help or describe cost (15-20 ms of CPU a press), work the operator never sees the result of.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer


class SteadyFooter(Footer):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._composed_keys: Hashable = None  # what the last compose showed (None: nothing yet)

    def _shown_keys(self) -> Hashable:
        """Everything compose draws from: each shown binding (key, action, description, group) with
        whether it is enabled and its tooltip, in order, and the command palette's key."""
        if not self._bindings_ready:
            return None
        return (
            tuple(
                (active.binding, active.enabled, active.tooltip)
                for active in self.screen.active_bindings.values()
                if active.binding.show
            ),
            self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE,
        )

    def compose(self) -> ComposeResult:
        self._composed_keys = self._shown_keys()
        yield from super().compose()

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._bindings_ready and screen is self.screen and self._shown_keys() == self._composed_keys:
            return  # the same keys: nothing to redraw
        super().bindings_changed(screen)
