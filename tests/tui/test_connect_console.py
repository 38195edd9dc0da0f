"""``orchestry --connect URL``: the console driven by keys against a real ``orchestry daemon`` subprocess.

Every assertion about a change reads the daemon's own API: the console must act through the daemon, not
beside it.  The daemon runs real Docker, nginx and SQLite (PostgreSQL for the follower test).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.http_backend import HttpBackend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.screens.logs import LogsScreen
from orchestry_tui.console.screens.nodes import NodesScreen
from orchestry_tui.console.screens.scale import ScaleScreen
from orchestry_tui.console.widgets.events_pane import EventsPane
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from orchestry_tui.console.widgets.log_pane import LogPane
from orchestry_tui.console.widgets.log_view import LogView
from orchestry_tui.console.widgets.status_bar import StatusBar
from tests.cli.conftest import READY_TIMEOUT, Daemon, start_daemon, stop_daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app
from tests.tui.conftest import hold_frames, until

SIZE = (160, 45)
# A lease this short lets a daemon killed with SIGKILL lead again within seconds of its restart.
SHORT_LEASE = {"LEADER_LEASE_TTL": "3"}


# --- a daemon and its API -------------------------------------------------------------------------


def register_and_up(daemon: Daemon, tmp: Path) -> str:
    name = unique_name("cx")
    spec = tmp / f"{name}.yml"
    spec.write_text(yaml.safe_dump(demo_app(name)))
    daemon.ok("register", str(spec))
    daemon.ok("up", name)
    return name


def restart_daemon(daemon: Daemon, env_extra: dict[str, str] | None = None) -> Daemon:
    """The same daemon (port, state, node id) started again after it died."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env.update({"HOME": str(daemon.home), **(env_extra or {})})
    process = subprocess.Popen(
        daemon.process.args, env=env, stdout=subprocess.PIPE, stderr=daemon.log_path.open("a"), text=True
    )
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    line = ""
    while time.monotonic() < deadline and not line.startswith("orchestry daemon ready:"):
        line = process.stdout.readline()
        if process.poll() is not None:
            break
    assert line.startswith("orchestry daemon ready:"), f"no readiness line; log:\n{daemon.log()}"
    return dataclasses.replace(daemon, process=process)


async def api(daemon: Daemon, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(daemon.url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def described(daemon: Daemon, name: str) -> dict[str, Any]:
    return await api(daemon, f"/api/v1/apps/{name}")


async def ready_is(daemon: Daemon, name: str, count: int) -> bool:
    app = await described(daemon, name)
    return app["desired_replicas"] == count and app["ready_replicas"] == count


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, str]]:
    """One daemon with one demo app up, shared by the tests that only act on that app."""
    tmp = tmp_path_factory.mktemp("connect")
    daemon = start_daemon(tmp)
    try:
        yield daemon, register_and_up(daemon, tmp)
    finally:
        stop_daemon(daemon)


# --- the console ----------------------------------------------------------------------------------


def attached(daemon: Daemon, snapshots: Path, token: str | None = None) -> OrchestryConsole:
    return OrchestryConsole(HttpBackend(daemon.url, token, snapshots), poll_seconds=0.3)


def cell(app: OrchestryConsole, table_id: str, row: str, column: str) -> str:
    return str(app.query_one(table_id, KeyedTable).cell(row, column))


def header(app: OrchestryConsole) -> str:
    return str(app.query_one(StatusBar).render())


def events_shown(app: OrchestryConsole) -> str:
    """The events pane as one string without spaces (wrapping splits messages across lines)."""
    return "".join(strip.text for strip in app.query_one(EventsPane).lines).replace(" ", "")


def notifications(app: OrchestryConsole) -> list[str]:
    return [n.message for n in app._notifications]


async def first_frame(app: OrchestryConsole, name: str) -> None:
    await until(lambda: app.frames_applied and app.selected == name, what=f"a frame with {name} selected")


# --- behaviour ------------------------------------------------------------------------------------


