"""The nodes view: the machines that run replicas (Swarm nodes, or the one Docker host), refreshed."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from core.errors import OrchestryError
from core.runtime.base import NodeInfo
from core.units import readable_memory
from orchestry_tui.console.backend import ConsoleBackend
from orchestry_tui.console.formatting import MISSING, percent
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


class NodesScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,n", "app.pop_screen", "Back", id="orchestry.nodes.back"),
    ]

    def __init__(self, backend: ConsoleBackend) -> None:
        super().__init__()
        self.backend = backend

    def compose(self) -> ComposeResult:
        yield Static("nodes  (the machines that run replicas; refreshed every 2 s)", classes="screen-title")
        yield KeyedTable(NODE_COLUMNS, id="nodes")
        yield Static("asking for the nodes…", id="nodes-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(KeyedTable).focus()
        self._poll()

    @work(exclusive=True, group="nodes")
    async def _poll(self) -> None:
        # The next ask is scheduled only when the last one answered: a slow daemon is never queued up.
        while True:
            try:
                self.post_message(NodesLoaded(await self.backend.nodes()))
            except OrchestryError as exc:
                self.post_message(NodesLoaded(None, str(exc)))
            await asyncio.sleep(REFRESH_SECONDS)

    def on_nodes_loaded(self, message: NodesLoaded) -> None:
        status = self.query_one("#nodes-status", Static)
        if message.nodes is None:
            status.update(f"nodes unavailable: {message.error}; retrying")
            return
        self.query_one(KeyedTable).sync({node.id: node_row(node) for node in message.nodes})
        down = [n.hostname for n in message.nodes if n.state != "ready"]
        summary = f"{len(message.nodes)} node(s)"
        if down:
            summary += f", not ready: {', '.join(down)}"
        elif len(message.nodes) == 1 and message.nodes[0].role == "standalone":
            summary += ": a single Docker host (ORCHESTRY_RUNTIME=swarm spreads replicas over a Swarm)"
        status.update(summary)
