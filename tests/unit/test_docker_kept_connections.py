"""A stopping dockerd removes its socket at once and keeps answering on the connections it already
has for as long as it takes to stop its containers (seconds; 1,684 calls answered in 6.2 s measured on
a private dockerd 20.10).  The runtime must not take those answers for Docker being back: once a call
finds the engine unreachable, later calls connect afresh and fail the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import RuntimeUnavailable
from core.runtime.docker import DockerRuntime
from tests.support.fake_dockerd import FakeDockerd, fake_dockerd


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeDockerd]:
    with fake_dockerd(str(tmp_path / "docker.sock")) as server:
        yield server


async def test_a_stopping_engine_is_not_reported_back_through_a_connection_kept_from_before(
    engine: FakeDockerd,
) -> None:
    runtime = DockerRuntime(f"unix://{engine.server_address}")
    try:
        assert await runtime.list_managed() == []  # a connection is kept
        # A listing holds that connection while the engine stops listening: a ping needs a new one.
        engine.hold_listing.clear()
        engine.listing_started.clear()
        listing = asyncio.ensure_future(runtime.list_managed())
        assert await asyncio.to_thread(engine.listing_started.wait, 10)
        engine.stop_listening()
        with pytest.raises(RuntimeUnavailable, match="does not answer"):
            await runtime.ping()
        engine.hold_listing.set()
        assert await listing == []  # sent before the engine went away: its answer stands
        # Every call from now on: the engine does not answer, not "it answers" over the kept one.
        for _ in range(3):
            with pytest.raises(RuntimeUnavailable, match="does not answer"):
                await runtime.list_managed()
    finally:
        await runtime.close()


async def test_a_ping_connects_afresh_so_an_idle_kept_connection_does_not_hide_a_stopping_engine(
    engine: FakeDockerd,
) -> None:
    """No call has failed yet: every pooled call would go over the kept connection and be answered,
    so the ping itself must find that the engine no longer takes new ones (the reconciler asks it
    before it counts a replica's exit as a crash)."""
    runtime = DockerRuntime(f"unix://{engine.server_address}")
    try:
        await runtime.ping()
        assert await runtime.list_managed() == []  # the connection is kept, idle
        engine.stop_listening()
        with pytest.raises(RuntimeUnavailable, match="No such file or directory"):
            await runtime.ping()
        with pytest.raises(RuntimeUnavailable, match="does not answer"):
            await runtime.list_managed()  # the pool closed with the failed ping
    finally:
        await runtime.close()
