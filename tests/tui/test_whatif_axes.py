"""The what-if chart of an app that served no request: its req/s axis read 1.00 down to -1.00 (plotext
centres a flat line on zero), a negative request rate on screen. Counts and rates start at zero."""

from __future__ import annotations

import re
from typing import Any

from textual.widgets import Select

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import sample_backend
from orchestry_tui.console.screens.whatif import WhatIfScreen
from tests.tui.conftest import until


async def test_whatif_axes_of_an_idle_app_show_no_negative_figure() -> None:
    backend = sample_backend()
    real = backend.backtest

    async def idle(*args: Any) -> dict[str, Any]:
        answer = await real(*args)
        for key, points in answer["load"].items():
            answer["load"][key] = [[t, 0.0] for t, _ in points]
        return answer

    backend.backtest = idle  # type: ignore[method-assign]
    app = OrchestryConsole(backend, poll_seconds=3600)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("w")
        await until(lambda: isinstance(app.screen, WhatIfScreen), what="the what-if screen")
        screen = app.screen
        assert isinstance(screen, WhatIfScreen)
        await until(lambda: screen.runs >= 1, what="the first backtest")  # no history: asks for a trace
        before = screen.runs
        screen.query_one("#whatif-source", Select).value = "step"
        await until(lambda: screen.runs > before and screen.answer is not None, what="the backtest")
        await pilot.pause()
        chart = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "req/s" in chart
        assert not re.search(r"-\d+\.\d", chart), chart
