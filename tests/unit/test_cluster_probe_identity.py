"""A controller that quit leaves its node row, heartbeat and API address behind; when another controller
now answers at that address (a second console or a restarted daemon on the same port), the quit one used
to show as a live "follower" with a heartbeat minutes old. The answer's node id must be the node's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from core.cluster_overview import node_rows, probe_health
from core.store.records import NodeRecord

NOW = 10_000.0


@pytest.fixture
async def live_node_url() -> AsyncIterator[str]:
    """An API answering /health as node "live"."""

    async def health(_request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "healthy", "version": "2.0.0", "database": {"status": "ok"}, "node_id": "live"}
        )

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_quit_node_whose_address_another_node_answers_is_down(live_node_url: str) -> None:
    nodes = [
        NodeRecord("live", "vm", live_node_url, NOW - 2, NOW - 600),
        NodeRecord("gone", "vm", live_node_url, NOW - 300, NOW - 900),  # quit 5 minutes ago
    ]
    health = await probe_health({n.node_id: n.api_url for n in nodes})
    states = {row["node_id"]: row["state"] for row in node_rows(nodes, "live", NOW, 10.0, health)}
    assert states == {"live": "leader", "gone": "down"}
