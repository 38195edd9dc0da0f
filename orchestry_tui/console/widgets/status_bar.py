"""The header line: who leads, for how long, and where the load balancer and API listen."""

from __future__ import annotations

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static

from orchestry_tui.console.formatting import leadership_text
from orchestry_tui.console.frame import Leadership


class StatusBar(Static):
    """One line (styles.tcss gives it height 1): updating it needs no layout pass."""

    _shown: VisualType | None = None

    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        # Every refresh redraws the header, which most seconds says what it said: no repaint then.
        if content == self._shown:
            return
        self._shown = content
        super().update(content, layout=layout)

    def show_starting(self, message: str) -> None:
        self.update(Text(f"orchestry  {message}", style="bold"))

    def show_disconnected(self, message: str) -> None:
        self.update(Text.assemble(("orchestry  ", "bold"), (message, "bold red")))

    def show(
        self, leadership: Leadership, now: float, lb: str, api: str, readonly: bool, runtime: str = "docker"
    ) -> None:
        text = Text("orchestry  ", style="bold")
        text.append_text(leadership_text(leadership, now))
        if runtime == "swarm":  # the single-host default says nothing, so its header stays as it was
            text.append("  on Swarm", style="bold")
        text.append(f"  LB http://{lb}")
        if not api:
            text.append("  API not served")
        else:
            text.append(f"  API {api}" if "://" in api else f"  API http://{api}")
        if readonly:
            text.append("  READ-ONLY", style="bold reverse")
        self.update(text)
