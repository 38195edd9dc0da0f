"""The controller LB (templates/controller-lb.conf.j2, real nginx) when no node takes a request.

During a handover or an election a write is refused by every live node and the node that just
stopped refuses connections. When nginx happened to try that node last, the client got nginx's own
"502 Bad Gateway" HTML page (seen on a three-daemon trial while the leader stopped), which the CLI
could only quote; a follower's refusal on the same request was JSON naming what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from orchestry_tui.client.http import default_timeout
from scripts.controller_lb import render_controller_config, write_timeout
from testkit.harness import free_port
from tests.cli.conftest import ORCHESTRY

REFUSAL = {"detail": "Not the leader. Leader is: node1"}


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` as an API node on a free port: its HOST:PORT."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


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
    async with serving(app) as address:
        yield address


@contextlib.asynccontextmanager
async def controller_lb(prefix: Path, nodes: list[str], lease_ttl: int = 30) -> AsyncIterator[str]:
    listen = f"127.0.0.1:{free_port()}"
    (prefix / "temp").mkdir(parents=True)
    config = prefix / "nginx.conf"
    config.write_text(
        render_controller_config(listen=listen, nodes=nodes, prefix=prefix, lease_ttl=lease_ttl)
    )
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


@pytest.fixture
def frozen() -> Iterator[str]:
    """A node frozen by SIGSTOP: the kernel still completes connections and takes the request, nobody
    answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
async def leader() -> AsyncIterator[tuple[str, list[str]]]:
    """A node that carries out every write it gets, and the list of the writes it got."""
    writes: list[str] = []

    async def write(request: web.Request) -> web.Response:
        writes.append(request.path)
        return web.json_response({"status": "scaled", "app": "web", "replicas": 2})

    app = web.Application()
    app.router.add_post("/api/v1/apps/web/scale", write)
    async with serving(app) as address:
        yield address, writes


async def test_a_write_to_a_frozen_node_is_answered_after_the_lease_ttl_and_never_resent(
    tmp_path: Path, frozen: str, leader: tuple[str, list[str]]
) -> None:
    """It waited 300 s at the LB (the CLI gave up at 60 s saying nothing of the LB), then nginx resent it
    to the next node (proxy_next_upstream timeout), which could apply it a second time."""
    live, writes = leader
    answered: list[tuple[int, str, str]] = []
    async with controller_lb(tmp_path / "lb", [frozen, live], lease_ttl=3) as lb:
        # least_conn takes the two nodes in turn: within three writes one is sent to the frozen node.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            for _ in range(3):
                async with session.post(f"{lb}/api/v1/apps/web/scale", json={"replicas": 2}) as r:
                    answered.append((r.status, r.headers.get("Content-Type", ""), await r.text()))
                if r.status != 200:
                    break
    status, kind, text = answered[-1]
    assert (status, kind.split(";")[0]) == (503, "application/json"), answered
    detail = json.loads(text)["detail"]
    assert detail.startswith(f"The node that took this write did not answer within {write_timeout(3)} s")
    assert frozen in detail
    assert "the write may or may not have been carried out, and it was not resent to another node" in detail
    assert "`orchestry status NAME`" in detail
    # Only the writes the live node answered reached it: the unanswered one was not sent on to it.
    assert len(writes) == len(answered) - 1


async def test_the_cli_behind_the_lb_says_the_write_may_not_have_happened(
    tmp_path: Path, frozen: str
) -> None:
    """`orchestry scale` through the controller LB to a frozen leader: the LB's 503 reaches the user
    (the CLI waits a little longer than the LB, both sized on the lease TTL), exit 1, no traceback."""
    async with controller_lb(tmp_path / "lb", [frozen], lease_ttl=3) as lb:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}  # PYTHONPATH kept
        env.update({"HOME": str(tmp_path), "ORCHESTRY_URL": lb, "LEADER_LEASE_TTL": "3"})
        scale = [ORCHESTRY, "scale", "web", "2"]
        result = await asyncio.to_thread(
            subprocess.run, scale, capture_output=True, text=True, env=env, timeout=60
        )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"error: The node that took this write did not answer within {write_timeout(3)} s "
        f"(the last of {frozen}"
    ), result.stderr
    assert "`orchestry status NAME`" in result.stderr and "Traceback" not in result.stderr


def test_the_cli_waits_a_little_longer_than_the_lb_for_the_lease_ttl_it_is_given() -> None:
    assert default_timeout({}) == write_timeout(30) + 5  # 60 s before: past the user's patience
    assert default_timeout({"LEADER_LEASE_TTL": "10"}) == write_timeout(10) + 5
    assert default_timeout({"ORCHESTRY_LEASE_TTL": "3"}) == write_timeout(3) + 5
    assert default_timeout({"LEADER_LEASE_TTL": "soon"}) == write_timeout(30) + 5
