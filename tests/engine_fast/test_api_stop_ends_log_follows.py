"""Stopping the API ends the log follows it serves: quitting a console that a `--connect` console or
`orchestry logs -f` reads from took 124 s (aiohttp waits 60 s for each open request to finish, then
60 s more for a cancelled one), with "stopping the engine" on screen all along."""

from __future__ import annotations

import asyncio

import aiohttp

from core.api.app import start_site
from testkit.harness import free_port
from tests.support.world import MemoryWorld, app_document, unique_app

# Far below aiohttp's own 60 s wait for an open request: what the user waited on before.
WAIT_SECONDS = 20.0


async def test_stopping_the_api_ends_an_open_log_follow_at_once(world: MemoryWorld) -> None:
    name = unique_app("follow")
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    port = free_port()
    runner, _site = await start_site(world.engine, "127.0.0.1", port, "node-a", None)
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/api/v1/apps/{name}/logs?follow=true&tail=0"
        async with session.get(url) as response:
            assert response.status == 200
            async with asyncio.timeout(WAIT_SECONDS):
                while True:  # the stream is open once a line logged now arrives
                    world.runtime.log(f"{name}-1", "hello")
                    try:
                        async with asyncio.timeout(0.2):
                            line = await response.content.readline()
                    except TimeoutError:
                        continue
                    assert b"hello" in line
                    break
            async with asyncio.timeout(WAIT_SECONDS):
                await runner.cleanup()
                rest = await response.content.read()  # the stream ends cleanly, not cut off
            assert response.content.at_eof(), rest
