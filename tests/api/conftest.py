"""An aiohttp test server in front of a real Engine (real Docker, nginx, tmp SQLite store)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from core.engine import Engine
from core.lb.nginx import running_master
from tests.integration.harness import engine_settings, wait_for

TOKEN = "api-test-token-7c1f0e"


def stop_nginx_left_serving(state_dir: Path) -> None:
    """An engine stopped without ``stop_apps`` leaves its nginx serving (by design); tests end it."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((state_dir / "nginx" / "nginx.pid").read_text().strip())
        os.kill(pid, signal.SIGQUIT)


async def stop_leaving_nothing_serving(engine: Engine) -> None:
    """``engine.stop(stop_apps=True)``, then what its user would notice: no nginx left on its state dir
    and the load-balancer port refusing connections (the fuzzer's engine once left both)."""
    state_dir, lb_listen = engine.settings.state_dir, engine.settings.lb_listen
    await engine.stop(stop_apps=True)
    try:
        assert running_master(state_dir / "nginx") is None, "engine.stop(stop_apps=True) left nginx serving"
        host, port = lb_listen.rsplit(":", 1)
        with pytest.raises(OSError):
            _reader, writer = await asyncio.open_connection(host, int(port))
            writer.close()
    finally:
        stop_nginx_left_serving(state_dir)


async def started_engine(state_dir: Path, database_url: str | None = None) -> Engine:
    engine = Engine(engine_settings(state_dir, database_url))
    await engine.start()
    return engine


@asynccontextmanager
async def leading_api(
    tmp_path: Path, database_url: str | None = None
) -> AsyncIterator[tuple[Engine, TestServer]]:
    """A lone engine on ``database_url`` that leads, serving the API on a started test server; afterwards
    the server is closed and the engine stopped leaving nothing serving. For tests that send blocking
    requests from a worker thread (the fuzzers) and for those that choose their store."""
    engine = await started_engine(tmp_path / "state", database_url)
    server = TestServer(create_app(engine, engine.node_id))
    try:
        await wait_for(lambda: engine.cluster.is_leader(), timeout=20, what="the lone node to lead")
        await server.start_server()
        yield engine, server
    finally:
        await server.close()
        await stop_leaving_nothing_serving(engine)


@pytest.fixture
async def api_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    engine = await started_engine(tmp_path / "state")
    try:
        await wait_for(lambda: engine.cluster.is_leader(), timeout=20, what="the lone node to lead")
        yield engine
    finally:
        await stop_leaving_nothing_serving(engine)


@pytest.fixture
async def api(api_engine: Engine) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(api_engine, api_engine.settings.node_id)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def token_api(api_engine: Engine) -> AsyncIterator[TestClient]:
    app = create_app(api_engine, api_engine.settings.node_id, require_token=True, api_token=TOKEN)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def follower(api_engine: Engine, tmp_path: Path) -> AsyncIterator[Engine]:
    """A second engine on the leader's store, following it."""
    engine = await started_engine(tmp_path / "follower", api_engine.settings.database_url)
    try:
        await wait_for(
            lambda: engine.cluster.leader_id == api_engine.node_id, timeout=20, what="the follower"
        )
        yield engine
    finally:
        await engine.stop()
        stop_nginx_left_serving(tmp_path / "follower")
