"""A yes/no modal that names its target; Cancel has the focus so Enter alone never destroys anything.

The console asks with one such dialog, built on first use and shown again with each new question
(``ask``; see kept.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from orchestry_tui.console.screens.dimmed import DimmedBackground
from orchestry_tui.console.screens.kept import KeptScreen, kept

INSTALLED_AS = "confirm"


class ConfirmScreen(KeptScreen, DimmedBackground, ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="orchestry.confirm.cancel")
    ]

    def __init__(self, question: str, confirm_label: str) -> None:
        super().__init__()
        self.question = question
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self.confirm_label, id="confirm", variant="error")

    def ask(self, question: str, confirm_label: str) -> None:
        """Show another question (before the screen is pushed again)."""
        if self.is_mounted:
            if question != self.question:
                self.query_one("#question", Label).update(question)
            if confirm_label != self.confirm_label:
                self.query_one("#confirm", Button).label = confirm_label
        self.question, self.confirm_label = question, confirm_label

    def on_screen_resume(self) -> None:
        self.query_one("#cancel", Button).focus()  # every time it is shown

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)


def ask(app: App[Any], question: str, confirm_label: str, answered: Callable[[bool | None], None]) -> None:
    """Ask ``question`` with the app's one confirm dialog; ``answered`` gets True for the named action."""
    screen = kept(app, INSTALLED_AS, lambda: ConfirmScreen(question, confirm_label), ConfirmScreen)
    if screen in app.screen_stack:  # never change the question of a dialog being answered
        screen = ConfirmScreen(question, confirm_label)
    screen.ask(question, confirm_label)
    app.push_screen(screen, answered)
