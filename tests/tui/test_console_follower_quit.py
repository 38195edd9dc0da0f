"""`Q` on a console whose engine follows another controller on the same state dir: it cannot stop the
apps (the leader runs them and would start them again), so it says so and where to stop them instead of
asking "Stop all N app(s) and nginx, then quit?" and then leaving everything running."""

from __future__ import annotations

from pathlib import Path

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_NOW, sample_backend
from orchestry_tui.console.frame import Leadership
from orchestry_tui.console.screens.quit_stop import QuitAndStopScreen
from tests.tui.conftest import until


async def test_quit_and_stop_on_a_follower_names_the_leader_and_asks_nothing(tmp_path: Path) -> None:
    backend = sample_backend()
    backend.leadership = Leadership(
        node_id="node-b", state="follower", term=5, leader_id="node-a", lease_expires_at=FIXED_NOW + 24
    )
    app = OrchestryConsole(backend, poll_seconds=3600, preferences_path=tmp_path / "config.toml")
    async with app.run_test(size=(200, 50)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.press("Q")
        await pilot.pause()
        assert not isinstance(app.screen, QuitAndStopScreen)
        said = [str(n.message) for n in app._notifications]
        assert any("node-a" in m and "runs the apps" in m for m in said), said
        assert app.is_running  # nothing stopped, nothing quit: q still quits this console
