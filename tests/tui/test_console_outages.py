"""What the console user sees when Docker or the database goes away, and where the engine's log goes.

The console owns the terminal, so the embedded engine's log records go to ``<state dir>/console.log``
(redacted) and its warnings into the events pane; an outage must show on the screen, not only in a log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

from core.redaction import default_redactor
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.log_sink import LOG_FILE_NAME
from orchestry_tui.console.widgets.events_pane import EventsPane
from orchestry_tui.console.widgets.status_bar import StatusBar
from tests.chaos.pg_private import PrivatePostgres, private_database_url, private_postgres  # noqa: F401
from tests.integration.harness import engine_settings
from tests.tui.conftest import until

SIZE = (160, 45)
NO_DOCKER = "unix:///tmp/orchestry-no-such-docker.sock"


def pane_text(app: OrchestryConsole) -> str:
    return " ".join(strip.text for strip in app.query_one(EventsPane).lines)


def everything_shown(app: OrchestryConsole) -> str:
    """The events pane, the header and the notifications: what a user can read."""
    notes = " ".join(n.message for n in app._notifications)
    return f"{pane_text(app)} {app.query_one(StatusBar).render()} {notes}"


async def test_docker_unreachable_shows_and_warnings_reach_the_pane_and_a_redacted_log(
    tmp_path: Path,
) -> None:
    settings = engine_settings(tmp_path / "state", docker_url=NO_DOCKER)
    planted = f"planted-{uuid.uuid4().hex}"
    default_redactor.add(planted)
    app = OrchestryConsole(EngineBackend(settings, serve_api=False), poll_seconds=0.3)
    async with app.run_test(size=SIZE):
        await until(app.engine_ready.is_set, timeout=30, what="the engine started")
        await until(
            lambda: "orchestry-no-such-docker.sock" in pane_text(app), what="Docker's outage in the pane"
        )
        # A warning of the engine's own carrying a secret value, as a failing call might log one.
        logging.getLogger("core.reconciler").warning("start failed: password %s refused", planted)
        await until(lambda: "start failed" in pane_text(app), what="the warning in the pane")
        shown = pane_text(app)
        joined = shown.replace(" ", "")  # a wrapped line is split at a space, a long word anywhere
        assert "password***refused" in joined and planted not in joined, shown
    log = (settings.state_dir / LOG_FILE_NAME).read_text()
    assert "orchestry-no-such-docker.sock" in log, log  # the engine's own warning, logged after start
    assert "core.reconciler: start failed: password *** refused" in log and planted not in log, log
    # Detached on exit: a later warning goes nowhere near this console's file.
    logging.getLogger("core.reconciler").warning("after the console closed")
    assert "after the console closed" not in (settings.state_dir / LOG_FILE_NAME).read_text()


async def test_a_database_outage_is_visible_in_the_console(
    tmp_path: Path,
    private_postgres: PrivatePostgres,  # noqa: F811
    private_database_url: str,  # noqa: F811
) -> None:
    settings = engine_settings(tmp_path / "state", private_database_url, lease_ttl=3)
    app = OrchestryConsole(EngineBackend(settings, serve_api=False), poll_seconds=0.3)
    async with app.run_test(size=SIZE):
        await until(app.engine_ready.is_set, timeout=30, what="the engine started")
        await until(lambda: "leader" in str(app.query_one(StatusBar).render()), what="leading")
        seen_before = everything_shown(app)
        await asyncio.to_thread(private_postgres.stop)
        try:

            def database_trouble_shown() -> bool:
                shown = everything_shown(app).lower()
                return "database" in shown and shown.count("database") > seen_before.lower().count("database")

            await until(database_trouble_shown, timeout=30, what="the outage on the screen")
            print(f"\nshown during the outage: {everything_shown(app)[-600:]}")
        finally:
            await asyncio.to_thread(private_postgres.start)
    log = (settings.state_dir / LOG_FILE_NAME).read_text()
    assert "database" in log.lower(), log[-2000:]
