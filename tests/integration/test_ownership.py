"""Two Orchestry installations on one Docker engine never touch each other's containers."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine import Engine
from core.errors import AppBlocked
from core.runtime.base import LABEL_CLUSTER
from tests.conftest import unique_name
from tests.integration.harness import demo_app, engine_settings, get_text, lb, ready_is, wait_for


async def test_a_second_installation_leaves_the_first_ones_replicas_alone(tmp_path: Path) -> None:
    first = Engine(engine_settings(tmp_path / "first"))
    second = Engine(engine_settings(tmp_path / "second"))
    await first.start()
    await second.start()
    name = unique_name("own")
    try:
        assert first.runtime.cluster_id != second.runtime.cluster_id
        await first.register(demo_app(name))
        await first.up(name)
        await first.scale(name, 2)
        await wait_for(lambda: ready_is(first, name, 2), what="2 ready on the first installation")
        before = {c.id: c.labels[LABEL_CLUSTER] for c in await first.runtime.list_managed(name)}
        assert set(before.values()) == {first.runtime.cluster_id}

        # The same app name in another installation: it sees none of the first one's containers and
        # says why it cannot start its own, instead of adopting or replacing them.
        assert await second.runtime.list_managed(name) == []
        await second.register(demo_app(name))
        with pytest.raises(AppBlocked) as blocked:
            await second.up(name)
        assert f"a container named '{name}-1' belongs to another Orchestry installation" in str(blocked.value)
        assert "choose another app name" in str(blocked.value)
        await second.delete(name)

        after = {c.id: c.labels[LABEL_CLUSTER] for c in await first.runtime.list_managed(name)}
        assert after == before, "the first installation's replicas were neither replaced nor removed"
        status, body = await get_text(lb(first, name))
        assert status == 200 and name in body
    finally:
        await second.stop(stop_apps=True)
        await first.stop(stop_apps=True)


async def test_containers_from_before_cluster_ids_are_adopted(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path / "state")
    name = unique_name("legacy")
    engine = Engine(settings)
    await engine.start()
    try:
        await engine.register(demo_app(name))
        engine.runtime.cluster_id = None  # what an Orchestry without cluster ids created
        await engine.up(name)
        await wait_for(lambda: ready_is(engine, name, 1), what="1 ready")
        [unlabelled] = await engine.runtime.list_managed(name)
        assert LABEL_CLUSTER not in unlabelled.labels
    finally:
        await engine.stop()  # leaves the replica running, as an upgrade would find it
    upgraded = Engine(settings.model_copy())
    await upgraded.start()
    try:
        assert upgraded.runtime.cluster_id is not None
        await wait_for(lambda: ready_is(upgraded, name, 1), what="the old replica adopted")
        assert [c.id for c in await upgraded.runtime.list_managed(name)] == [unlabelled.id]
    finally:
        await upgraded.stop(stop_apps=True)
