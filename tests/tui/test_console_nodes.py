"""The nodes view's drain and activate: asked first (Cancel focused), refused clearly, read-only says no."""

from __future__ import annotations

from typing import Any

from textual.widgets import Button

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_DATA, sample_backend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.screens.nodes import NodesScreen
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from tests.tui.conftest import until

SIZE = (160, 45)


async def nodes_view(app: OrchestryConsole, pilot: Any) -> NodesScreen:
    await until(lambda: app.frames_applied, what="a first frame")
    await pilot.press("n")
    screen = await until(lambda: isinstance(app.screen, NodesScreen) and app.screen, what="the nodes view")
    await until(lambda: screen.query_one("#nodes", KeyedTable).row_count == 3, what="the nodes")
    return screen


async def test_drain_asks_naming_the_node_and_a_refusal_is_notified() -> None:
    app = OrchestryConsole(sample_backend(), poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        await nodes_view(app, pilot)
        await pilot.press("d")
        dialog = await until(lambda: isinstance(app.screen, ConfirmScreen) and app.screen, what="the confirm")
        assert "Drain node node-1? Its 1 replica(s) are replaced on other nodes first" in dialog.question
        assert app.focused is dialog.query_one("#cancel", Button)  # Enter alone never drains
        await pilot.click("#confirm")
        await until(lambda: any(FIXED_DATA in n.message for n in app._notifications), what="the refusal")
        assert isinstance(app.screen, NodesScreen)


async def test_read_only_refuses_drain_and_activate_with_a_warning() -> None:
    app = OrchestryConsole(sample_backend(), readonly=True, poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        await nodes_view(app, pilot)
        for key, what in (("d", "draining a node"), ("a", "activating a node")):
            await pilot.press(key)
            await until(lambda what=what: any(f"read-only: {what} is disabled" in n.message
                                              for n in app._notifications), what=what)  # fmt: skip
            assert isinstance(app.screen, NodesScreen)  # no dialog, and not the app's describe either
