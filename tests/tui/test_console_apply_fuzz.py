"""`orchestry --apply FILE...` with bad files among good ones: the console comes up and runs, each bad file
is named in a notice with its field and fix (no secret value), and nothing is applied, not the good file
either (as `orchestry apply` applies nothing when any document is bad)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import yaml

from core.engine import Engine
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from tests.conftest import unique_name
from tests.integration.harness import demo_app, engine_settings
from tests.support.spec_cases import SECRET_PASSWORD
from tests.tui.conftest import until

SIZE = (160, 45)


@asynccontextmanager
async def console_applying(
    tmp_path: Path, files: list[Path]
) -> AsyncIterator[tuple[OrchestryConsole, Engine, list[str]]]:
    """The console started with ``--apply files``, at its first frame, and the notices it showed then;
    it came up without a start error. Whatever it registered is deleted afterwards (the bug applied the
    good file before the bad)."""
    app = OrchestryConsole(
        EngineBackend(engine_settings(tmp_path / "state"), apply_files=files), poll_seconds=0.3
    )
    async with app.run_test(size=SIZE):
        await until(lambda: app.frames_applied or app.start_error, timeout=60, what="first frame")
        engine = app.backend.engine
        assert engine is not None
        try:
            notices = [notice.message for notice in app._notifications]
            assert app.start_error == "", app.start_error
            yield app, engine, notices
        finally:
            for registered in await engine.list_apps():
                await engine.delete(registered.name)


async def test_bad_apply_files_are_named_and_nothing_is_applied(tmp_path: Path) -> None:
    good, bad_secret, bad_name, bad_scaling = (tmp_path / f"{n}.yml" for n in ("good", "s", "n", "m"))
    good.write_text(yaml.safe_dump(demo_app(unique_name("ok"))))
    document = demo_app(unique_name("sc"))
    document["spec"]["environment"] = [f"DB_PASSWORD={SECRET_PASSWORD}"]
    bad_secret.write_text(yaml.safe_dump(document))
    bad_name.write_text(yaml.safe_dump(demo_app("web\n")))
    bad_scaling.write_text(
        yaml.safe_dump(demo_app(unique_name("mm"), scaling={"minReplicas": 3, "maxReplicas": 2}))
    )
    files = [good, bad_secret, bad_name, bad_scaling]
    async with console_applying(tmp_path, files) as (app, engine, notices):
        assert not any(SECRET_PASSWORD in notice for notice in notices), notices
        for path, field in [
            (bad_secret, "spec.environment[0]"),
            (bad_name, "metadata.name"),
            (bad_scaling, "scaling.minReplicas"),
        ]:
            assert any(f"--apply {path.name}: " in n and field in n for n in notices), (path.name, notices)
        assert any("nothing from --apply was applied" in n for n in notices), notices
        assert await engine.list_apps() == []
        assert "no apps registered" in str(app.query_one("#apps-empty").render())


async def test_an_unreadable_apply_file_is_named_and_nothing_is_applied(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(demo_app(unique_name("ok"))))
    missing = tmp_path / "missing.yml"
    async with console_applying(tmp_path, [good, missing]) as (_app, engine, notices):
        assert any(f"--apply missing.yml: cannot read {missing}" in n for n in notices), notices
        assert await engine.list_apps() == []
