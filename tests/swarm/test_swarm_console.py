"""The console on a Swarm: its header says so, and the replica table shows the node each replica runs
on.  Opening it also follows the replica's logs through the manager, which must end with the console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from tests.integration.harness import wait_for
from tests.swarm.engine_support import app_name, swarm_app, swarm_engine


async def test_the_console_header_says_swarm_and_replicas_show_their_node(
    swarm_lab: Any, tmp_path: Path
) -> None:
    name = app_name("tui")
    async with swarm_engine(swarm_lab, tmp_path / "state") as engine:
        await engine.register(swarm_app(swarm_lab, name))
        await engine.up(name)
        await wait_for(lambda: _ready(engine, name), timeout=60, what="a ready replica")
        node = (await engine.get_app(name)).replicas[0].node
        assert node, "the replica's node is not known"
        app = OrchestryConsole(EngineBackend(engine.settings, engine=engine), poll_seconds=0.3)
        async with app.run_test(size=(160, 45)):
            await wait_for(lambda: app.frames_applied, timeout=10, what="first frame")
            table = app.query_one("#replicas", KeyedTable)
            await wait_for(lambda: f"{name}-1" in table.shown_keys, timeout=10, what="the replica's row")
            header = str(app.query_one("#status-bar").render())
            assert "on Swarm" in header, header
            assert str(table.cell(f"{name}-1", "node")) == node


async def _ready(engine: Any, name: str) -> bool:
    return (await engine.get_app(name)).ready_replicas == 1
