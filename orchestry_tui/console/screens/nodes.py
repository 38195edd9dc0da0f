"""The nodes view: the machines that run replicas (Swarm nodes, or the one Docker host), refreshed.

Built on first use (or ahead, while idle) and shown again (see kept.py): it asks for the nodes at once
each time it is shown, and every REFRESH_SECONDS while it is on the stack; closed, it asks no more.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker

from core.errors import OrchestryError
from core.runtime.base import NodeInfo
from core.units import readable_memory
from orchestry_tui.console.backend import ConsoleBackend
from orchestry_tui.console.formatting import MISSING, percent
from orchestry_tui.console.screens import confirm
from orchestry_tui.console.screens.kept import KeptScreen
from orchestry_tui.console.widgets.footer import SteadyFooter
from orchestry_tui.console.widgets.keyed_table import KeyedTable

REFRESH_SECONDS = 2.0

NODE_COLUMNS = (
    ("hostname", "HOSTNAME"),
    ("address", "ADDRESS"),
    ("role", "ROLE"),
    ("state", "STATE"),
    ("availability", "AVAILABILITY"),
    ("tasks", "REPLICAS"),
    ("cpu", "CPU USE / CORES"),
    ("memory", "MEMORY"),
    ("note", "NOTE"),
)

STATE_STYLES = {"ready": "green", "down": "bold red", "disconnected": "red", "unknown": "yellow"}
AVAILABILITY_STYLES = {"active": "", "pause": "yellow", "draining": "bold yellow", "drain": "yellow"}


def _size(value: int | None) -> str:
    return MISSING if value is None else readable_memory(value)


def node_row(node: NodeInfo) -> tuple[object, ...]:
    cores = MISSING if node.cpu_cores is None else f"{node.cpu_cores:g}"
    memory = _size(node.memory_bytes)
    if node.memory_reserved_bytes:
        memory = f"{_size(node.memory_reserved_bytes)} reserved / {memory}"
    return (
        node.hostname,
        node.address,
        node.role + (" (leader)" if node.leader else ""),
        Text(node.state, style=STATE_STYLES.get(node.state, "")),
        Text(node.availability, style=AVAILABILITY_STYLES.get(node.availability, "")),
        str(node.tasks),
        f"{percent(node.cpu_percent)} / {cores}",
        memory,
        node.unavailable_reason,
    )


class NodesLoaded(Message):
    def __init__(self, nodes: list[NodeInfo] | None, error: str = "") -> None:
        super().__init__()
        self.nodes = nodes
        self.error = error


class NodesScreen(KeptScreen, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,n", "app.pop_screen", "Back", id="orchestry.nodes.back"),
        Binding("d", "drain_node", "Drain", id="orchestry.nodes.drain"),
        Binding("a", "activate_node", "Activate", id="orchestry.nodes.activate"),
    ]

    def __init__(self, backend: ConsoleBackend) -> None:
        super().__init__()
        self.backend = backend
        self._by_id: dict[str, NodeInfo] = {}
        self._polling: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield Static("nodes  (the machines that run replicas; refreshed every 2 s)", classes="screen-title")
        yield KeyedTable(NODE_COLUMNS, id="nodes")
        yield Static("asking for the nodes…", id="nodes-status")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.query_one(KeyedTable).focus()

    def show(self) -> None:
        """Before it is pushed again: from the top, with the focus on the table, as a new screen would
        be; the nodes last shown stay until the first answer (asked for at once) replaces them."""
        self._stop_polling()
        if self.is_mounted:
            table = self.query_one(KeyedTable)
            table.move_cursor(row=0, column=0, animate=False)
            table.scroll_home(animate=False)
            table.focus()

    def on_screen_resume(self) -> None:
        # Also when a dialog over it (drain asks first) closes: its polling then still runs.
        if self._polling is None:
            self._polling = self._poll()

    def on_screen_suspend(self) -> None:
        if self not in self.app.screen_stack:  # closed, not merely covered
            self._stop_polling()

    def _stop_polling(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            self._polling = None

    @work(exclusive=True, group="nodes")
    async def _poll(self) -> None:
        # The next ask is scheduled only when the last one answered: a slow daemon is never queued up.
        while True:
            try:
                self.post_message(NodesLoaded(await self.backend.nodes()))
            except OrchestryError as exc:
                self.post_message(NodesLoaded(None, str(exc)))
            await asyncio.sleep(REFRESH_SECONDS)

    def _refused_read_only(self, what: str) -> bool:
        # Not check_action: a binding it hides or disables lets the key through to the app's own
        # (d: describe), which is not what was pressed.
        if getattr(self.app, "readonly", False):
            self.notify(f"read-only: {what} is disabled", severity="warning")
            return True
        # A follower's engine refuses it: said now, not after the drain's dialog.
        on_follower = getattr(self.app, "refused_on_follower", None)
        return bool(on_follower is not None and on_follower(what))

    def _selected(self) -> NodeInfo | None:
        key = self.query_one(KeyedTable).selected_key
        return self._by_id.get(key) if key else None

    def action_drain_node(self) -> None:
        node = self._selected()
        if node is None or self._refused_read_only("draining a node"):
            return
        question = (
            f"Drain node {node.hostname}? Its {node.tasks} replica(s) are replaced on other nodes first "
            "(ready and routed before the old ones stop), then Swarm drains it."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._drain(node)

        confirm.ask(self.app, question, f"Drain {node.hostname}", answered)

    @work(group="node-change")
    async def _drain(self, node: NodeInfo) -> None:
        try:
            moving = await self.backend.drain_node(node.id)
        except OrchestryError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"draining node {node.hostname}: {moving} replica(s) move to other nodes first")

    def action_activate_node(self) -> None:
        node = self._selected()
        if node is not None and not self._refused_read_only("activating a node"):
            self._activate(node)

    @work(group="node-change")
    async def _activate(self, node: NodeInfo) -> None:
        try:
            await self.backend.activate_node(node.id)
        except OrchestryError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"node {node.hostname} is active: it takes new replicas again")

    def on_nodes_loaded(self, message: NodesLoaded) -> None:
        status = self.query_one("#nodes-status", Static)
        if message.nodes is None:
            status.update(f"nodes unavailable: {message.error}; retrying")
            return
        self._by_id = {node.id: node for node in message.nodes}
        self.query_one(KeyedTable).sync({node.id: node_row(node) for node in message.nodes})
        down = [n.hostname for n in message.nodes if n.state != "ready"]
        summary = f"{len(message.nodes)} node(s)"
        if down:
            summary += f", not ready: {', '.join(down)}"
        elif len(message.nodes) == 1 and message.nodes[0].role == "standalone":
            summary += ": a single Docker host (ORCHESTRY_RUNTIME=swarm spreads replicas over a Swarm)"
        status.update(summary)
