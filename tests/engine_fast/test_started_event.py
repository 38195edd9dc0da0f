"""The "engine started" event a second controller on the same store writes says whom it follows and in
which term, in words: it used to read "(follower, term None)" in the events pane and `orchestry events`."""

from __future__ import annotations

from pathlib import Path

from tests.support.world import MemoryWorld, memory_world


async def test_a_follower_s_started_event_names_the_leader_and_term_not_none(
    world: MemoryWorld, tmp_path: Path
) -> None:
    leader = world.engine.node_id
    async with memory_world(tmp_path / "state", runtime=world.runtime, clock=world.clock) as second:
        follower = second.engine.node_id
        started = [
            e
            for e in second.engine.store.events.query(limit=50)
            if e.kind == "engine_started" and follower in e.message
        ]
    assert len(started) == 1
    message = started[0].message
    assert "None" not in message
    assert f"follower of {leader}, term 1" in message
