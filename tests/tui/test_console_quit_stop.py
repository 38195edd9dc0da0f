"""`Q` / the palette's "Quit and stop every app": asks first (Cancel focused), then leaves no replica
and no nginx behind and the apps stay stopped; `q` alone still leaves everything running."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from textual.widgets import Button

from core.cluster import LeaseElection
from core.engine import Engine
from core.lb.nginx import running_master
from core.store import Store
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.screens.quit_stop import QuitAndStopScreen
from tests.api.conftest import stop_nginx_left_serving
from tests.cli.conftest import Daemon, start_daemon, stop_daemon
from tests.integration.harness import engine_settings
from tests.tui.conftest import until
from tests.tui.test_connect_console import (
    api,
    attached,
    described,
    first_frame,
    ready_is,
    register_and_up,
)

SIZE = (160, 45)


def _containers(name: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=orchestry.app={name}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


async def _stored_status(engine: Engine, name: str) -> str | None:
    """What the store says of ``name`` (read afresh, as the next process to start would)."""
    store = await asyncio.to_thread(Store.open, engine.settings.database_url)
    try:
        record = await asyncio.to_thread(store.apps.get, name)
    finally:
        await asyncio.to_thread(store.close)
    return None if record is None else record.status


async def test_quit_and_stop_asks_then_stops_every_app_and_nginx(engine: Engine, running_app: str) -> None:
    app = OrchestryConsole(EngineBackend(engine.settings, engine=engine), poll_seconds=0.3)
    prefix = engine.settings.state_dir / "nginx"
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Quit and stop every app (Q)" in titles, titles
        await pilot.press("Q")
        await until(lambda: isinstance(app.screen, QuitAndStopScreen), what="the confirmation")
        question = str(app.screen.query_one("#question").render())
        assert "Stop all 1 app(s) and nginx" in question
        assert app.screen.focused is app.screen.query_one("#cancel", Button), "Cancel must have the focus"
        await pilot.press("enter")  # Enter on the focused Cancel changes nothing
        assert not isinstance(app.screen, QuitAndStopScreen) and app.is_running
        assert len(_containers(running_app)) == 1 and running_master(prefix) is not None

        await pilot.press("Q")
        await until(lambda: isinstance(app.screen, QuitAndStopScreen), what="the confirmation again")
        await pilot.click("#confirm")
        await until(lambda: not app.is_running, timeout=60, what="the console to quit")
    assert _containers(running_app) == []
    assert running_master(prefix) is None
    assert await _stored_status(engine, running_app) == "stopped"


async def test_quit_and_stop_right_after_stepping_down_still_stops_every_app(
    engine: Engine, running_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`L` then `Q` on a lone node, within the sit-out of a node that stepped down: nginx was stopped
    but the app's containers stayed up and the store said running. The stop takes the lease back."""
    # The sit-out lasts two follower retries (2 s): widened so the keys land inside it on a busy machine.
    monkeypatch.setattr(LeaseElection, "_follower_retry", property(lambda _self: 30.0))
    app = OrchestryConsole(EngineBackend(engine.settings, engine=engine), poll_seconds=0.3)
    prefix = engine.settings.state_dir / "nginx"
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("L")
        await until(lambda: isinstance(app.screen, ConfirmScreen), what="the step-down confirmation")
        await pilot.click("#confirm")
        await until(lambda: not engine.is_leader(), what="the node to step down")
        await pilot.press("Q")
        await until(lambda: isinstance(app.screen, QuitAndStopScreen), what="the quit confirmation")
        assert not engine.is_leader(), "the node took the lease back before the stop"
        await pilot.click("#confirm")
        await until(lambda: not app.is_running, timeout=60, what="the console to quit")
    assert _containers(running_app) == []
    assert running_master(prefix) is None
    assert await _stored_status(engine, running_app) == "stopped"


