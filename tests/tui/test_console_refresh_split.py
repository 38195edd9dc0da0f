"""The 2 s refresh in small steps: chart plots built ahead of the paint, one per step of the loop, and
only when what a chart shows changed (the look itself is checked by the snapshot tests)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any

import pytest
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.cache import LRUCache
from textual.content import Content
from textual.dom import DOMNode
from textual.geometry import Region
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widgets import DataTable

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_NOW, FixedBackend, sample_backend
from orchestry_tui.console.widgets.charts import Chart, ChartRequest
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from tests.tui.conftest import until


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Chart(id="chart")


def count_builds(chart: Chart) -> list[int]:
    """A list whose length is how many plots ``chart`` built since."""
    built: list[int] = []
    build = chart.plt.build

    def counted() -> str:
        built.append(1)
        return build()

    chart.plt.build = counted  # type: ignore[method-assign]
    return built


def request(values: list[float], now: float = FIXED_NOW) -> ChartRequest:
    points = [(now - 10 * (len(values) - i), v) for i, v in enumerate(values)]
    return ChartRequest.of("cpu", [("cpu", points)], now, threshold=70.0)


def screen_text(app: App[None]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def refresh_with_a_new_cpu_point(app: OrchestryConsole, what: str) -> None:
    """Give the sample app "web" a new CPU point (64 % a second ago) and wait for the refresh after it."""
    backend = app.backend
    assert isinstance(backend, FixedBackend)
    web = backend.charts["web"]
    backend.charts["web"] = replace(web, cpu_percent=[*web.cpu_percent[1:], (FIXED_NOW - 1, 64.0)])
    frames = app.frames_applied
    app.refresh_now()
    await until(lambda: app.frames_applied > frames, what=what)


async def test_a_chart_builds_each_plot_once_and_repaints_only_when_it_changes() -> None:
    app = ChartApp()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(Chart)
        built = count_builds(chart)
        chart.draw(request([10.0, 20.0, 30.0]))
        await pilot.pause()
        assert len(built) == 1 and "cpu" in screen_text(app)
        repaints: list[int] = []
        refresh = chart.refresh
        chart.refresh = lambda *a, **k: (repaints.append(1), refresh(*a, **k))[1]  # type: ignore[method-assign]
        chart.draw(request([10.0, 20.0, 30.0]))  # the same again: neither built nor repainted
        await pilot.pause()
        assert len(built) == 1 and not repaints
        # Built and turned into lines ahead: drawing it then builds nothing more, repaints once, and
        # the paint takes those lines.
        chart.prepare(request([10.0, 20.0, 55.0]))
        chart.paint_ahead()
        assert len(built) == 2 and not repaints
        to_strips = Visual.to_strips
        painted: list[object] = []

        def counted(widget: object, *args: Any, **kwargs: Any) -> Any:
            painted.append(widget)
            return to_strips(widget, *args, **kwargs)  # type: ignore[arg-type]

        Visual.to_strips = counted  # type: ignore[method-assign,assignment]
        try:
            chart.draw(request([10.0, 20.0, 55.0]))
            await pilot.pause()
        finally:
            Visual.to_strips = to_strips  # type: ignore[method-assign]
        assert len(built) == 2 and len(repaints) == 1 and chart not in painted
        shown = chart._shown
        assert shown is not None  # the lines on screen are what Textual makes of the plot's text
        own = Visual.to_strips(chart, visualize(chart, shown), *chart.size, chart.visual_style)
        assert chart._render_cache.lines == own
        # A new size builds the plot again, in the paint.
        await pilot.resize_terminal(70, 16)
        await pilot.pause()
        assert len(built) == 3


async def test_a_charts_colours_are_its_themes_whatever_its_last_build_had() -> None:
    """plotext colours a line from the theme set when it is plotted.  After a theme switch a paint
    can build a plot before the new theme is registered with plotext (its name then gives plotext's
    default theme): the next build, and the plot kept from it, must still take the theme's colours."""
    app = ChartApp()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(Chart)
        chart.draw(request([10.0, 20.0, 30.0]))
        await pilot.pause()
        themed = chart._shown
        chart.plt.theme("default")  # what a build under a name plotext does not know yet leaves
        chart._built = None
        assert chart._text(request([10.0, 20.0, 30.0]), chart.size) == themed


async def test_a_chart_with_nothing_to_plot_says_why_and_plots_again_when_data_comes() -> None:
    app = ChartApp()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(Chart)
        chart.draw(request([10.0, 20.0, 30.0]))
        await pilot.pause()
        chart.draw(ChartRequest.of("cpu", [("cpu", [])], FIXED_NOW, empty_reason="no samples yet"))
        await pilot.pause()
        assert "no samples yet" in screen_text(app)
        chart.draw(request([10.0, 20.0, 30.0]))  # the plot built before: shown again
        await pilot.pause()
        assert "no samples yet" not in screen_text(app) and "cpu" in screen_text(app)


