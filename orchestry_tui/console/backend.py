"""What the console needs from whatever runs the apps: a live Engine, or fixed data for snapshots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from core.errors import OrchestryError
from core.models import AppView, Event, ScaleResult
from core.runtime.base import LogLine, NodeInfo
from orchestry_tui.console.frame import ClusterView, Frame


class BackendUnreachable(OrchestryError):
    """What runs the apps does not answer (a daemon the console is attached to went away).

    Not a failure of the request: the console shows it as a state and keeps retrying."""

    http_status = 503

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"disconnected from {url}: {reason}")
        self.url = url
        self.reason = reason


class ConsoleBackend(Protocol):
    """Every call may raise a core.errors.OrchestryError; the console turns them into notifications."""

    api_address: str  # "127.0.0.1:8000", or "" when the API is not served
    lb_address: str
    runtime: str  # "docker", or "swarm" when the replicas run on a Docker Swarm
    state_dir: Path

    async def start(self) -> list[str]:
        """Start whatever runs the apps; returns notices worth showing (e.g. "API port taken")."""
        ...

    async def stop(self, stop_apps: bool = False) -> None:
        """Let go of what runs the apps; ``stop_apps`` first stops every app (and the engine's nginx)."""
        ...

    async def frame(self, selected: str | None, charts: bool = True) -> Frame:
        """Every app, with the replicas of ``selected`` (at least), and its charts if ``charts``."""
        ...

    async def recent_events(self, limit: int) -> list[Event]:
        """Newest first."""
        ...

    def live_events(self) -> AsyncIterator[Event]: ...

    async def get_app(self, name: str) -> AppView: ...

    def app_now(self, name: str) -> AppView | None:
        """The app's view with its replicas if it can be had without waiting, else None."""
        ...

    async def nodes(self) -> list[NodeInfo]:
        """The machines that run replicas (Swarm nodes, or the one Docker host)."""
        ...

    async def drain_node(self, node_id: str) -> int:
        """Start draining the node; how many replicas move to other nodes first."""
        ...

    async def activate_node(self, node_id: str) -> None: ...

    async def scale(self, name: str, replicas: int) -> ScaleResult: ...

    async def restart(self, name: str, slot: int | None = None) -> list[int]: ...

    async def set_mode(self, name: str, mode: str) -> None: ...

    async def up(self, name: str) -> None: ...

    async def backtest(
        self, name: str, changes: dict[str, Any] | None, since: float | None, trace: str | None
    ) -> dict[str, Any]:
        """POST /api/v1/apps/{name}/backtest's answer: current vs candidate over the recorded load."""
        ...

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply scaling keys (validated as ``orchestry apply`` validates); returns the new policy."""
        ...

    async def down(self, name: str) -> None: ...

    async def logs(self, name: str, tail: int) -> list[LogLine]: ...

    def follow_logs(self, name: str) -> AsyncIterator[LogLine]: ...

    async def diagnostic_snapshot(self) -> bytes: ...

    async def cluster(self) -> ClusterView:
        """Every controller, the lease and the term history (only asked while the pane shows)."""
        ...

    async def step_down(self) -> str:
        """Ask the leader to release its lease; returns what happened, in a sentence."""
        ...
