"""An app the engine cannot start (missing image, blocked) has no replicas: the replicas pane says why,
and does not claim the engine is starting them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import sample_backend
from tests.tui.conftest import until

MISSING = (
    "image 'orchestry/nope:latest' is not present on this Docker engine and could not be pulled: "
    "build or load it (docker build/import), or fix spec.image"
)


async def replicas_pane_says(tmp_path: Path, **web_changes: Any) -> tuple[str, str]:
    """The replicas pane's message for the sample's first app changed as given (with no replicas),
    selected in a console; and that app's name."""
    backend = sample_backend()
    web = backend.apps[0]
    backend.apps[0] = dataclasses.replace(web, replicas=[], **web_changes)
    app = OrchestryConsole(backend, poll_seconds=3600, preferences_path=tmp_path / "config.toml")
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.pause()
        assert app.selected == web.name
        shown = str(app.query_one("#replicas-empty").render())
    assert "is starting them" not in shown
    return shown, web.name


async def test_replicas_pane_of_an_app_that_cannot_start_says_so_not_starting(tmp_path: Path) -> None:
    shown, name = await replicas_pane_says(tmp_path, status="error", status_reason=MISSING)
    assert f"{name} cannot start its replicas" in shown and "fix spec.image" in shown
    assert shown.endswith("Once that is fixed, press u to try again")  # what to do next


async def test_replicas_pane_of_an_app_scaled_to_zero_says_so_not_starting(tmp_path: Path) -> None:
    shown, name = await replicas_pane_says(
        tmp_path, status="running", status_reason="0/0 replicas ready", desired_replicas=0
    )
    assert f"{name} is scaled to 0 replicas" in shown and "press s" in shown


async def test_replicas_pane_while_docker_is_down_says_docker_does_not_answer_not_starting(
    tmp_path: Path,
) -> None:
    # What the engine reports when DOCKER_HOST points nowhere (compute_status appends the outage).
    outage = (
        "Docker engine at unix:///nonexistent does not answer (No such file or directory): "
        "start it: `sudo dockerd &` or `systemctl start docker`; or set ORCHESTRY_DOCKER_URL"
    )
    shown, name = await replicas_pane_says(
        tmp_path, status="degraded", status_reason=f"0/1 replicas ready; {outage}", desired_replicas=1
    )
    assert f"{name} has no replicas (desired 1): Docker does not answer" in shown
    assert "they start when it answers" in shown and "check DOCKER_HOST" in shown
    assert "unix:///nonexistent" in shown