@pytest.mark.usefixtures("utc")
async def test_the_refresh_builds_the_charts_before_the_frame_is_applied_each_in_its_own_step() -> None:
    app = OrchestryConsole(sample_backend(), poll_seconds=3600)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 2, what="the selected app's charts")
        await pilot.pause()
        charts = list(app.query(Chart))
        # What each chart did; "loop" where the loop ran what came meanwhile (a key would go there).
        steps: list[str] = []
        loop = asyncio.get_running_loop()
        builds = [count_builds(chart) for chart in charts]
        for chart in charts:
            prepare = chart.prepare

            def prepared(request: ChartRequest, chart: Chart = chart, prepare: Any = prepare) -> None:
                steps.append(f"prepare {chart.id}")
                loop.call_soon(lambda: steps.append("loop") if steps[-1] != "loop" else None)
                prepare(request)

            chart.prepare = prepared  # type: ignore[method-assign]
        apply = app._apply

        def applied(frame: Any) -> None:
            before = sum(map(len, builds))
            apply(frame)
            steps.append(f"apply, {sum(map(len, builds)) - before} plots built")

        app._apply = applied  # type: ignore[method-assign]
        # A new CPU point: that chart is built again, the others (unchanged) are not.
        await refresh_with_a_new_cpu_point(app, what="a refresh")
        ids = ("chart-replicas", "chart-rps", "chart-latency", "chart-cpu")
        assert steps[: 2 * len(ids) + 1] == [
            *(s for i in ids for s in (f"prepare {i}", "loop")),
            "apply, 0 plots built",
        ]
        assert [len(built) for built in builds] == [0, 0, 0, 1]


@pytest.mark.usefixtures("utc")
async def test_a_refresh_that_comes_before_a_chart_is_mounted_draws_the_others_and_goes_on() -> None:
    # The console's first refresh can come before the chart grid's charts are mounted: it crashed the
    # console (KeyError 'chart-replicas') instead of drawing what is there and the rest next time.
    app = OrchestryConsole(sample_backend(), poll_seconds=3600)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="the first frame")
        await app.query_one("#chart-replicas", Chart).remove()
        cpu = app.query_one("#chart-cpu", Chart)
        await refresh_with_a_new_cpu_point(app, what="a refresh without the replicas chart")
        await pilot.pause()
        assert app.is_running and cpu._request is not None
        assert cpu._request.lines[0][1][-1] == (FIXED_NOW - 1, 64.0)  # the CPU chart still drawn


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable([("name", "NAME"), ("cpu", "CPU")], id="t")


async def test_a_table_renders_only_its_changed_cells_again_not_its_header() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync({"a": ("a", "1.0%"), "b": ("b", "2.0%")})
        await pilot.pause()
        rendered: list[tuple[int, int]] = []
        # Every cell rendered again, by Rich or by swapping a figure's characters (see _retext), is kept
        # in the table's cache of rendered cells: counted there.
        keep = LRUCache.set

        def counted(self: LRUCache[Any, Any], key: Any, value: Any) -> None:
            if self is table._rendered:
                rendered.append(key[:2])
            keep(self, key, value)

        LRUCache.set = counted  # type: ignore[method-assign]
        try:
            table.sync({"a": ("a", "1.5%"), "b": ("b", "2.0%")})
            await pilot.pause()
        finally:
            LRUCache.set = keep  # type: ignore[method-assign]
        assert rendered == [(0, 1)]  # a's CPU; not the header, names or b's CPU
        assert "1.5%" in screen_text(app)


async def test_a_figure_that_moved_is_shown_without_rendering_its_cell_through_rich() -> None:
    """12.3% becoming 14.0% is the same cell but for its characters: rendering it through Rich again
    was most of a changed row's paint (a fleet's CPU and memory figures move on every refresh)."""
    app = TableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync({"a": ("a", "12.3%"), "b": ("b", "20.0%")})
        await pilot.pause()
        through_rich: list[tuple[int, int]] = []
        render = DataTable._render_cell

        def counted(self: DataTable[object], row: int, column: int, *args: Any, **kwargs: Any) -> Any:
            through_rich.append((row, column))
            return render(self, row, column, *args, **kwargs)

        DataTable._render_cell = counted  # type: ignore[method-assign]
        try:
            table.sync({"a": ("a", "14.0%"), "b": ("b", "20.0%")})
            await pilot.pause()
            assert "14.0%" in screen_text(app) and not through_rich  # was [(0, 1)]
            table.sync({"a": ("a", "9.5%"), "b": ("b", "20.0%")})  # shorter: laid out again by Rich
            await pilot.pause()
        finally:
            DataTable._render_cell = render  # type: ignore[method-assign]
        assert "9.5%" in screen_text(app) and through_rich == [(0, 1)]