async def test_shows_leadership_the_app_its_ready_replicas_and_charts(
    served: tuple[Daemon, str], tmp_path: Path
) -> None:
    daemon, name = served
    await until(lambda: ready_is(daemon, name, 1), timeout=30, what=f"{name} ready on the daemon")
    app = attached(daemon, tmp_path)
    async with app.run_test(size=SIZE):
        await first_frame(app, name)
        assert f"node {daemon.node_id} leader" in header(app)
        assert f"API {daemon.url}" in header(app) and f"LB http://{daemon.lb}" in header(app)
        assert cell(app, "#apps", name, "status") == "running"
        assert cell(app, "#apps", name, "ready") == "1/1"
        replica = (await described(daemon, name))["replicas"][0]
        assert cell(app, "#replicas", f"{name}-1", "state") == "ready"
        assert cell(app, "#replicas", f"{name}-1", "container") == replica["container_id"]
        # Charts come from the daemon's history: desired replicas is already 1 on the first frame.
        charts = await until(lambda: app.frame and app.frame.charts, what="charts")
        assert charts.app == name and charts.desired[-1][1] == 1.0
        await until(lambda: app.frame.charts.ready, timeout=15, what="a ready-replicas sample")
        # The daemon's events, the app named once (its message names it: no "NAME: " before it).
        shown = events_shown(app)
        assert f"registered{name}" in shown and f"{name}:registered" not in shown


async def test_node_column_and_nodes_view_come_from_the_daemon(
    served: tuple[Daemon, str], tmp_path: Path
) -> None:
    daemon, name = served
    await until(lambda: ready_is(daemon, name, 1), timeout=30, what=f"{name} ready on the daemon")
    app = attached(daemon, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app, name)
        host = socket.gethostname()
        await until(lambda: cell(app, "#replicas", f"{name}-1", "node") == host, what="the replica's node")
        await pilot.press("n")
        await until(lambda: isinstance(app.screen, NodesScreen), what="the nodes view")
        nodes = app.screen.query_one("#nodes", KeyedTable)
        await until(lambda: nodes.row_count == 1, what="the daemon's one node")
        row = nodes.get_row_at(0)
        assert str(row[0]) == host and str(row[2]) == "standalone" and str(row[3]) == "ready"
        replicas = len((await described(daemon, name))["replicas"])
        assert str(row[5]) == str(replicas)  # the served app's replicas, the daemon's only app
        # Drain through the daemon, confirmed: a single Docker host says why it cannot.
        await pilot.press("d")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the drain confirmation")
        await pilot.click("#confirm")
        refusal = "single Docker host has no other node"
        await until(lambda: any(refusal in m for m in notifications(app)), what="the daemon's refusal")


async def test_scale_key_scales_the_app_on_the_daemon(served: tuple[Daemon, str], tmp_path: Path) -> None:
    daemon, name = served
    before = (await described(daemon, name))["desired_replicas"]
    target = before + 1
    app = attached(daemon, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app, name)
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, ScaleScreen), what="scale dialog")
        await pilot.press(*str(target), "enter")
        await until(lambda: ready_is(daemon, name, target), timeout=30, what=f"{target} ready on the daemon")
        await until(
            lambda: cell(app, "#apps", name, "ready") == f"{target}/{target}", timeout=10, what="the table"
        )
        # The scaling event arrives live in the events pane.
        message = f"{name}: {before} → {target} replicas".replace(" ", "")
        await until(lambda: message in events_shown(app), timeout=10, what="the scaling event")


async def test_restart_confirmed_replaces_a_replica_on_the_daemon(
    served: tuple[Daemon, str], tmp_path: Path
) -> None:
    daemon, name = served
    before = {r["container_id"] for r in (await described(daemon, name))["replicas"]}
    assert before, "the app must run replicas for a restart to replace"
    app = attached(daemon, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app, name)
        await pilot.press("r")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="confirm dialog")
        await pilot.click("#confirm")

        async def replaced() -> bool:
            replicas = (await described(daemon, name))["replicas"]
            # As many replicas as before, each one new: an empty list must not count as "all replaced".
            return len(replicas) == len(before) and all(
                r["container_id"] not in before and r["ready"] for r in replicas
            )

        # The notice comes when the daemon accepts the restart and expires after a few seconds: read it
        # before waiting out the replacement, which on a loaded host takes longer than that.
        await until(lambda: any("rolling restart" in n for n in notifications(app)), what="the notice")
        await until(replaced, timeout=60, what="every replica replaced and ready")


