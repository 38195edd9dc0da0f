"""Fixtures for console tests: a real Engine with the demo app up, fixed time zone for snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import demo_app
from tests.integration.harness import wait_for as until


@dataclasses.dataclass
class HeldFrames:
    release: asyncio.Event  # set: the refreshes go on
    waiting: asyncio.Event  # set: a refresh waits for the release, so no frame comes before it


async def hold_frames(app: Any) -> HeldFrames:
    """From now on the console's refreshes bring no frame until ``release`` is set: keys pressed
    meanwhile act on the last frame, as on a host too loaded to refresh between them.  Returns once a
    refresh waits (one already under way when called has brought its frame by then)."""
    held = HeldFrames(asyncio.Event(), asyncio.Event())
    fetch = app.backend.frame

    async def frame(*args: Any, **kwargs: Any) -> Any:
        held.waiting.set()
        await held.release.wait()
        return await fetch(*args, **kwargs)

    app.backend.frame = frame
    app.refresh_now()
    await until(held.waiting.is_set, what="a refresh held")
    return held


@pytest.fixture(autouse=True)
def own_config_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console saves its layout and theme to the config file: never the user's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("ORCHESTRY_CONFIG", raising=False)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clock columns render in UTC so baselines match on any machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
async def running_app(engine: Engine) -> str:
    """A demo app registered and up with one ready replica."""
    name = unique_name("tui")
    await engine.register(demo_app(name))
    await engine.up(name)
    await until(lambda: _ready(engine, name), what=f"{name} ready")
    return name


async def _ready(engine: Engine, name: str) -> bool:
    return (await engine.get_app(name)).ready_replicas >= 1
