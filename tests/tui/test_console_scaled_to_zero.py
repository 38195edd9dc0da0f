"""An app scaled to 0 replicas reads "scaled to 0" in the apps table, not "running" with 0/0 ready
(which read as a fault), and `u` on it says why it starts nothing instead of "already running"."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import sample_backend
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from tests.tui.conftest import until

REASON = "scaled to 0: no replica is wanted, so nothing serves its traffic; scale it up to serve"


def console(tmp_path: Path) -> tuple[OrchestryConsole, str]:
    backend = sample_backend()
    web = backend.apps[0]
    backend.apps[0] = dataclasses.replace(
        web, status="running", status_reason=REASON, desired_replicas=0, replicas=[]
    )
    return OrchestryConsole(backend, poll_seconds=3600, preferences_path=tmp_path / "c.toml"), web.name


async def test_the_apps_table_says_scaled_to_0(tmp_path: Path) -> None:
    app, name = console(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.pause()
        cells = [str(cell) for cell in app.query_one("#apps", KeyedTable).get_row(name)]
        assert cells[1:3] == ["scaled to 0", "0/0"], cells


async def test_up_on_an_app_scaled_to_0_says_to_scale_it(tmp_path: Path) -> None:
    app, name = console(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.press("u")
        await pilot.pause()
        said = [str(n.message) for n in app._notifications]
        assert said == [f"{name} is scaled to 0: up starts nothing; press s to scale it up"], said
