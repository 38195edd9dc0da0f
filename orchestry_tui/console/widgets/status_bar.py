"""The header line: who leads, for how long, and where the load balancer and API listen."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from orchestry_tui.console.formatting import leadership_text
from orchestry_tui.console.frame import Leadership


class StatusBar(Static):
    def show_starting(self, message: str) -> None:
        self.update(Text(f"orchestry  {message}", style="bold"))

    def show(self, leadership: Leadership, now: float, lb: str, api: str, readonly: bool) -> None:
        text = Text("orchestry  ", style="bold")
        text.append_text(leadership_text(leadership, now))
        text.append(f"  LB http://{lb}")
        text.append(f"  API http://{api}" if api else "  API not served")
        if readonly:
            text.append("  READ-ONLY", style="bold reverse")
        self.update(text)
