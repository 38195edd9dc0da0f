"""Fast engine tests: the real engine on the in-memory runtime and a fake clock (tests/support/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from tests.support.world import MemoryWorld, memory_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[MemoryWorld]:
    async with memory_world(tmp_path / "state") as started:
        yield started


@pytest.fixture
async def api(world: MemoryWorld) -> AsyncIterator[TestClient]:
    """The REST API of the world's engine, served on a local port."""
    client = TestClient(TestServer(create_app(world.engine, world.engine.node_id)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