async def test_mode_down_and_up_act_through_the_daemon(served: tuple[Daemon, str], tmp_path: Path) -> None:
    daemon, name = served
    mode = (await described(daemon, name))["mode"]
    app = attached(daemon, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app, name)
        await pilot.press("m")

        async def mode_is(wanted: str) -> bool:
            return (await described(daemon, name))["mode"] == wanted

        toggled = "auto" if mode == "manual" else "manual"
        await until(lambda: mode_is(toggled), what=f"{toggled} mode on the daemon")
        # m toggles the mode the console shows: pressed before a refresh brought the toggled mode, it
        # asked for the toggled mode again (1 run in 7 at load ~8 waited 30 s for the mode back).
        await until(lambda: getattr(app.selected_app(), "mode", None) == toggled, what=f"{toggled} shown")
        await pilot.press("m")
        await until(lambda: mode_is(mode), what=f"{mode} mode again")

        await pilot.press("x")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="confirm dialog")
        await pilot.click("#confirm")

        async def status_is(wanted: str) -> bool:
            return (await described(daemon, name))["status"] == wanted

        await until(lambda: status_is("stopped"), timeout=30, what="stopped on the daemon")
        await until(lambda: cell(app, "#apps", name, "status") == "stopped", what="stopped in the table")
        await pilot.press("u")
        await until(lambda: status_is("running"), timeout=60, what="running again")


async def test_m_twice_before_a_frame_ends_in_the_first_mode_on_the_daemon(
    served: tuple[Daemon, str], tmp_path: Path
) -> None:
    daemon, name = served

    async def modes_asked() -> list[str]:
        """Newest first: the modes the app's policy changes asked for (other tests change it too)."""
        answer = await api(daemon, f"/api/v1/apps/{name}/events?limit=500")
        changes = [e["details"]["changes"] for e in answer["events"] if e["kind"] == "policy_updated"]
        return [c["mode"] for c in changes if "mode" in c]

    async def two_more() -> list[str] | None:
        asked = await modes_asked()
        return asked[:2] if len(asked) >= len(before) + 2 else None

    mode = (await described(daemon, name))["mode"]
    toggled = "auto" if mode == "manual" else "manual"
    before = await modes_asked()
    app = attached(daemon, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app, name)
        held = await hold_frames(app)
        await pilot.press("m", "m")
        assert await until(two_more, timeout=30, what="two mode changes") == [mode, toggled]
        assert (await described(daemon, name))["mode"] == mode
        held.release.set()


async def test_logs_follow_and_snapshot_come_from_the_daemon(
    served: tuple[Daemon, str], tmp_path: Path
) -> None:
    daemon, name = served
    app = attached(daemon, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await first_frame(app, name)
        await pilot.press("l")
        await until(lambda: isinstance(app.screen, LogsScreen), what="logs screen")
        view = app.screen.query_one(LogView)
        await until(lambda: len(view.lines) > 0, timeout=15, what="log lines")
        shown = len(view.lines)
        # The demo replicas log every health probe (once a second): following shows new lines.
        await until(lambda: len(view.lines) > shown, timeout=15, what="new lines while following")
        assert any(name in line.plain for line in view.lines)
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, LogsScreen), what="back to the main view")

        await pilot.press("ctrl+s")
        snapshot = await until(lambda: app.last_snapshot, timeout=60, what="a snapshot written")
        assert snapshot.parent == tmp_path / "snapshots"
        with tarfile.open(snapshot) as archive:
            assert archive.getnames(), "the snapshot archive is empty"


