"""Every key, from the same registry that makes the bindings.

Built once and shown again (see kept.py): its table is the same every time.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from orchestry_tui.console.actions import help_rows
from orchestry_tui.console.screens.dimmed import DimmedBackground
from orchestry_tui.console.screens.kept import KeptScreen


class HelpScreen(KeptScreen, DimmedBackground, ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close", id="orchestry.help.close")
    ]

    def __init__(self, readonly: bool) -> None:
        super().__init__()
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(
                "Keys" + ("  (read-only: keys that change state are refused)" if self.readonly else "")
            )
            table: DataTable[str] = DataTable(cursor_type="none", id="help-table")
            yield table
            yield Label(
                "j/k or ↑/↓ move in a table · Esc closes · ctrl+p or : opens the command palette", id="hint"
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("KEY", "ACTION", "")
        for row in help_rows():
            table.add_row(*row)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
