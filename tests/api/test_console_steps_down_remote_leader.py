"""A console that follows asks the leader over its API to step down (the console's step-down key)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from core.engine import Engine
from core.errors import OrchestryError
from orchestry_tui.console.engine_backend import EngineBackend
from tests.integration.harness import wait_for


async def test_a_following_console_steps_the_leader_down_through_its_api(
    api_engine: Engine, follower: Engine
) -> None:
    server = TestClient(TestServer(create_app(api_engine, api_engine.node_id)))
    await server.start_server()
    try:
        await api_engine.advertise_api(str(server.make_url("")).rstrip("/"))
        await wait_for(
            lambda: (
                (follower.leadership().lease or None) is not None
                and follower.leadership().lease.api_url == str(server.make_url("")).rstrip("/")
            ),
            timeout=20,
            what="the follower to see the leader's API address",
        )
        backend = EngineBackend(follower.settings, engine=follower, serve_api=False)
        said = await backend.step_down()
        assert said == f"{api_engine.node_id} released its lease: a peer takes over"
        await wait_for(lambda: not api_engine.cluster.is_leader(), timeout=20, what="the leader to step down")
    finally:
        await server.close()


async def test_a_leader_that_does_not_answer_is_named(api_engine: Engine, follower: Engine) -> None:
    await api_engine.advertise_api("http://127.0.0.1:9")  # nothing listens on the discard port
    await wait_for(
        lambda: (
            follower.leadership().lease is not None
            and follower.leadership().lease.api_url == "http://127.0.0.1:9"
        ),
        timeout=20,
        what="the follower to see the leader's API address",
    )
    backend = EngineBackend(follower.settings, engine=follower, serve_api=False)
    with pytest.raises(
        OrchestryError, match=f"the leader {api_engine.node_id} at http://127.0.0.1:9 did not answer"
    ):
        await backend.step_down()
    assert api_engine.cluster.is_leader()
