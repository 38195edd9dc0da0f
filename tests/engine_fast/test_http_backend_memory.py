"""The console's HTTP backend reads a real daemon API (over the in-memory engine) with the wire models:
every answer it asks for parses into the console's own objects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from core.api.app import create_app
from core.errors import NotFound
from orchestry_tui.console.http_backend import HttpBackend
from tests.support.world import MemoryWorld, app_document


@pytest.fixture
async def backend(world: MemoryWorld, tmp_path: Path) -> AsyncIterator[HttpBackend]:
    server = TestServer(create_app(world.engine, world.engine.settings.node_id))
    await server.start_server()
    attached = HttpBackend(str(server.make_url("")).rstrip("/"), None, tmp_path)
    try:
        yield attached
    finally:
        await attached.stop()
        await server.close()


async def test_frames_events_logs_and_changes_parse_through_the_wire_models(
    world: MemoryWorld, backend: HttpBackend
) -> None:
    await world.engine.register(app_document("web", replicas=2))
    await world.engine.up("web")
    await world.ready("web", 2)
    world.runtime.log("web-1", "hello")

    notes = await backend.start()
    assert "attached to the daemon" in notes[0]
    frame = await backend.frame("web")
    assert frame.leadership.state == "leader" and frame.leadership.node_id == world.engine.node_id
    (app,) = frame.apps
    assert (app.name, app.status, app.ready_replicas) == ("web", "running", 2)
    assert [r.slot for r in app.replicas] == [1, 2] and len(app.replicas[0].container_id) == 12
    assert frame.figures["web"].rps is None  # nothing measured yet: null, not 0
    assert frame.charts is not None

    described = await backend.get_app("web")
    assert described.spec["spec"]["image"] == app.spec["spec"]["image"]
    assert any(e.kind == "app_up" for e in await backend.recent_events(50))
    assert [line.message for line in await backend.logs("web", 10)] == ["hello"]

    scaled = await backend.scale("web", 3)
    assert (scaled.status, scaled.replicas) == ("scaled", 3)
    assert await backend.restart("web", 1) == [1]
    assert (await backend.set_policy("web", {"maxReplicas": 6}))["maxReplicas"] == 6
    with pytest.raises(NotFound):
        await backend.get_app("nope")
