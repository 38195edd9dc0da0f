"""The ``engine`` fixture: a whole Engine on real Docker and nginx with a fresh SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.engine import Engine
from tests.integration.harness import engine_settings


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine(engine_settings(tmp_path / "state"))
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop(stop_apps=True)
