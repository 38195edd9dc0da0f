"""The charts pane shows as many charts as are readable at its size: at 80×24 the 2×2 grid gave each
chart 0-1 plot rows.  Now every chart on screen gets at least 6 plot rows, `c` pages to the others,
and the pane's border says which are shown; on a big terminal all four stay on screen."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_NOW, sample_backend
from orchestry_tui.console.widgets.charts import AppCharts, Chart, chart_grid, time_axis
from tests.tui.conftest import until

MIN_PLOT_ROWS = 6


def plot_rows(chart: Chart) -> int:
    """The rows between the plot's top and bottom frame lines, as drawn."""
    assert chart._shown is not None, f"{chart.id} drew no plot"
    lines = chart._shown.plain.splitlines()
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    return bottom - top - 1


async def shown_charts(app: OrchestryConsole) -> dict[str, int]:
    """Each chart on screen (by id) and its plot rows, once drawn."""
    pane = app.query_one(AppCharts)
    await until(lambda: all(c._shown is not None for c in pane.charts().values()), what="charts drawn")
    return {chart_id: plot_rows(chart) for chart_id, chart in pane.charts().items()}


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 45), (200, 60)])
async def test_every_chart_on_screen_has_readable_plot_rows_and_c_shows_the_others(
    size: tuple[int, int], tmp_path: Path
) -> None:
    app = OrchestryConsole(sample_backend(), poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=size) as pilot:
        await until(lambda: app.frames_applied >= 2, what="the selected app's charts")
        await pilot.press("3")  # the charts tab on a small terminal; a no-op toggle pair elsewhere
        if not app.compact:
            await pilot.press("3")
        await pilot.pause()
        seen: dict[str, int] = {}
        pane = app.query_one(AppCharts)
        for _page in range(4):
            shown = await shown_charts(app)
            assert shown and all(rows >= MIN_PLOT_ROWS for rows in shown.values()), (size, shown)
            seen |= shown
            if pane.border_subtitle:
                assert pane.border_subtitle.endswith("of 4 · c: next charts")
            await pilot.press("c")
            await pilot.pause()
        assert set(seen) == {"chart-replicas", "chart-rps", "chart-latency", "chart-cpu"}, (size, seen)


async def test_a_big_terminal_shows_all_four_and_c_says_there_is_nothing_to_page(tmp_path: Path) -> None:
    app = OrchestryConsole(sample_backend(), poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=(200, 60)) as pilot:
        await until(lambda: app.frames_applied >= 2, what="the selected app's charts")
        assert len(await shown_charts(app)) == 4
        assert not app.query_one(AppCharts).border_subtitle
        await pilot.press("c")
        await pilot.pause()
        assert any("every chart is on screen" in str(n.message) for n in app._notifications)


def test_the_grid_gives_each_chart_its_rows_before_showing_more() -> None:
    assert chart_grid(78, 13) == (2, 1)  # 80×24: two side by side, a page each
    assert chart_grid(98, 30) == (2, 2)
    assert chart_grid(40, 13) == (1, 1)
    assert chart_grid(200, 12) == (4, 1)
    assert chart_grid(20, 5) == (1, 1)  # never nothing


def test_time_labels_carry_their_unit_and_end_at_now() -> None:
    assert time_axis(0.9, 60) == (
        -60.0,
        [-60.0, -45.0, -30.0, -15.0, 0.0],
        ["-1m", "-45s", "-30s", "-15s", "now"],
    )
    left, ticks, labels = time_axis(298.7, 30)
    assert left == -300 and labels[0] == "-5m" and labels[-1] == "now" and len(ticks) <= 6


async def test_the_charts_share_one_time_scale(tmp_path: Path) -> None:
    """Traffic that began 40 s ago gave the latency chart "-1m ... now" beside "-5m ... now" of the
    charts next to it: the same column read as different times."""
    backend = sample_backend()
    now = FIXED_NOW
    five_minutes = [(now - 290 + i * 10, 1.0) for i in range(30)]
    recent = [(now - 40 + i * 5, 120.0) for i in range(9)]
    backend.charts["web"] = replace(backend.charts["web"], rps=five_minutes, p95_latency_ms=recent)
    app = OrchestryConsole(backend, poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=(200, 60)) as pilot:
        await until(lambda: app.frames_applied >= 2, what="the selected app's charts")
        await pilot.pause()
        shown = app.query_one(AppCharts).charts()
        await until(lambda: all(c._shown is not None for c in shown.values()), what="charts drawn")
        first_labels = {chart_id: time_labels(chart)[0] for chart_id, chart in shown.items()}
        assert set(first_labels.values()) == {"-5m"}, first_labels


def time_labels(chart: Chart) -> list[str]:
    assert chart._shown is not None
    lines = chart._shown.plain.splitlines()
    return lines[next(i for i, line in enumerate(lines) if "└" in line) + 1].split()
