"""The main screen's look in every layout, at 80×24 and 200×50, plus natural order, charts kept inside
their frames, and the light theme.  Fixed data, fixed clock, UTC (see test_console_snapshots.py).

Update baselines after an intended change with ``pytest tests/tui --snapshot-update`` and look at them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from textual.pilot import Pilot

from orchestry_tui.console import app as console_app
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_NOW, FixedBackend, sample_backend
from orchestry_tui.console.frame import ChartData
from orchestry_tui.console.widgets.log_pane import LogPane
from tests.tui.conftest import until

SMALL = (80, 24)
LARGE = (200, 50)

pytestmark = pytest.mark.usefixtures("utc", "screens_built_soon")


@pytest.fixture
def screens_built_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same steps of building screens ahead, 10 ms apart instead of 100: each test waits for them."""
    monkeypatch.setattr(console_app, "WARM_SCREEN_SECONDS", 0.01)


def console(backend: FixedBackend | None = None) -> OrchestryConsole:
    return OrchestryConsole(backend or sample_backend(), poll_seconds=3600)


def pressing(*keys: str) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, OrchestryConsole)
        await until(lambda: app.frames_applied >= 2, what="the selected app's charts")
        # The screens built ahead while idle are built before the snapshot, not while it is taken: one
        # built ahead drew on the main screen (the what-if's backtest notice, fixed in 06d544b), and a
        # run that was slow to build it passed while a faster one failed.
        await until(lambda: app.screens_warmed, what="every screen built ahead")
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        frames = app.frames_applied
        app.refresh_now()  # the panes just shown draw their data
        await until(lambda: app.frames_applied > frames, what="a refresh")
        await pilot.pause(0.1)  # the logs pane's follow hands over the fixed tail
        await until(lambda: app.query_one(LogPane).settled, what="the logs pane's batch written")

    return run_before


# name → keys from the default layout (every pane shown)
LARGE_LAYOUTS = {
    "all_panes": (),
    "without_cluster_and_logs": ("6", "5"),
    "logs_beside_charts": ("2", "4", "6"),
    "cluster_and_events": ("2", "3", "5"),
    "resized": ("plus", "plus", "greater_than_sign", "greater_than_sign"),
}
SMALL_TABS = {"replicas": (), "charts": ("3",), "events": ("4",), "logs": ("5",), "cluster": ("6",)}


@pytest.mark.parametrize("layout", list(LARGE_LAYOUTS))
def test_layout_200x50(snap_compare: Any, layout: str) -> None:
    assert snap_compare(console(), terminal_size=LARGE, run_before=pressing(*LARGE_LAYOUTS[layout]))


@pytest.mark.parametrize("tab", list(SMALL_TABS))
def test_layout_80x24(snap_compare: Any, tab: str) -> None:
    assert snap_compare(console(), terminal_size=SMALL, run_before=pressing(*SMALL_TABS[tab]))


def test_apps_in_natural_order(snap_compare: Any) -> None:
    backend = sample_backend()
    web, worker = backend.apps
    backend.apps = [replace(web, name=n) for n in ("app10", "app2", "app1", "app11")] + [worker]
    assert snap_compare(console(backend), terminal_size=(160, 45), run_before=pressing("6", "5"))


def test_chart_points_stay_inside_their_frames(snap_compare: Any) -> None:
    """Spikes far above the threshold, points older than the window and ahead of the clock."""
    backend = sample_backend()
    now = FIXED_NOW
    spiky = [(now - 400 + i * 5, 900.0 if i % 9 == 0 else 40.0) for i in range(90)]
    backend.charts["web"] = ChartData(
        app="web",
        desired=[(now - 350, 1.0), (now - 200, 6.0), (now - 10, 2.0), (now + 30, 9.0)],
        ready=[(now - 200, 5.0), (now - 10, 2.0)],
        rps=spiky,
        p95_latency_ms=[(t, v * 3) for t, v in spiky],
        cpu_percent=[(t, v / 5) for t, v in spiky],
        max_p95_latency_ms=250.0,
        max_cpu_percent=70.0,
        cpu_of_limit=True,
    )
    assert snap_compare(console(backend), terminal_size=(160, 45), run_before=pressing("6", "5"))


def test_light_theme(snap_compare: Any) -> None:
    assert snap_compare(console(), terminal_size=LARGE, run_before=pressing("ctrl+t"))
