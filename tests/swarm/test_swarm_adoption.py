"""Ownership on the Swarm lab: a restarted controller adopts its services unchanged, and two Orchestry
installations on one Swarm never touch each other's services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.errors import AppBlocked
from tests.integration.harness import wait_for
from tests.swarm.engine_support import app_name, replicas_answering, services_of, swarm_app, swarm_engine


async def _ready(engine: Any, name: str, n: int) -> bool:
    view = await engine.get_app(name)
    return view.ready_replicas == n and len(view.replicas) == n


async def _replica_ids(engine: Any, name: str) -> set[str]:
    return {r.container_id for r in (await engine.get_app(name)).replicas}


async def test_a_restarted_controller_adopts_the_services_unchanged(swarm_lab: Any, tmp_path: Path) -> None:
    name = app_name("ad")
    state = tmp_path / "state"
    async with swarm_engine(swarm_lab, state, stop_apps=False) as first:
        await first.register(swarm_app(swarm_lab, name))
        await first.up(name)
        await first.scale(name, 3)
        await wait_for(lambda: _ready(first, name, 3), timeout=90, what="3 replicas ready")
        before_ids = await _replica_ids(first, name)
    services_before = services_of(swarm_lab, name)
    assert len(services_before) == 3

    async with swarm_engine(swarm_lab, state) as second:
        await wait_for(lambda: _ready(second, name, 3), timeout=60, what="3 adopted replicas ready")
        assert await _replica_ids(second, name) == before_ids
        assert services_of(swarm_lab, name) == services_before  # nothing recreated, nothing added
        answered = await replicas_answering(second, name)
        assert len(answered) == 3, answered
        adopted = [e for e in await second.events(app=name) if e.kind == "replicas_adopted"]
        assert adopted, "the second controller did not say it adopted the replicas"
        # Their logs come through the manager from whichever node runs each task. All of them: each
        # replica logs every health probe (two controllers' worth), so on a loaded host the last 20
        # lines across three replicas no longer reached back to the first one's start line. Asked
        # again until each replica's are there, as its user would: the manager hands over a task's
        # logs within TASK_LOGS_TIMEOUT_SECONDS or that replica's are left out of the answer, and on
        # a loaded host replica 1's (the longest) were (once in one run here at load 13, beside a CPU burner).
        want = {f"{name}-{slot}" for slot in (1, 2, 3)}

        async def every_start_line() -> set[str] | None:
            lines = await second.logs(name, tail=None)
            started = {line.replica for line in lines if "orchestry demo: replica=" in line.message}
            return started if started == want else None

        await wait_for(every_start_line, timeout=60, what=f"the start line of each of {sorted(want)}")


async def test_two_installations_on_one_swarm_never_touch_each_others_services(
    swarm_lab: Any, tmp_path: Path
) -> None:
    name = app_name("own")
    async with swarm_engine(swarm_lab, tmp_path / "a") as first:
        await first.register(swarm_app(swarm_lab, name))
        await first.up(name)
        await first.scale(name, 2)
        await wait_for(lambda: _ready(first, name, 2), timeout=90, what="2 replicas ready")
        services = services_of(swarm_lab, name)
        ids = await _replica_ids(first, name)

        # A second installation (its own store, hence its own cluster id) on the same Swarm.
        async with swarm_engine(swarm_lab, tmp_path / "b") as second:
            await second.register(swarm_app(swarm_lab, name))
            with pytest.raises(AppBlocked) as refused:
                await second.up(name)
            assert "belongs to another Orchestry installation" in str(refused.value)
            assert (await second.get_app(name)).replicas == []
            await second.delete(name)
        # The second one's up, its failed start and its delete changed nothing of the first's.
        assert services_of(swarm_lab, name) == services
        assert await _replica_ids(first, name) == ids
        assert await _ready(first, name, 2)
