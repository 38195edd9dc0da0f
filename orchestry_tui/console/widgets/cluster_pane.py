"""The cluster leadership pane: every controller, the lease counting down, and who led each term.

The countdown moves on the console's one-second clock (``tick``, called by the app with the other
panes' periodic work, so a second costs one compositor pass) from the last answer's database clock plus
the local time elapsed since, without asking the store.
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from orchestry_tui.console.formatting import clock
from orchestry_tui.console.frame import ClusterNode, ClusterView, TermRecord
from orchestry_tui.console.widgets.keyed_table import KeyedTable

NODE_COLUMNS = [
    ("node", "NODE"),
    ("state", "STATE"),
    ("beat", "BEAT"),
    ("db", "DB"),
    ("version", "VERSION"),
    ("host", "HOST"),
    ("api", "API"),
]
STATE_STYLES = {"leader": "bold green", "follower": "yellow", "candidate": "bold magenta", "down": "bold red"}
END_STYLES = {"released": "cyan", "expired": "yellow", "fenced": "bold red"}
WAITING = "asking the cluster who leads…"


def age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def node_row(node: ClusterNode) -> tuple[object, ...]:
    db_style = {"ok": "green", "error": "bold red"}.get(node.database, "dim")
    state = Text(node.state, style=STATE_STYLES.get(node.state, ""))
    if not node.reachable and node.state != "down":
        # Its heartbeat is still fresh but its API did not answer: killed or frozen moments ago.
        state.append(" (no answer)", style="bold red")
    return (
        node.node_id,
        state,
        Text(age(node.heartbeat_age), style="bold red" if node.state == "down" else ""),
        Text(node.database, style=db_style),
        node.version or "?",
        node.hostname,
        node.api_url,
    )


def term_line(record: TermRecord) -> Text:
    text = Text(f"term {record.term:<4} ", style="bold")
    text.append(f"{record.leader_id}  ")
    text.append(clock(record.acquired_at), style="dim")
    if record.ended is None:
        text.append(" → now  ", style="dim")
        text.append("leading", style="bold green")
    else:
        text.append(f" → {clock(record.ended_at or record.acquired_at)}  ", style="dim")
        text.append(record.ended, style=END_STYLES.get(record.ended, ""))
    return text


class ClusterPane(Vertical):
    """Shows a ``ClusterView``; ``show`` is called only while the pane is visible."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.view: ClusterView | None = None
        self._received = 0.0  # monotonic time the view arrived
        self._shown_history: list[TermRecord] | None = None
        self._summary: Text | None = None  # the summary line on screen
        self.active = False

    def compose(self) -> ComposeResult:
        yield Static(WAITING, id="cluster-summary")
        yield KeyedTable(NODE_COLUMNS, id="cluster-nodes")
        yield Static("", id="cluster-history")

    def set_active(self, active: bool) -> None:
        """A hidden pane's countdown is not drawn (the app's clock still calls ``tick``)."""
        self.active = active
        self.tick()

    def show(self, view: ClusterView) -> None:
        self.view = view
        self._received = time.monotonic()
        self.query_one("#cluster-nodes", KeyedTable).sync({n.node_id: node_row(n) for n in view.nodes})
        if view.history != self._shown_history:
            # Only a new term changes it: updating an auto-height Static relayouts the screen.
            self._shown_history = view.history
            history = Text("term history (newest first)\n", style="dim")
            history.append_text(Text("\n").join(term_line(h) for h in view.history) or Text("no term yet"))
            self.query_one("#cluster-history", Static).update(history)
        self.tick()

    def lease_left(self) -> float | None:
        view = self.view
        if view is None or view.lease_expires_at is None:
            return None
        elapsed = time.monotonic() - self._received if view.ticking else 0.0
        return view.lease_expires_at - view.now - elapsed

    def tick(self) -> None:
        """Redraw the summary line (the countdown) if its text changed; else no repaint at all."""
        view = self.view
        if view is None or not self.active:
            return
        text = Text()
        text.append(f"term {view.term if view.term is not None else '–'}  ", style="bold")
        if view.leader_id is None:
            text.append("no leader", style="bold red")
            text.append(": a candidate takes the next term as soon as the last lease ends")
        else:
            text.append("leader ")
            text.append(view.leader_id, style="bold green")
            left = self.lease_left()
            if left is not None:
                shown = max(0, math.ceil(left))
                ttl = f"/{view.lease_ttl:g}s" if view.lease_ttl else ""
                text.append(f"  lease {shown}s{ttl}", style="bold red" if shown <= 2 else "")
        text.append(f"  · answered by {view.answered_by}", style="dim")
        if text == self._summary:
            return
        self._summary = text
        # One fixed line: no layout pass for a countdown that changes every second.
        self.query_one("#cluster-summary", Static).update(text, layout=False)
