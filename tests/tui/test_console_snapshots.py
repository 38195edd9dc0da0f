"""The console's look, rendered from fixed data (no engine, fixed clock, UTC) so baselines are stable.

Update baselines after an intended change with ``pytest tests/tui --snapshot-update`` and review them.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from orchestry_tui.console import app as console_app
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FixedBackend, sample_backend
from orchestry_tui.console.frame import Leadership
from orchestry_tui.console.widgets.log_pane import LogPane

SIZE = (160, 45)

pytestmark = pytest.mark.usefixtures("utc", "screens_built_when_asked")


@pytest.fixture
def screens_built_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No screen built ahead while idle (screens/kept.py): one built ahead shows the same cells, but its
    SVG draws a few rows' fill as two rects instead of one, and which of the two a baseline would get
    then depends on how fast the host ran the test (a key pressed before or after the warm-up)."""
    monkeypatch.setattr(console_app, "WARM_SCREEN_SECONDS", 3600.0)


async def first_frame(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, OrchestryConsole)
    while app.frames_applied < 2:  # the second frame carries the selected app's charts
        await pilot.pause(0.02)
    await pilot.pause(0.1)  # the logs pane's follow hands over the fixed tail
    while not app.query_one(LogPane).settled:  # and writes it in a batch
        await pilot.pause(0.02)
    await pilot.pause()


def console(backend: FixedBackend | None = None, readonly: bool = False) -> OrchestryConsole:
    return OrchestryConsole(backend or sample_backend(), readonly=readonly, poll_seconds=3600)


def test_main_view(snap_compare: Any) -> None:
    assert snap_compare(console(), terminal_size=SIZE, run_before=first_frame)


def test_scale_dialog(snap_compare: Any) -> None:
    async def dialog_open(pilot: Pilot[Any]) -> None:
        await first_frame(pilot)
        await pilot.press("s")
        await pilot.pause()
        pilot.app.screen.query_one(Input).cursor_blink = False  # a blinking cursor differs run to run

    assert snap_compare(console(), terminal_size=SIZE, run_before=dialog_open)


def test_restart_confirm(snap_compare: Any) -> None:
    assert snap_compare(console(), terminal_size=SIZE, run_before=first_frame, press=["r"])


def test_degraded_app_selected(snap_compare: Any) -> None:
    async def charts_follow(pilot: Pilot[Any]) -> None:
        await first_frame(pilot)
        app = pilot.app
        assert isinstance(app, OrchestryConsole)
        frames = app.frames_applied
        await pilot.press("down")
        # The replicas follow the key at once; the charts with the refresh once the cursor has rested.
        while app.frames_applied == frames:
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(console(), terminal_size=SIZE, run_before=charts_follow)


def test_help(snap_compare: Any) -> None:
    assert snap_compare(console(readonly=True), terminal_size=SIZE, run_before=first_frame, press=["?"])


def test_describe(snap_compare: Any) -> None:
    assert snap_compare(console(), terminal_size=SIZE, run_before=first_frame, press=["d"])


def test_logs(snap_compare: Any) -> None:
    async def logs_shown(pilot: Pilot[Any]) -> None:
        await first_frame(pilot)
        await pilot.press("l")
        # The fixed tail comes in one go and is written by the screen's next batch, which then says
        # so; a fixed pause was too short on a loaded host, and the snapshot showed "waiting".
        while not pilot.app.screen.query_one("#logs-status").render().plain.startswith("following"):  # type: ignore[attr-defined]
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(console(), terminal_size=SIZE, run_before=logs_shown)


def test_empty_follower(snap_compare: Any) -> None:
    backend = FixedBackend(
        apps=[],
        leadership=Leadership(node_id="node-b", state="follower", term=7, leader_id="node-a"),
    )

    async def shown(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, OrchestryConsole)
        while app.frames_applied < 1:
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(console(backend), terminal_size=SIZE, run_before=shown)


def test_nodes(snap_compare: Any) -> None:
    async def nodes_shown(pilot: Pilot[Any]) -> None:
        await first_frame(pilot)
        await pilot.press("n")
        while pilot.app.screen.query_one("#nodes-status").render().plain.startswith("asking"):  # type: ignore[attr-defined]
            await pilot.pause(0.02)

    assert snap_compare(console(), terminal_size=SIZE, run_before=nodes_shown)
