"""Write keys on a console whose node follows: each says at once that only the leader changes apps and
how to reach it (`orchestry --connect URL`), and opens no dialog: `s` used to open the scale dialog and
refuse only after Enter, throwing the answer away.  The same for every other key that changes state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import FIXED_NOW, FixedBackend, sample_backend
from orchestry_tui.console.follower import follower_refusal
from orchestry_tui.console.frame import Leadership
from orchestry_tui.console.screens.nodes import NodesScreen
from orchestry_tui.console.screens.scale import ScaleScreen
from orchestry_tui.console.screens.whatif import WhatIfScreen
from tests.tui.conftest import until

SIZE = (160, 45)
LEADER_URL = "http://10.0.0.1:8000"
FOLLOWING = Leadership(
    node_id="node-b",
    state="follower",
    term=5,
    leader_id="node-a",
    lease_expires_at=FIXED_NOW + 24,
    leader_api_url=LEADER_URL,
)
# Every key of the main screen that changes state, and the app it acts on ("web" is selected first).
WRITE_KEYS = {
    "s": "scaling web",
    "r": "restarting web",
    "m": "switching web",
    "u": "starting web",
    "x": "stopping web",
}


def follower_backend(leadership: Leadership = FOLLOWING) -> FixedBackend:
    backend = sample_backend()
    backend.leadership = leadership
    calls: list[str] = []

    async def refused(*args: Any, **kwargs: Any) -> Any:
        calls.append(repr(args))
        raise AssertionError("a follower's console sent a change")

    for name in ("scale", "restart", "set_mode", "up", "down", "set_policy", "drain_node", "activate_node"):
        setattr(backend, name, refused)
    return backend


def notes(app: OrchestryConsole) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def first_frame(app: OrchestryConsole) -> None:
    await until(lambda: app.frames_applied >= 1, what="first frame")


@pytest.mark.parametrize("key", list(WRITE_KEYS))
async def test_a_write_key_on_a_follower_names_the_leader_at_once_and_opens_nothing(
    key: str, tmp_path: Path
) -> None:
    app = OrchestryConsole(follower_backend(), poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app)
        main = app.screen
        await pilot.press(key)
        await pilot.pause()
        assert app.screen is main, f"{key} opened {type(app.screen).__name__} on a follower"
        said = notes(app)
        assert any(
            WRITE_KEYS[key] in m and "node-a" in m and f"orchestry --connect {LEADER_URL}" in m for m in said
        ), said


async def test_restart_replica_on_a_follower_is_refused_at_once(tmp_path: Path) -> None:
    app = OrchestryConsole(follower_backend(), poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app)
        await pilot.press("R")  # on web's first replica, the replicas table's selected row
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert any("restarting a replica of web" in m and "node-a" in m for m in notes(app)), notes(app)


async def test_the_scale_dialog_still_opens_on_the_leader(tmp_path: Path) -> None:
    app = OrchestryConsole(sample_backend(), poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app)
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, ScaleScreen), what="the scale dialog")


async def test_with_no_leader_a_write_key_says_to_wait_for_the_election(tmp_path: Path) -> None:
    electing = Leadership(node_id="node-b", state="candidate", term=None, leader_id=None)
    app = OrchestryConsole(
        follower_backend(electing), poll_seconds=3600, preferences_path=tmp_path / "c.toml"
    )
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app)
        await pilot.press("s")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert any("no node leads right now" in m and "try again" in m for m in notes(app)), notes(app)


async def test_applying_a_what_if_policy_on_a_follower_is_refused_before_the_dialog(tmp_path: Path) -> None:
    app = OrchestryConsole(follower_backend(), poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app)
        await pilot.press("w")
        await until(lambda: isinstance(app.screen, WhatIfScreen), what="the what-if screen")
        screen = app.screen
        screen.query_one("#field-maxReplicas", Input).value = "3"
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.screen is screen  # no confirmation asked
        assert any("applying a policy to web" in m and "node-a" in m for m in notes(app)), notes(app)


@pytest.mark.parametrize(("key", "what"), [("d", "draining a node"), ("a", "activating a node")])
async def test_draining_a_node_on_a_follower_is_refused_before_the_dialog(
    key: str, what: str, tmp_path: Path
) -> None:
    app = OrchestryConsole(follower_backend(), poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app)
        await pilot.press("n")
        await until(lambda: isinstance(app.screen, NodesScreen), what="the nodes view")
        screen = app.screen
        await until(lambda: screen._by_id, what="the nodes listed")  # type: ignore[attr-defined]
        await pilot.press(key)
        await pilot.pause()
        assert app.screen is screen
        assert any(what in m and "node-a" in m for m in notes(app)), notes(app)


def test_an_attached_console_names_the_daemon_it_follows_through() -> None:
    said = follower_refusal(FOLLOWING, "scaling web", attached_to="http://10.0.0.2:8000")
    assert "the daemon at http://10.0.0.2:8000 (node node-b) follows node-a" in said
    assert f"orchestry --connect {LEADER_URL}" in said


def test_a_leader_refuses_nothing() -> None:
    leading = Leadership(node_id="node-a", state="leader", term=5, leader_id="node-a")
    assert follower_refusal(leading, "scaling web") == ""
    assert follower_refusal(None, "scaling web") == ""


async def test_the_footer_dims_the_write_keys_on_a_follower_and_lights_them_when_it_leads(
    tmp_path: Path,
) -> None:
    backend = follower_backend()
    app = OrchestryConsole(backend, poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app)
        await pilot.pause()
        keys = app.screen.active_bindings
        assert [keys[k].enabled for k in ("s", "r", "m")] == [False, False, False]
        assert keys["l"].enabled and keys["L"].enabled  # logs, and asking the leader to step down
        backend.leadership = Leadership(node_id="node-b", state="leader", term=6, leader_id="node-b")
        frames = app.frames_applied
        app.refresh_now()
        await until(lambda: app.frames_applied > frames, what="a refresh")
        await pilot.pause()
        assert all(app.screen.active_bindings[k].enabled for k in ("s", "r", "m"))
