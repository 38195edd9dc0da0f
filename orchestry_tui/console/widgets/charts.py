"""Live charts for the selected app: replicas, requests, p95 latency and CPU, with threshold lines."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Grid
from textual_plotext import PlotextPlot

from orchestry_tui.console.frame import ChartData, Series

WINDOW_SECONDS = 300.0


def _relative(series: Series, now: float) -> tuple[list[float], list[float]]:
    """Seconds before now on the x axis, so the axis reads the same whatever the clock says."""
    return [t - now for t, _ in series], [v for _, v in series]


def _in_window(series: Series, now: float) -> Series:
    """Points outside the window (older, or ahead of ``now`` when a daemon's clock runs fast) are
    dropped: plotext would otherwise stretch the axis past the frame's labels."""
    return [(t, v) for t, v in series if -WINDOW_SECONDS <= t - now <= 0]


class Chart(PlotextPlot):
    """A plot, or a sentence saying why there is nothing to plot yet."""

    empty_message = ""
    _drawn: str | None = None  # the empty message on screen, if that is what it shows

    def render(self) -> RenderResult:
        if self.empty_message:
            return Text(self.empty_message, style="italic", justify="center")
        return super().render()

    def draw(
        self,
        title: str,
        lines: list[tuple[str, Series]],
        now: float,
        threshold: float | None = None,
        empty_reason: str = "",
    ) -> None:
        lines = [(label, _in_window(series, now)) for label, series in lines]
        has_data = any(series for _, series in lines)
        self.empty_message = "" if has_data else f"{title}\n\n{empty_reason or 'no data yet'}"
        if not has_data and self._drawn == self.empty_message:
            return  # a chart waiting for data says the same sentence every refresh: no repaint
        self._drawn = self.empty_message or None
        plt = self.plt
        plt.clear_data()
        plt.title(title)
        plt.xlabel("seconds ago")
        for label, series in lines:
            if series:
                xs, ys = _relative(series, now)
                plt.plot(xs, ys, label=label if len(lines) > 1 else None, marker="braille")
        if threshold is not None and has_data:
            plt.hline(threshold, "red")
        if has_data:
            top = max([v for _, series in lines for _, v in series] + [threshold or 0.0])
            plt.ylim(0, top * 1.15 if top > 0 else 1)
        self.refresh()


class AppCharts(Grid):
    """Four charts in a 2×2 grid; titles state units and how CPU is normalised."""

    def compose(self) -> ComposeResult:
        yield Chart(id="chart-replicas")
        yield Chart(id="chart-rps")
        yield Chart(id="chart-latency")
        yield Chart(id="chart-cpu")

    def show(self, data: ChartData | None, now: float, selected: str | None) -> None:
        charts = {chart.id: chart for chart in self.query(Chart)}
        if data is None:
            title, reason = (
                (f"{selected}: no metrics yet", "they appear within a few seconds of the first sample")
                if selected
                else ("no app selected", "select an app in the table above")
            )
            for chart in charts.values():
                chart.draw(title, [], now, empty_reason=reason)
            return
        no_traffic = f"no requests yet: send traffic to the load balancer at /{data.app}/"
        charts["chart-replicas"].draw(
            "replicas (desired vs ready)",
            [("desired", data.desired), ("ready", data.ready)],
            now,
            empty_reason="no samples yet",
        )
        charts["chart-rps"].draw("requests/s", [("rps", data.rps)], now, empty_reason=no_traffic)
        charts["chart-latency"].draw(
            f"p95 latency ms (max {data.max_p95_latency_ms:g})",
            [("p95", data.p95_latency_ms)],
            now,
            threshold=data.max_p95_latency_ms,
            empty_reason=no_traffic,
        )
        unit = "CPU % of limit" if data.cpu_of_limit else "CPU % of one core"
        charts["chart-cpu"].draw(
            f"{unit} (max {data.max_cpu_percent:g})",
            [("cpu", data.cpu_percent)],
            now,
            threshold=data.max_cpu_percent,
            empty_reason="no samples yet: replicas are sampled every few seconds",
        )