async def test_quit_while_the_engine_starts_lets_go_of_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`q` pressed while "starting engine…" showed quit at once, and the console's exit cancelled the
    start midway: an engine holding the leader lease that nothing stopped, so the next console or
    `orchestry stop` on the state dir waited out the lease (30 s by default). The quit waits for the
    start, then stops the engine as any quit does."""
    settings = engine_settings(tmp_path / "state", lease_ttl=60)
    started: list[Engine] = []
    gate = asyncio.Event()
    real_start = Engine.start

    async def slow_start(engine: Engine) -> None:
        await real_start(engine)  # the lease is taken by now
        started.append(engine)
        await gate.wait()  # what is left of a start: on a loaded host, seconds

    monkeypatch.setattr(Engine, "start", slow_start)
    app = OrchestryConsole(EngineBackend(settings), poll_seconds=0.3)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(lambda: started, timeout=60, what="the engine to take the lease")

            async def finish_start_once_quitting() -> None:
                await until(lambda: app._stopped, what="the quit to begin")
                gate.set()

            finishing = asyncio.create_task(finish_start_once_quitting())
            await pilot.press("q")
            await finishing
            await until(lambda: not app.is_running, timeout=60, what="the console to quit")
        store = await asyncio.to_thread(Store.open, settings.database_url)
        try:
            lease = await asyncio.to_thread(store.leases.current)
        finally:
            await asyncio.to_thread(store.close)
        assert lease is not None and lease.released_at is not None, "the quit console kept the lease"
    finally:
        for engine in started:
            if engine._parts is not None:  # the start cancelled midway: stopped here instead
                await engine.stop()
        stop_nginx_left_serving(settings.state_dir)


async def test_readonly_console_refuses_quit_and_stop(engine: Engine, running_app: str) -> None:
    app = OrchestryConsole(EngineBackend(engine.settings, engine=engine), readonly=True, poll_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.frames_applied, what="first frame")
        await pilot.press("Q")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert any(n.message.startswith("read-only") for n in app._notifications)
    assert len(_containers(running_app)) == 1


@contextlib.asynccontextmanager
async def _daemon_with_a_ready_app(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    """A daemon of the test's own with one demo app up and ready. On the way out it waits (15 s at
    most) for the daemon to lead, as it may have stepped down: the clean-up deletes the apps through
    the API, which needs a leader."""
    daemon = start_daemon(tmp_path)
    try:
        name = register_and_up(daemon, tmp_path)
        await until(lambda: ready_is(daemon, name, 1), timeout=40, what=f"{name} ready on the daemon")
        yield daemon, name
    finally:
        with contextlib.suppress(AssertionError, aiohttp.ClientError):
            await until(lambda: _leads(daemon), timeout=15, what="the daemon to lead again")
        stop_daemon(daemon)


async def test_attached_console_downs_every_app_on_the_daemon_which_keeps_running(tmp_path: Path) -> None:
    async with _daemon_with_a_ready_app(tmp_path) as (daemon, name):
        app = attached(daemon, tmp_path / "snapshots")
        async with app.run_test(size=SIZE) as pilot:
            await first_frame(app, name)
            await pilot.press("Q")
            await until(lambda: isinstance(app.screen, QuitAndStopScreen), what="the confirmation")
            assert f"on the daemon at {daemon.url}" in str(app.screen.query_one("#question").render())
            await pilot.click("#confirm")
            await until(lambda: not app.is_running, timeout=60, what="the console to quit")
        assert (await described(daemon, name))["status"] == "stopped"
        await until(lambda: not _containers(name), timeout=30, what=f"{name}'s containers gone")
        assert (await api(daemon, "/health"))["status"] == "healthy"  # the daemon itself keeps running


async def test_attached_console_steps_down_then_quit_and_stop_downs_every_app(tmp_path: Path) -> None:
    """`L` then `Q` attached to a lone daemon: within the ~2 s it sits out after stepping down it has no
    leader and refused every down (503), yet the console quit saying every app was stopped."""
    async with _daemon_with_a_ready_app(tmp_path) as (daemon, name):
        app = attached(daemon, tmp_path / "snapshots")
        async with app.run_test(size=SIZE) as pilot:
            await first_frame(app, name)
            await pilot.press("L")
            await until(lambda: isinstance(app.screen, ConfirmScreen), what="the step-down confirmation")
            await pilot.click("#confirm")
            await until(
                lambda: any("released its lease" in n.message for n in app._notifications),
                what="the daemon to step down",
            )
            await pilot.press("Q")
            await until(lambda: isinstance(app.screen, QuitAndStopScreen), what="the quit confirmation")
            await pilot.click("#confirm")
            await until(lambda: not app.is_running, timeout=60, what="the console to quit")
        assert (await described(daemon, name))["status"] == "stopped"
        await until(lambda: not _containers(name), timeout=30, what=f"{name}'s containers gone")


async def _leads(daemon: Daemon) -> bool:
    return bool((await api(daemon, "/api/v1/cluster/status"))["is_leader"])


async def test_a_console_whose_lb_address_is_taken_names_the_holder_once(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "first")
    try:
        settings = engine_settings(tmp_path / "second", lb_listen=daemon.lb)
        app = OrchestryConsole(EngineBackend(settings, serve_api=False), poll_seconds=0.3)
        async with app.run_test(size=SIZE):
            await until(lambda: app.start_error, timeout=60, what="the start error")
        port = daemon.lb.rsplit(":", 1)[1]
        assert app.start_error.count(f"port {port} is held by nginx (pid") == 1, app.start_error
        assert f"state dir {daemon.state_dir}" in app.start_error
        assert f"daemon pid {daemon.process.pid}" in app.start_error and "bind()" not in app.start_error
    finally:
        stop_daemon(daemon)
