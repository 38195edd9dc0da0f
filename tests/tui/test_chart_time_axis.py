"""A chart's time axis ends at now and reads oldest to newest, whatever points it has: fitted to the
points alone, the first sample's axis ran backwards ("-0.46 -0.70 -0.93 -1.16 -1.39 seconds ago"), and a
stopped app's last points sat under "-282.7" at the right edge, as if current.  The labels carry their
unit ("-5m ... -30s now"), so no row goes to "seconds ago"."""

from __future__ import annotations

from textual.app import App, ComposeResult

from orchestry_tui.console.fixed_backend import FIXED_NOW
from orchestry_tui.console.widgets.charts import Chart, ChartRequest


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Chart(id="chart")


def axis_labels(text: str) -> list[float]:
    """The x axis's labels, left to right, in seconds: the line under the plot's bottom frame, where
    each label carries its unit ("-2m", "-90s", "now")."""
    lines = text.splitlines()
    below = next(i for i, line in enumerate(lines) if "└" in line) + 1
    seconds = {"now": 0.0}
    for label in lines[below].split():
        if label != "now":
            seconds[label] = float(label[:-1]) * (60 if label.endswith("m") else 1)
    return [seconds[label] for label in lines[below].split()]


async def labels_of(points: list[tuple[float, float]]) -> list[float]:
    app = ChartApp()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(Chart)
        chart.draw(ChartRequest.of("requests/s", [("rps", points)], FIXED_NOW))
        await pilot.pause()
        assert chart._shown is not None
        return axis_labels(chart._shown.plain)


async def test_the_first_sample_gives_an_axis_from_a_minute_ago_to_now() -> None:
    labels = await labels_of([(FIXED_NOW - 0.9, 0.0)])
    assert labels == sorted(labels) and labels[0] <= -60 and labels[-1] == 0, labels


async def test_points_that_stopped_coming_long_ago_sit_far_left_of_now() -> None:
    labels = await labels_of([(FIXED_NOW - 298.7 + i, 1.0) for i in range(16)])
    assert labels == sorted(labels) and labels[0] <= -298 and labels[-1] == 0, labels
