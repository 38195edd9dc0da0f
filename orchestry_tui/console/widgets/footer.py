"""Textual's footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes (removes and mounts a widget per key, then lays the whole screen out again)
every time its screen's bindings signal fires: on every return to a screen and every focus move, though
the keys it shows are nearly always the same.  On the main screen that was about half of what closing
help or describe cost (15-20 ms of CPU a press), work the operator never sees the result of.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Shown first when the keys do not all fit (80 columns): the way to every other key, and the way out.
FIRST_WHEN_NARROW = ("help", "quit")


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
        if not self.compact:
            yield from super().compose()
            return
        shown = list(self._keys())
        self.styles.grid_size_columns = len(shown)
        for binding, enabled, tooltip in shown:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)

    def _keys(self) -> Iterator[tuple[Binding, bool, str]]:
        """The shown bindings, one per action, help and quit first (a narrow footer cuts the tail)."""
        if not self._bindings_ready:
            return
        seen: dict[str, tuple[Binding, bool, str]] = {}
        for active in self.screen.active_bindings.values():
            if active.binding.show and active.binding.action not in seen:
                seen[active.binding.action] = (active.binding, active.enabled, active.tooltip)
        first = [seen[a] for a in FIRST_WHEN_NARROW if a in seen]
        yield from first
        yield from (keys for keys in seen.values() if keys not in first)

    def _natural_width(self) -> int:
        # What Textual's footer takes for each key: " k Description " plus a column between keys.
        return sum(len(self.app.get_key_display(b)) + len(b.description) + 4 for b, _, _ in self._keys())

    async def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < self._natural_width()
        if narrow != self.compact:
            self.compact = narrow
            await self.recompose()  # the keys' order changes, not only their spacing

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._bindings_ready and screen is self.screen and self._shown_keys() == self._composed_keys:
            return  # the same keys: nothing to redraw
        super().bindings_changed(screen)
