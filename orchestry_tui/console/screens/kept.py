"""Screens the console builds once and shows again: opening one is then a repaint, not a build.

A screen pushed new each time is composed and mounted widget by widget, and its first layout sends it a
Resize, on which Textual lays every screen beneath it out again too (the main screen: some 100 widgets);
closing it removed it all.  Installed once (``App.install_screen``) and pushed by name, the same
instance comes back with its widgets, styles and rendered lines.  ``warm`` builds them while the console
is idle after its first frame, so that even the first press of a session finds them built.

Textual also re-applies the whole stylesheet to a screen each time it is pushed, in case styles changed
while it was away; for a DataTable that discards every rendered cell.  Styles only change when the CSS
does (a theme switch) or with the terminal's focus (the ``:focus``/``:blur`` pseudo-classes), so a
kept screen is restyled only then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from textual import events
from textual.app import App
from textual.screen import Screen

KeptT = TypeVar("KeptT", bound=Screen[Any])


class KeptScreen:
    """Mixed in before the Textual screen class: ``class HelpScreen(KeptScreen, ModalScreen[None])``."""

    app: App[Any]
    _styled_for: tuple[int, bool] | None = None

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Screen's own handler (Textual calls each class's handler along the MRO).
        # _css_update_count is what Textual itself compares to know a screen's styles are stale.
        if not event.refresh_styles:
            return
        styled_for = (self.app._css_update_count, self.app.app_focus)
        if styled_for == self._styled_for:
            event.refresh_styles = False
        else:
            self._styled_for = styled_for


def kept(app: App[Any], name: str, build: Callable[[], KeptT], kind: type[KeptT]) -> KeptT:
    """The screen installed in ``app`` as ``name``, built (``build()``) on first use."""
    if not app.is_screen_installed(name):
        app.install_screen(build(), name)
    return app.get_screen(name, kind)


def warm(app: App[Any], screens: dict[str, Callable[[], Screen[Any]]]) -> bool:
    """Install the first of ``screens`` not yet installed and compose and mount it now, off screen
    (one a call: each is some 10-30 ms of work, which a key pressed meanwhile should not wait behind
    all at once).  False once every one is installed."""
    for name, build in screens.items():
        if not app.is_screen_installed(name):
            screen = build()
            app.install_screen(screen, name)
            app._get_screen(name)  # what push_screen does first: starts the screen, which mounts it
            # Then its first layout, at the terminal's size: its first push would otherwise lay out
            # (on that layout's Resize) the screens beneath it again as well.
            screen.call_after_refresh(screen._refresh_layout, app.size)
            return True
    return False