async def test_rows_paged_into_view_are_drawn_without_rich_and_a_click_selects_the_row_clicked() -> None:
    """PageDown through 100 apps drew each row it brought into view through Rich, two thirds of the
    apps table's paint.  A name or figure of one length in one column is the same cell as one drawn
    before but for its characters and its row: the paint is DataTable's own all the same, and a click
    on a row paged into view selects that row (its row is in the mouse metadata of what is drawn)."""
    app = TableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync({f"app{i:02d}": (f"app{i:02d}", f"{i % 7}.{i % 10}%") for i in range(40)})
        table.focus()
        await pilot.press("down")  # the cursor as keys leave it (no hover highlight)
        through_rich: list[tuple[int, int]] = []
        render = DataTable._render_cell

        def counted(self: DataTable[object], row: int, column: int, *args: Any, **kwargs: Any) -> Any:
            through_rich.append((row, column))
            return render(self, row, column, *args, **kwargs)

        DataTable._render_cell = counted  # type: ignore[method-assign]
        try:
            await pilot.press("pagedown")
            await pilot.pause()
        finally:
            DataTable._render_cell = render  # type: ignore[method-assign]
        shown = screen_text(app)
        assert table.cursor_row >= 6 and "app12" in shown and "app01" not in shown
        assert not through_rich  # was every cell of the rows paged into view
        region = Region(0, 0, *table.size)
        ours = table.render_lines(region)
        table._drop_stale_renders()
        kept = table._rendered
        table._rendered = LRUCache(4096)
        table._shapes.clear()
        table._styles_cache.clear()
        assert DataTable.render_lines(table, region) == ours
        table._rendered = kept
        row_on_screen = next(i for i, line in enumerate(shown.splitlines()) if "app12" in line)
        await pilot.click(KeyedTable, offset=(2, row_on_screen))
        await pilot.pause()
        assert table.selected_key == "app12"


CELL_VALUES: list[object] = [
    "12.3%",
    "45.6%",
    "7.1%",
    "100.0%",
    "–",
    "—",
    "é–ü",
    "e\u0301x",
    "app10",
    "web 1",
    "日本",
    "a\tb",
    "",
    Text("running", style="bold green"),
    Text("stopped", style="dim"),
    Text("failed!", style="bold red"),
    Text("yes", style="green"),
    Text("no!", style="red"),
    Text.assemble(("ab", "bold"), "cd"),
    Text.assemble(("xy", "bold"), "zw"),
    Text("12.5%", justify="right"),
]


@pytest.mark.parametrize("seed", range(4))
async def test_a_tables_cells_are_what_datatable_renders_whatever_changed(seed: int) -> None:
    """Cells whose values change in every way (figures of the same or another length, styled, with
    spans, justified, not ASCII, empty), under the cursor or not: each paint is DataTable's own."""
    rng = random.Random(seed)
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(KeyedTable)
        for _step in range(12):
            rows = {f"r{i}": (rng.choice(CELL_VALUES), rng.choice(CELL_VALUES)) for i in range(8)}
            table.sync(rows)
            table.move_cursor(row=rng.randrange(8))
            await pilot.pause()
            region = Region(0, 0, *table.size)
            ours = table.render_lines(region)
            table._drop_stale_renders()
            kept = table._rendered
            table._rendered = LRUCache(4096)
            table._styles_cache.clear()
            assert DataTable.render_lines(table, region) == ours
            table._rendered = kept  # the next changes start from what was shown


def plot_texts(chart: Chart) -> list[str]:
    """A list of what ``chart``'s plotext gave for each plot built since."""
    given: list[str] = []
    build = chart.plt.build

    def recorded() -> str:
        given.append(build())
        return given[-1]

    chart.plt.build = recorded  # type: ignore[method-assign]
    return given


def lines_made_into_strips() -> tuple[list[int], Any]:
    """A list of how many lines with text each Content rendering turned into strips, and the undo."""
    made: list[int] = []
    render = Content.render_strips

    def counted(self: Content, *args: Any, **kwargs: Any) -> list[Strip]:
        strips = render(self, *args, **kwargs)
        made.append(sum(1 for strip in strips if strip.text.strip()))
        return strips

    Content.render_strips = counted  # type: ignore[method-assign]
    return made, lambda: setattr(Content, "render_strips", render)


