"""An API port another process holds: the error names the holder and a free port, and this node
advertises no API address instead of the holder's (the cluster pane listed the holder's URL as its own)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import presence
from core.api.app import start_site
from tests.support.world import memory_world


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port this test process listens on, as another daemon would."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


async def test_a_taken_port_names_its_holder_and_a_free_port(tmp_path: Path, held_port: int) -> None:
    async with memory_world(tmp_path / "state", port=held_port) as world:
        with pytest.raises(OSError) as caught:
            await start_site(world.engine, "127.0.0.1", held_port, world.engine.node_id, None)
    reason = caught.value.strerror or ""
    assert reason.startswith(f"held by pid {os.getpid()} ("), reason
    free = int(reason.rsplit("; port ", 1)[1].removesuffix(" is free"))
    assert free > held_port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", free))  # the suggestion really is free


async def test_a_node_without_its_api_advertises_no_address(tmp_path: Path, held_port: int) -> None:
    taken_url = f"http://127.0.0.1:{held_port}"
    async with memory_world(tmp_path / "state", port=held_port) as world:
        engine = world.engine
        with pytest.raises(OSError):
            await start_site(engine, "127.0.0.1", held_port, engine.node_id, None)
        overview = await engine.cluster_overview()
        status = await engine.cluster_status()
    own = [n for n in overview["nodes"] if n["node_id"] == engine.node_id]
    assert [n["api_url"] for n in own] == [""], overview["nodes"]
    assert status["api_url"] == "" and status["lease"]["api_url"] == ""
    assert taken_url not in str(overview) + str(status)


async def test_stop_names_a_controller_without_its_api_as_such(tmp_path: Path, held_port: int) -> None:
    """`orchestry stop` names the processes on a state dir from their presence files: it gave the
    holder's URL as this one's API, then "API )" once the address was withdrawn."""
    async with memory_world(tmp_path / "state", port=held_port) as world:
        engine = world.engine
        with pytest.raises(OSError):
            await start_site(engine, "127.0.0.1", held_port, engine.node_id, None)
        named = [c.describe() for c in presence.live_controllers(engine.settings.state_dir)]
    who = f"a process embedding the engine pid {os.getpid()}"
    assert named == [f"{who} (node {engine.node_id}, no API: its port was taken)"]
