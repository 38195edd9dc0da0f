"""A daemon being stopped still gets requests on keep-alive connections after its listener closed (the
controller LB keeps some open): they must get a clear 503 that sends the client elsewhere, never a 500
from an engine whose store, runtime and lease are going away."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from tests.support.world import MemoryWorld


async def test_requests_during_and_after_stop_get_503_naming_the_shutdown(world: MemoryWorld) -> None:
    engine = world.engine
    client = TestClient(TestServer(create_app(engine, engine.settings.node_id)))
    await client.start_server()
    try:
        assert (await client.get("/api/v1/apps")).status == 200
        seen: list[tuple[int, str]] = []
        release = engine.cluster.release

        async def release_while_a_request_arrives() -> None:
            # The moment a stopping node still leads but is taking its parts down.
            answer = await client.post("/api/v1/apps/any/scale", json={"replicas": 2})
            seen.append((answer.status, (await answer.json())["detail"]))
            await release()

        engine.cluster.release = release_while_a_request_arrives  # type: ignore[method-assign]
        await engine.stop()
        for method, path in (("GET", "/api/v1/apps"), ("GET", "/health"), ("POST", "/api/v1/apps/any/up")):
            answer = await client.request(method, path)
            seen.append((answer.status, (await answer.json())["detail"]))
            assert answer.headers.get("Connection", "").lower() == "close"
        assert all(status == 503 and "shutting down" in detail for status, detail in seen), seen
        assert len(seen) == 4
    finally:
        await client.close()
        await asyncio.sleep(0)
