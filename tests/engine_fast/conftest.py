"""Fast engine tests: the real engine on the in-memory runtime and a fake clock (tests/support/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.world import MemoryWorld, memory_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[MemoryWorld]:
    async with memory_world(tmp_path / "state") as started:
        yield started
