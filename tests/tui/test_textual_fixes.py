"""The console's fix to Textual (textual_fixes.py): a closed screen's widgets leave nothing pinned."""

from __future__ import annotations

import gc
import weakref

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from orchestry_tui.console.textual_fixes import release_widget_styles


class Closed(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Static("a line styled by the screen's colours")


class Main(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("the main screen")


async def test_a_closed_screens_widgets_and_their_styles_cache_are_collectable() -> None:
    """Textual 8.2.8 keys a class-wide lru_cache by each widget's StylesCache (Textualize/textual#6665):
    every widget that ever rendered kept its styles cache, and the styled lines in it, alive."""
    release_widget_styles()
    app = Main()
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        screen = Closed()
        await app.push_screen(screen)
        await pilot.pause()
        label = screen.query_one(Static)
        assert label._styles_cache._cache  # rendered: its lines are in its cache
        widget, styles = weakref.ref(label), weakref.ref(label._styles_cache)
        del label, screen
        await app.pop_screen()  # not installed: removed, every widget with it
        await pilot.pause()
        gc.collect()
        assert widget() is None
        assert styles() is None
