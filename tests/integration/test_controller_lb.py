"""The controller LB (templates/controller-lb.conf.j2, real nginx) when no node takes a request.

During a handover or an election a write is refused by every live node and the node that just
stopped refuses connections. When nginx happened to try that node last, the client got nginx's own
"502 Bad Gateway" HTML page (seen on a three-daemon trial while the leader stopped), which the CLI
could only quote; a follower's refusal on the same request was JSON naming what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from scripts.controller_lb import render_controller_config
from testkit.harness import free_port

REFUSAL = {"detail": "Not the leader. Leader is: node1"}


@pytest.fixture
async def follower() -> AsyncIterator[str]:
    """An API node that is a follower: reads answer, writes are refused as the daemon refuses them."""

    async def read(_: web.Request) -> web.Response:
        return web.json_response({"apps": []})

    async def write(_: web.Request) -> web.Response:
        return web.json_response(REFUSAL, status=503, headers={"X-Current-Leader": "node1"})

    app = web.Application()
    app.router.add_get("/api/v1/apps", read)
    app.router.add_post("/api/v1/apps/web/scale", write)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def controller_lb(prefix: Path, nodes: list[str]) -> AsyncIterator[str]:
    listen = f"127.0.0.1:{free_port()}"
    (prefix / "temp").mkdir(parents=True)
    config = prefix / "nginx.conf"
    config.write_text(render_controller_config(listen=listen, nodes=nodes, prefix=prefix))
    nginx = ["nginx", "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]
    started = await asyncio.to_thread(subprocess.run, nginx, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    try:
        yield f"http://{listen}"
    finally:
        await asyncio.to_thread(subprocess.run, [*nginx, "-s", "quit"], capture_output=True)


async def answers(url: str, method: str, times: int) -> list[tuple[int, str, object]]:
    found: list[tuple[int, str, object]] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(times):
            body = {"replicas": 2} if method == "POST" else None
            async with session.request(method, url, json=body) as response:
                text = await response.text()
                kind = response.headers.get("Content-Type", "").split(";")[0]
                found.append((response.status, kind, text))
    return found


async def test_a_write_no_node_takes_is_a_json_refusal_never_nginxs_error_page(
    tmp_path: Path, follower: str
) -> None:
    down = f"127.0.0.1:{free_port()}"  # the node that just stopped: nothing listens
    async with controller_lb(tmp_path / "lb", [follower, down]) as lb:
        # least_conn takes the two nodes in turn: some requests end on the follower, some on the
        # stopped node.
        found = await answers(f"{lb}/api/v1/apps/web/scale", "POST", 4)
    assert [(status, kind) for status, kind, _ in found] == [(503, "application/json")] * 4, found
    for _, _, text in found:
        assert text == '{"detail": "Not the leader. Leader is: node1"}' or text.startswith(
            '{"detail": "No node of the cluster took the request (tried '
        ), text


async def test_a_read_when_every_node_is_down_names_the_cluster_status_command(tmp_path: Path) -> None:
    nodes = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    async with controller_lb(tmp_path / "lb", nodes) as lb:
        found = await answers(f"{lb}/api/v1/apps", "GET", 1)
    status, kind, text = found[0]
    assert (status, kind) == (503, "application/json"), found
    assert "`orchestry cluster status` shows the nodes" in str(text)
    assert all(node in str(text) for node in nodes), text


async def test_reads_and_writes_still_reach_a_live_node(tmp_path: Path, follower: str) -> None:
    down = f"127.0.0.1:{free_port()}"
    async with controller_lb(tmp_path / "lb", [down, follower]) as lb:
        reads = await answers(f"{lb}/api/v1/apps", "GET", 4)
    assert [(status, text) for status, _, text in reads] == [(200, '{"apps": []}')] * 4
