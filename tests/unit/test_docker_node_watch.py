"""The node watch across a Docker outage on a single host: the engine's node goes down and comes back
under the identity it last answered with ("node … is down" / "ready again"), not a placeholder node
joining while the engine's own node leaves; and a stopping engine, which still answers on the
connections it kept, is down as soon as its socket is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.nodes import NodeService
from core.runtime.docker import DockerRuntime
from tests.support.fake_dockerd import ENGINE_ID, ENGINE_NAME, fake_dockerd


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(self, category: str, kind: str, message: str, **extra: Any) -> None:
        self.seen.append((kind, message, extra.get("details") or {}))


async def test_the_engine_node_is_down_and_up_again_under_its_own_identity(tmp_path: Path) -> None:
    socket_path = str(tmp_path / "docker.sock")
    runtime = DockerRuntime(f"unix://{socket_path}")
    events = Events()
    # Only the poll is exercised: it needs neither the reconciler nor the metrics.
    watch = NodeService(runtime, reconciler=None, metrics=None, emit=events, leads=lambda: True)  # type: ignore[arg-type]
    try:
        with fake_dockerd(socket_path) as engine:
            await watch._poll()  # the baseline, a connection kept
            engine.stop_listening()  # dockerd stopping: it still answers on that connection
            await watch._poll()
        await watch._poll()  # gone altogether
        with fake_dockerd(socket_path):
            await watch._poll()
            [node] = await runtime.nodes()
    finally:
        await runtime.close()

    assert [(kind, details["node"]) for kind, _message, details in events.seen] == [
        ("node_down", ENGINE_ID),
        ("node_up", ENGINE_ID),
    ], events.seen
    assert f"node {ENGINE_NAME} is down" in events.seen[0][1]
    assert (node.id, node.hostname, node.state) == (ENGINE_ID, ENGINE_NAME, "ready")


async def test_an_engine_that_answers_for_the_first_time_is_the_node_coming_up(tmp_path: Path) -> None:
    """Started while Docker is down, the controller knows no engine identity yet: its node is listed
    down under a placeholder id, and Docker answering is that node up, not a second node joining."""
    socket_path = str(tmp_path / "docker.sock")
    runtime = DockerRuntime(f"unix://{socket_path}")
    events = Events()
    watch = NodeService(runtime, reconciler=None, metrics=None, emit=events, leads=lambda: True)  # type: ignore[arg-type]
    try:
        await watch._poll()  # the baseline: no engine
        with fake_dockerd(socket_path):
            await watch._poll()
    finally:
        await runtime.close()

    assert [(kind, details["node"]) for kind, _message, details in events.seen] == [("node_up", ENGINE_ID)], (
        events.seen
    )
    assert f"node {ENGINE_NAME} is ready again" in events.seen[0][1]
