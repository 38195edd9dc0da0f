"""Fixtures for console tests: a real Engine with the demo app up, fixed time zone for snapshots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.engine import Engine
from tests.conftest import unique_name
from tests.integration.harness import demo_app, engine_settings


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clock columns render in UTC so baselines match on any machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine(engine_settings(tmp_path / "state"))
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop(stop_apps=True)


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


async def until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value {last!r}")
