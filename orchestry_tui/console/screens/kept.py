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

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from textual import events
from textual.app import App
from textual.screen import Screen
from textual.widgets import Footer

KeptT = TypeVar("KeptT", bound=Screen[Any])


class KeptScreen:
    """Mixed in before the Textual screen class: ``class HelpScreen(KeptScreen, ModalScreen[None])``."""

    app: App[Any]
    _styled_for: tuple[int, bool] | None = None
    painted_ahead = False  # styled and rendered off screen by ``warm`` (tests look)
    steps_ahead = 0  # of paint_ahead's

    def focus_ahead(self) -> None:
        """Focus now what a push of this screen focuses (nothing by default): its footer's keys depend
        on it (``paint_ahead``)."""

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
    """One step of building ``screens`` off screen, the first step left of the first screen not done
    (one a call: each is some 10-40 ms of work, which a key pressed meanwhile should not wait behind
    all at once).  False once every one is built and painted ahead.

    Every screen is first installed, composed, mounted and laid out; then each is styled and rendered
    as its first push would do it (``paint_ahead``).  Built but not painted, a screen's first push
    still restyled all of it and rendered every widget's lines (help 40 ms of CPU at 1,000 replicas,
    the what-if 100 ms, where the pushes after it cost 10-15 ms)."""
    for name, build in screens.items():
        if not app.is_screen_installed(name):
            screen = build()
            app.install_screen(screen, name)
            app._get_screen(name)  # what push_screen does first: starts the screen, which mounts it
            # Then its first layout, at the terminal's size: its first push would otherwise lay out
            # (on that layout's Resize) the screens beneath it again as well.
            screen.call_after_refresh(screen._refresh_layout, app.size)
            return True
    for name in screens:
        screen = app.get_screen(name)
        if isinstance(screen, KeptScreen) and not screen.painted_ahead and screen.is_mounted:
            paint_ahead(app, screen)
            return True
    return False


async def built(app: App[Any], seconds: float) -> None:
    """Wait (``seconds`` at most) until every screen ``warm`` started has mounted.

    A screen built ahead mounts in its own task, and Textual's shutdown closes a screen that is off the
    stack directly, not through its message queue: one still mounting then ran its widgets' on_mount
    after their children were removed (NoMatches in the what-if's, help's, or Textual's own Select's),
    and the console ended with a traceback instead of quitting."""
    mounting = [
        screen._mounted_event.wait()
        for screen in app._installed_screens.values()
        if isinstance(screen, Screen) and screen._task is not None and not screen.is_mounted
    ]
    if mounting:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await asyncio.gather(*mounting)


def paint_ahead(app: App[Any], screen: KeptScreen) -> None:
    """One step of what ``screen``'s first push costs, done now, off screen (a step a call, each 5-30 ms
    of CPU at 1,000 replicas): its styles applied (and remembered, so that the push does not apply them
    again, see ``_on_screen_resume``) and its footer told its keys; the layout its widgets asked for
    since (a screen not shown leaves that for its push: the footer's keys are new widgets); then every
    widget's lines rendered as over the screen shown now, which Textual keeps until a widget changes.
    Nothing is displayed.  Not while it is on the stack: it is then painted the usual way."""
    assert isinstance(screen, Screen)
    if screen in app.screen_stack:
        screen.painted_ahead = True
        return
    screen.steps_ahead += 1
    if screen.steps_ahead == 1:
        screen.update_node_styles(animate=False)
        screen._styled_for = (app._css_update_count, app.app_focus)
        # A footer composes its keys (a widget each) when first told its screen's bindings, which a
        # screen not shown never is; in the footer's context, as its own handler would be (its
        # compose binds data to itself).  It mounts them after this step.  The keys are those of the
        # widget the push focuses.
        screen.focus_ahead()
        for footer in screen.query(Footer):
            with footer._context():
                footer.bindings_changed(screen)
        return
    lay_out(app, screen)
    if screen.steps_ahead == 2:
        return
    # The stack beneath it as a push would give it: a dialog renders the screen it dims (dimmed.py).
    screen._compositor.render_update(full=True, screen_stack=[app.screen])
    screen.painted_ahead = True


def lay_out(app: App[Any], screen: Screen[Any]) -> None:
    """The layout Textual runs when a shown screen's widgets asked for one, if they did."""
    if screen._layout_required or screen._layout_widgets or screen._compositor.size != app.size:
        screen._refresh_layout(app.size)
        screen._layout_required = False
