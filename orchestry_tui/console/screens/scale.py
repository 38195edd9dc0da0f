"""The scale dialog: pre-filled with the current desired count, validated 0-100 as you type.

Built on first use and shown again for each app (``ask``; see kept.py).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.validation import Integer
from textual.widgets import Input, Label

from orchestry_tui.console.screens.dimmed import DimmedBackground
from orchestry_tui.console.screens.kept import KeptScreen

# The engine's own limit (core.engine.MAX_REPLICAS); importing the engine here would load Docker's SDK
# before the first frame.
MAX_REPLICAS = 100
HINT = f"0-{MAX_REPLICAS} replicas · Enter applies · Esc cancels"


class ScaleScreen(KeptScreen, DimmedBackground, ModalScreen[int | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="orchestry.scale.cancel")
    ]

    def __init__(self, app_name: str, current: int, mode: str, bounds: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.app_name = app_name
        self.current = current
        self.mode = mode
        self.bounds = bounds  # the auto-scaling policy's (minReplicas, maxReplicas)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._question(), id="question")
            yield Input(
                str(self.current),
                id="replicas",
                type="integer",
                validators=[Integer(minimum=0, maximum=MAX_REPLICAS)],
                validate_on=["changed", "submitted"],
            )
            yield Label(HINT, id="hint")

    def _question(self) -> str:
        question = f"Scale {self.app_name} (now {self.current} desired, {self.mode} mode)"
        if self.mode != "auto":
            return question
        # Said before Enter: a count set in auto mode is clamped to the policy and moved by the
        # autoscaler after its cooldown, which surprised the trial's user ("I set 3, it went back to 1").
        within = f" within {self.bounds[0]}-{self.bounds[1]}" if self.bounds else ""
        return (
            f"{question}\nThe autoscaler keeps it{within} and may change this count after its cooldown: "
            "press m on the main view to switch to manual first."
        )

    def ask(self, app_name: str, current: int, mode: str, bounds: tuple[int, int] | None = None) -> None:
        """Show another app's scale (before the screen is pushed again): its count, selected."""
        self.app_name, self.current, self.mode, self.bounds = app_name, current, mode, bounds
        if self.is_mounted:
            self.query_one("#question", Label).update(self._question())
            self.query_one(Input).value = str(current)

    def on_screen_resume(self) -> None:
        field = self.query_one(Input)
        field.focus()
        field.select_all()

    def on_input_changed(self, event: Input.Changed) -> None:
        hint = self.query_one("#hint", Label)
        if event.validation_result is not None and not event.validation_result.is_valid:
            hint.update(f"enter a whole number from 0 to {MAX_REPLICAS}")
            hint.add_class("invalid")
        else:
            hint.update(HINT)
            hint.remove_class("invalid")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.validation_result is not None and not event.validation_result.is_valid:
            self.app.bell()
            return
        self.dismiss(int(event.value))

    def action_cancel(self) -> None:
        self.dismiss(None)