async def test_logs_pane_follows_a_replica_the_daemon_scales_up(
    served: tuple[Daemon, str], tmp_path: Path
) -> None:
    daemon, _ = served
    name = register_and_up(daemon, tmp_path)  # its own app: the shared one keeps its one replica
    try:
        await until(lambda: ready_is(daemon, name, 1), timeout=30, what=f"{name} ready")
        app = attached(daemon, tmp_path)
        async with app.run_test(size=(200, 50)):
            await until(lambda: app.frames_applied, what="the first frame")
            apps = app.query_one("#apps", KeyedTable)
            apps.move_cursor(row=apps.get_row_index(name))
            await until(lambda: app.query_one(LogPane).app_name == name, what=f"the pane following {name}")

            def lines_of(replica: str) -> int:
                return sum(1 for line in app.query_one(LogPane).view.lines if f" {replica} " in line.plain)

            await until(lambda: lines_of(f"{name}-1"), timeout=15, what="the first replica's lines")
            await asyncio.to_thread(daemon.ok, "scale", name, "2")
            # The daemon's follow relists on the replica_started event; its fallback relist (30 s) is
            # past this wait.  The demo logs each health probe, one a second.
            await until(lambda: lines_of(f"{name}-2"), timeout=20, what="the scaled-up replica's lines")
    finally:
        await asyncio.to_thread(daemon.cli, "delete", name, "-f")


async def test_killed_daemon_shows_disconnected_then_recovers(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "d", env_extra=SHORT_LEASE)
    try:
        name = register_and_up(daemon, tmp_path)
        await until(lambda: ready_is(daemon, name, 1), timeout=30, what=f"{name} ready")
        app = attached(daemon, tmp_path)
        async with app.run_test(size=SIZE):
            await first_frame(app, name)
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(timeout=10)
            await until(lambda: app.disconnected, timeout=10, what="the disconnected state")
            assert header(app).startswith(f"orchestry  disconnected from {daemon.url}: ")
            assert header(app).endswith(", retrying")
            assert cell(app, "#apps", name, "name") == name, "the last frame stays on screen"

            daemon = await asyncio.to_thread(restart_daemon, daemon, SHORT_LEASE)
            await until(lambda: app.disconnected is None, timeout=15, what="reconnected")
            # Until the killed process's lease runs out the restarted daemon follows (its old self).
            leading = f"node {daemon.node_id} leader "
            await until(lambda: leading in header(app), timeout=30, what="the restarted daemon leading")
            assert f"reconnected to {daemon.url}" in notifications(app)
            # Live events resume: the restarted daemon's election shows up without reopening anything.
            await until(
                lambda: f"node{daemon.node_id}isnowleader" in events_shown(app), timeout=30, what="new events"
            )
            await until(lambda: ready_is(daemon, name, 1), timeout=30, what=f"{name} adopted and ready")
    finally:
        stop_daemon(daemon)


async def test_follower_daemon_refuses_a_scale_and_the_console_names_the_leader(
    tmp_path: Path, pg_database_url: str
) -> None:
    """Two daemons on one PostgreSQL store; the console attached to the follower."""
    leader = start_daemon(tmp_path / "a", "--database-url", pg_database_url)
    follower = None
    try:
        name = register_and_up(leader, tmp_path)
        follower = start_daemon(tmp_path / "b", "--database-url", pg_database_url)
        app = attached(follower, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await first_frame(app, name)
            assert f"node {follower.node_id} follower" in header(app)
            assert f"leader {leader.node_id}" in header(app)
            await pilot.press("s")
            # Said at once, with where to go: no scale dialog whose answer the follower throws away.
            expected = f"follows {leader.node_id}, and only the leader changes apps"
            said = lambda: " ".join(notifications(app))  # noqa: E731
            await until(lambda: expected in said(), what="the leader named", timeout=10)
            assert f"orchestry --connect {leader.url}" in said()
            assert not isinstance(app.screen, ScaleScreen)
        assert (await described(leader, name))["desired_replicas"] == 1
    finally:
        if follower is not None:
            stop_daemon(follower)
        stop_daemon(leader)
