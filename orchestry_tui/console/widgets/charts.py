"""Live charts for the selected app: replicas, requests, p95 latency and CPU, with threshold lines.

A plot costs plotext ~5-15 ms of CPU to build (and Rich a few more to parse its colours), which the
plot widget did in ``render``, inside the compositor pass that also paints the tables: every refresh
held the loop for all of them at once.  Here a chart's look is built from what it is asked to draw
(``ChartRequest``), once per request, size and theme: ``prepare`` builds it ahead (the refresh builds
each chart in its own step of the loop, see ``OrchestryConsole._prepare_charts``) and ``paint_ahead``
turns it into lines, ``draw`` then only swaps the built text in, and repaints only when it differs
from what is shown.

From one refresh to the next most of a plot's lines come out of plotext the same (its frame, axes,
title, and the stretches of a line that did not move: at 1,000 replicas 2 of a replicas chart's 13
lines changed per refresh, 5 of the CPU chart's).  A line is parsed from ANSI and turned into strips
once, and taken from the last plot's lines while plotext gives it again (``_PlotLines``): parsing
and converting were half of a chart's CPU per refresh.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field, replace

from rich.ansi import AnsiDecoder
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult, RenderResult
from textual.containers import Grid
from textual.geometry import Size
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widget import _RenderCache  # what Widget._render_content fills (see Chart.paint_ahead)
from textual_plotext import PlotextPlot

from orchestry_tui.console.frame import ChartData, Series
from orchestry_tui.console.widgets import plotext_speedups

WINDOW_SECONDS = 300.0

plotext_speedups.install()  # the same plots in about half the time (see there)


MIN_SPAN_SECONDS = 60.0
# The time axis's tick steps (seconds), finest first: the finest whose labels fit the plot's width.
TICK_STEPS = (15, 30, 60, 120, 300)
TICK_LABEL_COLUMNS = 6  # "-90s" and a gap: the columns a time label needs
Y_AXIS_COLUMNS = 8  # the value labels and the frame: the columns of a chart that are not its plot

CHART_IDS = ("chart-replicas", "chart-rps", "chart-latency", "chart-cpu")
# A readable chart: 6 plot rows under its title and frame, above its time labels, and room for the
# titles ("replicas (desired vs ready)") and ~20 columns of plot.  At 80×24 the 2×2 grid gave each
# chart 0-1 plot rows: the pane shows as many charts as fit at this size, and `c` pages through them.
CHART_MIN_ROWS = 10
CHART_MIN_COLUMNS = 28
GRID_GUTTER_COLUMNS = 1  # styles.tcss: #charts grid-gutter


def chart_grid(width: int, height: int, count: int = len(CHART_IDS)) -> tuple[int, int]:
    """(columns, rows) of the charts shown at once in a pane of ``width``×``height`` cells: the most
    that each get CHART_MIN_COLUMNS×CHART_MIN_ROWS, in pages that divide ``count`` evenly (4, 2 or 1:
    a last page of one chart beside an empty cell read as missing data); side by side before stacked,
    as the plots are wider than tall."""
    across = max(1, (width + GRID_GUTTER_COLUMNS) // (CHART_MIN_COLUMNS + GRID_GUTTER_COLUMNS))
    down = max(1, height // CHART_MIN_ROWS)
    shapes = [(2, 2), (4, 1), (1, 4), (2, 1), (1, 2), (1, 1)]
    for columns, rows in shapes:
        if columns * rows <= count and count % (columns * rows) == 0 and columns <= across and rows <= down:
            return columns, rows
    return 1, 1


def _tick_label(seconds: int) -> str:
    if seconds == 0:
        return "now"
    return f"-{seconds // 60}m" if seconds % 60 == 0 else f"-{seconds}s"


def time_axis(span: float, plot_columns: int) -> tuple[float, list[float], list[str]]:
    """The time axis of a plot ``plot_columns`` wide whose oldest point is ``span`` seconds old: its
    left end, its ticks and their labels ("-2m", "-90s", "now": the unit on each label, so no row is
    spent on "seconds ago").  The left end is the next whole step (at most the window): the labels
    stay put from one refresh to the next instead of reading "-97.3 -72.9 ..."."""
    span = min(max(span, MIN_SPAN_SECONDS), WINDOW_SECONDS)
    fit = max(2, plot_columns // TICK_LABEL_COLUMNS + 1)
    for step in TICK_STEPS:
        left = min(-(-span // step) * step, WINDOW_SECONDS)
        seconds = list(range(0, int(left) + 1, step))
        if len(seconds) <= fit:
            break
    ticks = [-float(t) for t in reversed(seconds)]
    return -left, ticks, [_tick_label(int(-t)) for t in ticks]


def _relative(series: Series, now: float) -> tuple[list[float], list[float]]:
    """Seconds before now on the x axis, so the axis reads the same whatever the clock says."""
    return [t - now for t, _ in series], [v for _, v in series]


def _in_window(series: Series, now: float) -> Series:
    """Points outside the window (older, or ahead of ``now`` when a daemon's clock runs fast) are
    dropped: plotext would otherwise stretch the axis past the frame's labels."""
    return [(t, v) for t, v in series if -WINDOW_SECONDS <= t - now <= 0]


@dataclass(frozen=True)
class ChartRequest:
    """What one chart is asked to draw."""

    title: str
    lines: tuple[tuple[str, tuple[tuple[float, float], ...]], ...]  # (label, points in the window)
    now: float
    threshold: float | None = None
    empty_reason: str = ""
    short_title: str = ""  # for a chart too narrow for the title: plotext drops a title that overflows
    # The time the axis reaches back to at least (the app's oldest point in any of its charts): charts
    # side by side share one time scale, not "-1m" under one and "-5m" under its neighbour.
    since: float | None = None
    key: Hashable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = (self.title, self.short_title, self.lines, self.now, self.threshold, self.since)
        object.__setattr__(self, "key", key)

    def title_for(self, width: int) -> str:
        """The title that fits a chart ``width`` columns wide."""
        fits = len(self.title) <= width - Y_AXIS_COLUMNS
        return self.title if fits or not self.short_title else self.short_title

    @classmethod
    def of(
        cls,
        title: str,
        lines: list[tuple[str, Series]],
        now: float,
        threshold: float | None = None,
        empty_reason: str = "",
        short_title: str = "",
    ) -> ChartRequest:
        kept = tuple((label, tuple(_in_window(series, now))) for label, series in lines)
        return cls(title, kept, now, threshold, empty_reason, short_title)

    @property
    def has_data(self) -> bool:
        return any(points for _label, points in self.lines)

    @property
    def empty_message(self) -> str:
        return "" if self.has_data else f"{self.title}\n\n{self.empty_reason or 'no data yet'}"


# One ANSI line of a plot and the style the decoder was in when it began (a line that does not reset
# its colours carries them into the next): the same key always decodes to the same Text.
LineKey = tuple[Style, str]


class _PlotLines:
    """The last plot's lines, parsed from ANSI and turned into strips, for the next plot to reuse.

    Decoding line by line is what ``Text.from_ansi`` does (one decoder whose style carries on from line
    to line, the lines joined with a newline), so the Text is the same.  Textual lays out each line of
    a text by itself (for a left, top aligned widget without a selection), marking its segments with
    the line's row: a new line's strip is made at its row, with the lines kept from the last plot left
    blank, and each is kept for that line at that row."""

    def __init__(self) -> None:
        self._texts: dict[LineKey, tuple[Text, Style]] = {}  # line → its Text, the style after it
        self._look: Hashable = None  # the width and styles the strips below were made for
        self._strips: dict[tuple[int, LineKey], list[Strip]] = {}

    def text(self, ansi: str) -> tuple[Text, tuple[tuple[LineKey, Text], ...]]:
        """``Text.from_ansi(ansi)``, and its lines with their keys."""
        decoder = AnsiDecoder()
        texts: dict[LineKey, tuple[Text, Style]] = {}
        lines: list[tuple[LineKey, Text]] = []
        for piece in re.split(r"(?<=\n)", ansi):  # AnsiDecoder.decode's split, kept exactly
            key = (decoder.style, piece.rstrip("\n"))
            decoded = texts.get(key) or self._texts.get(key)
            if decoded is None:
                decoded = (decoder.decode_line(key[1]), decoder.style)
            else:
                decoder.style = decoded[1]
            texts[key] = decoded
            lines.append((key, decoded[0]))
        self._texts = texts  # only the last plot's lines are kept
        # Text.from_ansi's joiner; join copies the lines, so the kept ones are never changed.
        return Text("\n", end="\n", tab_size=8).join(line for _key, line in lines), tuple(lines)

    def strips(
        self, chart: Chart, text: Text, lines: tuple[tuple[LineKey, Text], ...], look: Hashable
    ) -> list[Strip]:
        """What ``Visual.to_strips`` makes of ``text`` (whose lines are ``lines``) at the chart's size
        and style."""
        width, height = chart.size
        style = chart.visual_style
        if look != self._look:
            self._look, self._strips = look, {}
        shown = [(row, key, line) for row, (key, line) in enumerate(lines[:height])]
        new = {row for row, key, _line in shown if (row, key) not in self._strips}
        made: dict[tuple[int, LineKey], list[Strip]] = {}
        if new:
            # One pass over the new lines at their rows, the kept ones left blank in between (a call
            # per line cost more than the whole text: each lays out the widget's styles again).
            last = max(new)
            sparse = Text("\n", end="\n", tab_size=8).join(
                line if row in new else Text() for row, _key, line in shown[: last + 1]
            )
            visual = visualize(chart, sparse, markup=chart._render_markup)
            laid_out = Visual.to_strips(chart, visual, width, None, style)
            if len(laid_out) != last + 1:  # a line took more than one row: the whole text, kept as is
                self._strips = {}
                visual = visualize(chart, text, markup=chart._render_markup)
                return Visual.to_strips(chart, visual, width, height, style)
            made = {(row, key): [laid_out[row]] for row, key, _line in shown if row in new}
        for row, key, _line in shown:
            if row not in new:
                made[row, key] = self._strips[row, key]
        self._strips = made
        return [strip for row, key, _line in shown for strip in made[row, key]]


class Chart(PlotextPlot):
    """A plot, or a sentence saying why there is nothing to plot yet."""

    empty_message = ""
    _request: ChartRequest | None = None  # what it shows
    # The last plot built: for which request, size and plotext theme, and its text.
    _built: tuple[Hashable, Text] | None = None
    _built_lines: tuple[tuple[LineKey, Text], ...] = ()  # the last plot's lines (see _PlotLines)
    _plot_lines: _PlotLines | None = None
    _shown: Text | None = None  # the text on screen (None: the empty message, or nothing yet)
    _lines: tuple[Hashable, list[Strip]] | None = None  # the last built plot as lines (paint_ahead)

    def render(self) -> RenderResult:
        if self.empty_message:
            return Text(self.empty_message, style="italic", justify="center")
        request = self._request
        if request is None:
            return super().render()
        # A new size or theme since the last build lands here: built again, in the compositor's pass.
        self._shown = self._text(request, self.size)
        return self._shown

    def _register_theme(self, app_theme_name: str) -> None:
        # A theme switch: the colours plotext gives the new theme's name exist only from here on (a
        # plot built in a paint before this took plotext's default ones under that name).
        self._built = None
        super()._register_theme(app_theme_name)

    def _text(self, request: ChartRequest, size: Size) -> Text:
        """The plot of ``request`` at ``size`` in the current theme: the last built if it is that."""
        theme = self._get_plotext_theme_name(self.app.theme)
        key = (request.key, size, theme)
        if self._built is not None and self._built[0] == key:
            return self._built[1]
        plt = self.plt
        # The theme first: plotext gives each line its colour from the theme set when it is plotted.
        # (PlotextPlot set it after, so a plot took the colours of the theme its last build had: a
        # first build, or one whose plot was built once and kept, took plotext's default ones.)
        plt.theme(theme)
        plt.clear_data()
        plt.title(request.title_for(size.width))
        for label, series in request.lines:
            if series:
                xs, ys = _relative(list(series), request.now)
                plt.plot(xs, ys, label=label if len(request.lines) > 1 else None, marker="braille")
        if request.threshold is not None:
            plt.hline(request.threshold, "red")
        # The axis ends at now and spans at least a minute: fitted to the points alone, a first
        # sample's axis ran backwards ("-0.46 -0.70 ... -1.39"), and a stopped app's last points
        # read as current ("-298.7 ... -282.7").
        oldest = min((t for _, series in request.lines for t, _ in series), default=request.now)
        if request.since is not None:
            oldest = min(oldest, request.since)
        left, ticks, labels = time_axis(request.now - oldest, size.width - Y_AXIS_COLUMNS)
        plt.xlim(left, 0)
        plt.xticks(ticks, labels)
        top = max([v for _, series in request.lines for _, v in series] + [request.threshold or 0.0])
        plt.ylim(0, top * 1.15 if top > 0 else 1)
        # What PlotextPlot.render does before building (see its note on resizing).
        plt.plotsize(size.width, size.height)
        plt._set_size(size.width, size.height)
        if self._plot_lines is None:
            self._plot_lines = _PlotLines()
        text, self._built_lines = self._plot_lines.text(plt.build())
        self._built = (key, text)
        return text

    def prepare(self, request: ChartRequest) -> None:
        """Build the plot ``draw(request)`` will show, now (no repaint)."""
        if request.has_data and self.size.area:
            self._text(request, self.size)

    def paint_ahead(self) -> None:
        """Turn the plot last built into the widget's lines now, as its paint would (Rich text into
        Textual strips: 3-8 ms of a refresh's compositor pass per chart at 1,000 replicas); the paint
        then takes them (``_render_content``) if it is that plot at that size and style."""
        built = self._built
        if built is None or built[0][1] != self.size:
            return
        key = (built[0], self.visual_style)
        if self._lines is not None and self._lines[0] == key:
            return
        by_line = self.text_selection is None and self.styles.content_align == ("left", "top")
        if by_line and self._plot_lines is not None:
            look = (self.size, key[1], self.app.theme, self._render_markup, self.auto_links)
            strips = self._plot_lines.strips(self, built[1], self._built_lines, look)
        else:  # a selection or an alignment spans lines: the whole text at once
            visual = visualize(self, built[1], markup=self._render_markup)
            strips = Visual.to_strips(self, visual, self.size.width, self.size.height, key[1])
        self._lines = (key, strips)

    def _render_content(self) -> None:
        lines, request = self._lines, self._request
        if lines is not None and request is not None and not self.empty_message:
            key = ((request.key, self.size, self._get_plotext_theme_name(self.app.theme)), self.visual_style)
            built = self._built
            if lines[0] == key and built is not None and built[0] == key[0]:
                self._shown = built[1]  # what render() would have returned
                self._render_cache = _RenderCache(self.size, lines[1])
                self._dirty_regions.clear()
                return
        super()._render_content()

    def draw(self, request: ChartRequest) -> None:
        """Show ``request``: repainted only when what the chart shows changes."""
        self._request = request
        message = request.empty_message
        if message:
            if self.empty_message != message or self._shown is not None:
                self.empty_message, self._shown = message, None
                self.refresh()
            return
        self.empty_message = ""
        if not self.size.area:  # not laid out yet: render builds it
            self._shown = None
            self.refresh()
            return
        text = self._text(request, self.size)
        if text != self._shown:
            self._shown = text
            self.refresh()


class AppCharts(Grid):
    """Four charts, as many at once as are readable at the pane's size (``chart_grid``), the others a
    page away (``next_page``); titles state units and how CPU is normalised."""

    page = 0
    shape: tuple[int, int] = (2, 2)  # (columns, rows) of the charts shown at once
    _last: tuple[ChartData | None, float, str | None] | None = None  # what show() was last given

    def compose(self) -> ComposeResult:
        for chart_id in CHART_IDS:
            yield Chart(id=chart_id)

    def charts(self) -> dict[str, Chart]:
        """The mounted charts on the page shown: the others are neither built nor drawn."""
        return {chart.id or "": chart for chart in self.query(Chart) if chart.display}

    @property
    def per_page(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def pages(self) -> int:
        return -(-len(CHART_IDS) // self.per_page)

    def on_resize(self, _event: events.Resize) -> None:
        self.fit_to(self.size.width, self.size.height)  # inside the border (the event's size is not)

    def fit_to(self, width: int, height: int) -> None:
        """Lay the charts out for a pane of ``width``×``height`` cells (inside its border)."""
        shape = chart_grid(width, height)
        if shape != self.shape:
            shown = self.page * self.per_page  # the first chart shown stays on screen
            self.shape = shape
            self.page = shown // self.per_page
        self.styles.grid_size_columns, self.styles.grid_size_rows = self.shape
        self._show_page()

    def next_page(self) -> bool:
        """Show the next charts (after the last, the first); False when every chart is on screen."""
        if self.pages == 1:
            return False
        self.page = (self.page + 1) % self.pages
        self._show_page()
        return True

    def _show_page(self) -> None:
        first = self.page * self.per_page
        shown = set(CHART_IDS[first : first + self.per_page])
        for chart in self.query(Chart):
            chart.display = chart.id in shown
        which = f"{first + 1}" if len(shown) == 1 else f"{first + 1}-{first + len(shown)}"
        self.border_subtitle = f"{which} of {len(CHART_IDS)} · c: next charts" if self.pages > 1 else ""
        if self._last is not None:
            self.show(*self._last)  # the charts just shown draw what the last refresh brought

    @staticmethod
    def requests(data: ChartData | None, now: float, selected: str | None) -> dict[str, ChartRequest]:
        """What each chart (by id) draws for ``data``, the selected app's charts."""
        if data is None:
            title, reason = (
                (f"{selected}: no metrics yet", "they appear within a few seconds of the first sample")
                if selected
                else ("no app selected", "select an app in the table above")
            )
            empty = ChartRequest.of(title, [], now, empty_reason=reason)
            return dict.fromkeys(CHART_IDS, empty)
        no_traffic = f"no requests yet: send traffic to the load balancer at /{data.app}/"
        unit, short_unit = (
            ("CPU % of limit", "CPU %/limit") if data.cpu_of_limit else ("CPU % of one core", "CPU %/core")
        )
        charts = {
            "chart-replicas": ChartRequest.of(
                "replicas (desired vs ready)",
                [("desired", data.desired), ("ready", data.ready)],
                now,
                empty_reason="no samples yet",
                short_title="replicas",  # the legend names the lines
            ),
            "chart-rps": ChartRequest.of("requests/s", [("rps", data.rps)], now, empty_reason=no_traffic),
            "chart-latency": ChartRequest.of(
                f"p95 latency ms (max {data.max_p95_latency_ms:g})",
                [("p95", data.p95_latency_ms)],
                now,
                threshold=data.max_p95_latency_ms,
                empty_reason=no_traffic,
                short_title=f"p95 ms (max {data.max_p95_latency_ms:g})",
            ),
            "chart-cpu": ChartRequest.of(
                f"{unit} (max {data.max_cpu_percent:g})",
                [("cpu", data.cpu_percent)],
                now,
                threshold=data.max_cpu_percent,
                empty_reason="no samples yet: replicas are sampled every few seconds",
                short_title=f"{short_unit} (max {data.max_cpu_percent:g})",
            ),
        }
        # One time scale for all: each reaches back to the oldest point any of them keeps.
        since = min((t for r in charts.values() for _, points in r.lines for t, _ in points), default=None)
        return {chart_id: replace(request, since=since) for chart_id, request in charts.items()}

    def drawable(
        self, data: ChartData | None, now: float, selected: str | None
    ) -> list[tuple[Chart, ChartRequest]]:
        """Each mounted chart with what it draws for ``data``. A refresh can come before the grid's
        charts are mounted (the console's first seconds): those are drawn by the next one."""
        charts = self.charts()
        return [
            (charts[chart_id], request)
            for chart_id, request in self.requests(data, now, selected).items()
            if chart_id in charts
        ]

    def show(self, data: ChartData | None, now: float, selected: str | None) -> None:
        self._last = (data, now, selected)
        for chart, request in self.drawable(data, now, selected):
            chart.draw(request)