async def test_a_new_plot_turns_only_its_changed_lines_into_strips() -> None:
    """From one refresh to the next most of a plot's lines are the same (frame, axes, title, a line's
    flat stretches): those are neither parsed nor laid out again, and what is painted is still exactly
    what Textual makes of the whole plot."""
    app = ChartApp()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(Chart)
        given = plot_texts(chart)
        values = [30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0]
        chart.prepare(request(values))
        chart.paint_ahead()
        made, undo = lines_made_into_strips()
        try:
            chart.prepare(request([*values[:-1], 12.0]))  # the last point drops: its corner moves
            chart.paint_ahead()
        finally:
            undo()
        before, after = (plot.split("\n") for plot in given)
        changed = sum(1 for old, new in zip(before, after, strict=True) if old != new)
        assert 0 < changed < len(after) // 2
        assert sum(made) == changed  # was every line of the plot
        assert chart._built is not None and chart._built[1] == Text.from_ansi(given[-1])
        whole = visualize(chart, Text.from_ansi(given[-1]))
        assert chart._lines is not None
        assert chart._lines[1] == Visual.to_strips(chart, whole, *chart.size, chart.visual_style)
        await pilot.pause()


@pytest.mark.parametrize("seed", range(3))
async def test_a_charts_lines_are_what_textual_makes_of_its_whole_plot(seed: int) -> None:
    """Plots whose points move, come and go, under both themes and two sizes: each plot's text is
    plotext's output parsed as Rich parses it, and its strips are Textual's for that whole text."""
    rng = random.Random(seed)
    app = ChartApp()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(Chart)
        given = plot_texts(chart)
        values = [rng.uniform(0, 100) for _ in range(rng.randint(1, 30))]
        for step in range(18):
            if step == 6:
                app.theme = "textual-light"
            if step == 12:
                await pilot.resize_terminal(75, 17)
            await pilot.pause()
            if rng.random() < 0.5:
                values = [*values[1:], rng.uniform(0, 100)]
            elif rng.random() < 0.5:
                values = [*values, values[-1]]
            chart.prepare(request(values, now=FIXED_NOW + step))
            chart.paint_ahead()
            assert chart._built is not None and chart._built[1] == Text.from_ansi(given[-1])
            whole = visualize(chart, Text.from_ansi(given[-1]))
            assert chart._lines is not None
            assert chart._lines[1] == Visual.to_strips(chart, whole, *chart.size, chart.visual_style)


async def test_a_table_works_out_its_styles_once_a_paint_and_paints_what_datatable_paints() -> None:
    """A table whose every row changed (a fleet's CPU figures) worked out its background, its Rich style
    and its header's style again for each of its lines, walking its ancestors' styles each time."""
    app = TableApp()
    async with app.run_test(size=(40, 24)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync({f"app{i}": (f"app{i}", f"{i}.0%") for i in range(30)})
        table.move_cursor(row=3)
        await pilot.pause()
        worked_out: list[int] = []
        background = DOMNode.background_colors.fget
        assert background is not None

        def counted(node: DOMNode) -> Any:
            if node is table:
                worked_out.append(1)
            return background(node)

        paints: list[Region] = []
        render_lines = table.render_lines
        table.render_lines = lambda crop: (paints.append(crop), render_lines(crop))[1]  # type: ignore[method-assign]
        DOMNode.background_colors = property(counted)  # type: ignore[method-assign,assignment]
        try:
            table.sync({f"app{i}": (f"app{i}", f"{i}.5%") for i in range(30)})
            await pilot.pause()
        finally:
            DOMNode.background_colors = property(background)  # type: ignore[method-assign,assignment]
            del table.render_lines
        assert "3.5%" in screen_text(app)
        assert paints and len(worked_out) == len(paints)  # was one a line and one more, each paint
        region = Region(0, 0, *table.size)
        ours = table.render_lines(region)
        table._drop_stale_renders()
        table._rendered.clear()
        table._styles_cache.clear()
        assert DataTable.render_lines(table, region) == ours  # DataTable's own, style by style


async def test_the_clocks_refresh_waits_while_keys_come_but_no_more_than_two_ticks() -> None:
    """The 2 s refresh holds the loop 30-70 ms at 1,000 replicas: a key landing in it waited for all of
    it (the slowest PageDowns through the apps table).  While keys come it waits for a pause, at
    most two ticks of the clock, so figures stay at most two seconds later under nonstop keys."""
    app = OrchestryConsole(sample_backend(), poll_seconds=2.0)  # the clock starts each refresh
    async with app.run_test(size=(160, 45)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await until(lambda: not app._polling and not app._wake.is_set(), what="the refresh waiting")
        await pilot.pause()
        app._poll_started -= 60  # a refresh is long due
        key = events.Key("f20", None)  # bound to nothing: only that a key came
        key.set_sender(app)
        await app.on_event(key)
        app._on_clock()
        assert not app._wake.is_set()  # was started at once, key or no key
        app._on_clock()
        assert not app._wake.is_set()
        app._on_clock()  # the third tick under keys: the figures are not held back any longer
        assert app._wake.is_set()
        frames = app.frames_applied
        await until(lambda: app.frames_applied > frames, what="the refresh")
