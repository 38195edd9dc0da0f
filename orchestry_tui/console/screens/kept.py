"""Screens the console builds once and shows again: opening one is then a repaint, not a build.

A screen pushed new each time is composed and mounted widget by widget, and its first layout sends it a
Resize, on which Textual lays every screen beneath it out again too (the main screen: some 100 widgets);
closing it removed it all.  Installed once (``App.install_screen``) and pushed by name, the same
instance comes back with its widgets, styles and rendered lines.

Textual also re-applies the whole stylesheet to a screen each time it is pushed, in case styles changed
while it was away; for a DataTable that discards every rendered cell.  Styles only change when the CSS
does (a theme switch) or with the terminal's focus (the ``:focus``/``:blur`` pseudo-classes), so a
kept screen is restyled only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import events

if TYPE_CHECKING:
    from textual.app import App


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
