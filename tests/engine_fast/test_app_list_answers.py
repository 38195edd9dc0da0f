"""The app lists (GET /apps, GET /api/v1/apps) are kept encoded between requests on the leader: every
answer must still be exactly what building it afresh gives, through every change a user can make or
a replica can suffer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.api import wire
from core.api.app import create_app
from core.api.context import redacted_dumps
from core.redaction import default_redactor
from core.store import Store
from tests.support.world import MemoryWorld, app_document, memory_world, unique_app


async def fresh(world: MemoryWorld) -> dict[str, Any]:
    """Both lists as the full path builds them now."""
    apps = await world.engine.list_apps()
    return {
        "/apps": wire.LegacyAppList(apps=[wire.LegacyAppSummary.of(a) for a in apps]).model_dump(mode="json"),
        "/api/v1/apps": wire.AppList(apps=[wire.AppSummary.of(a) for a in apps]).model_dump(mode="json"),
    }


def saving(world: MemoryWorld) -> bool:
    """A status save is still under way (StatusRecorder saves each app's newest status in a task)."""
    return any(
        state.status_saver is not None and not state.status_saver.done()
        for state in world.engine.reconciler.apps.values()
    )


async def settled(world: MemoryWorld) -> dict[str, Any]:
    """``fresh`` once the store writes a pass left running in threads (a saved status) have landed
    (the fake clock stands still, so nothing else moves)."""
    for _ in range(100):
        for _ in range(500):  # real time only: advancing the fake clock would change the lists
            if not saving(world):
                break
            await asyncio.sleep(0.01)
        before = await fresh(world)
        await asyncio.sleep(0.02)
        after = await fresh(world)
        if before == after:
            return after
    raise AssertionError("the app lists never settled")


def encoded(body: dict[str, Any]) -> bytes:
    """The bytes the full path sends for ``body`` (key order and separators included)."""
    return redacted_dumps(body).encode()


async def assert_lists_current(world: MemoryWorld, api: TestClient) -> dict[str, Any]:
    expected = await settled(world)
    for _ in range(2):  # the second answer comes from what the first kept
        for path, body in expected.items():
            response = await api.get(path)
            assert response.status == 200
            assert response.content_type == "application/json" and response.charset == "utf-8"
            answer = await response.read()
            if answer != encoded(body):
                # A status save still in a store thread on a loaded host may land during the request:
                # then the answer must be the state after it.
                now = (await fresh(world))[path]
                assert answer == encoded(now), f"{path}: answered {answer!r}\nbefore {body}\nafter {now}"
    return expected


def summary(lists: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in lists["/api/v1/apps"]["apps"] if a["name"] == name)


async def test_app_lists_follow_every_change(world: MemoryWorld, api: TestClient) -> None:
    engine = world.engine
    assert (await assert_lists_current(world, api))["/apps"] == {"apps": []}
    name = unique_app()
    await engine.register(app_document(name, replicas=2))
    assert summary(await assert_lists_current(world, api), name)["ready_replicas"] == 0
    await engine.up(name)
    await world.ready(name, 2)
    lists = await assert_lists_current(world, api)
    assert summary(lists, name)["ready_replicas"] == 2 and summary(lists, name)["status"] == "running"

    # A replica starts failing its probe, and so does every replacement.
    world.runtime.on_create = lambda container: setattr(container, "healthy", False)
    world.runtime.set_health(f"{name}-1", healthy=False)
    await world.settle(lambda: len(world.nginx.servers(name)) == 1, "the failing replica unrouted")
    lists = await assert_lists_current(world, api)
    assert summary(lists, name)["ready_replicas"] == 1 and summary(lists, name)["status"] == "degraded"

    world.runtime.on_create = None
    for container in world.runtime.running(name):
        world.runtime.set_health(container.name, healthy=True)
    await world.ready(name, 2)
    await engine.scale(name, 3)
    await world.ready(name, 3)
    lists = await assert_lists_current(world, api)
    assert summary(lists, name)["desired_replicas"] == 3 and summary(lists, name)["ready_replicas"] == 3

    other = unique_app()
    await engine.register(app_document(other, replicas=1))
    lists = await assert_lists_current(world, api)
    assert {a["name"] for a in lists["/apps"]["apps"]} == {name, other}

    await engine.down(name)
    await world.settle(lambda: not world.runtime.running(name), "the app's replicas stopped")
    assert summary(await assert_lists_current(world, api), name)["status"] == "stopped"
    await engine.delete(name)
    lists = await assert_lists_current(world, api)
    assert [a["name"] for a in lists["/apps"]["apps"]] == [other]


async def test_a_back_off_countdown_in_the_list_follows_the_clock(
    world: MemoryWorld, api: TestClient
) -> None:
    """The status reason counts a crashed replica's back-off down while nothing is written anywhere."""
    name = unique_app()
    world.runtime.on_create = lambda container: setattr(container, "listening", False)  # never healthy
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    reconciler = world.engine.reconciler
    for crash in range(1, 4):  # the third crash waits 2 s, then 4 s
        old = world.container(name, 1).id
        world.runtime.crash(f"{name}-1", exit_code=1)
        await reconciler.reconcile_now(name)
        if crash < 3:
            await world.settle(
                lambda old=old: any(c.id != old for c in world.runtime.running(name)), f"recreated {crash}"
            )
    reasons = []
    for _ in range(2):
        reasons.append(summary(await assert_lists_current(world, api), name)["status_reason"])
        await world.clock.advance(1.0)
    assert "next attempt in 2 s" in reasons[0] and "next attempt in 1 s" in reasons[1], reasons


async def test_clients_that_ask_together_after_a_change_all_get_the_new_list(
    world: MemoryWorld, api: TestClient
) -> None:
    names = [unique_app() for _ in range(3)]
    for name in names:
        await world.engine.register(app_document(name, replicas=1))
        await assert_lists_current(world, api)  # kept before the next change
    await world.engine.scale(names[1], 4)
    expected = await settled(world)
    for path, body in expected.items():
        answers = await asyncio.gather(*(api.get(path) for _ in range(8)))
        assert [await a.json() for a in answers] == [body] * 8, path


async def test_one_app_changing_among_many_changes_only_its_entry(
    world: MemoryWorld, api: TestClient
) -> None:
    """Entries are kept per app: after one app scales, the others' entries are the same bytes as before
    and the whole answer is still what the full path builds."""
    names = sorted(unique_app() for _ in range(4))
    for name in names:
        await world.engine.register(app_document(name, replicas=1))
    before = await assert_lists_current(world, api)
    await world.engine.scale(names[2], 3)
    after = await assert_lists_current(world, api)
    for path in before:
        changed = [
            b["name"] for b, a in zip(before[path]["apps"], after[path]["apps"], strict=True) if a != b
        ]
        assert changed == [names[2]], path
    assert summary(after, names[2])["desired_replicas"] == 3


async def test_a_secret_registered_later_is_masked_in_the_kept_list(
    world: MemoryWorld, api: TestClient
) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1, env={"GREETING": "open-sesame-42"}))
    await assert_lists_current(world, api)
    for path in ("/apps", "/api/v1/apps"):
        assert (b"open-sesame-42" in await (await api.get(path)).read()) == (path == "/apps")
    await world.engine.set_secret(unique_app("s"), {"password": "open-sesame-42"})
    await assert_lists_current(world, api)  # byte for byte what the full path masks
    answer = await (await api.get("/apps")).read()
    assert b"open-sesame-42" not in answer and b"***" in answer


async def test_the_leader_reads_app_records_only_after_something_wrote_them(
    world: MemoryWorld, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polling the lists and the scaling loop's passes do not wait on the store while nothing changed."""
    engine = world.engine
    name = unique_app()
    await engine.register(app_document(name, replicas=1, mode="auto"))
    await engine.up(name)
    await world.ready(name, 1)
    await assert_lists_current(world, api)
    lists, gets = [], []
    real_list, real_get = engine.store.apps.list, engine.store.apps.get
    monkeypatch.setattr(engine.store.apps, "list", lambda: lists.append(1) or real_list())
    monkeypatch.setattr(engine.store.apps, "get", lambda app: gets.append(app) or real_get(app))
    for _ in range(3):
        assert (await api.get("/apps")).status == 200
        assert (await api.get("/api/v1/apps")).status == 200
        await engine.scaling.evaluate_all()
    assert lists == [] and gets == []
    await engine.scale(name, 2)
    await engine.scaling.evaluate_all()
    # Nothing read at all: the scale checks the kept record, and its write is spliced into them.
    assert lists == [] and gets == []
    assert engine.scaling.last_decision[name][1].current == 2  # the loop decided on the new count
    assert summary(await assert_lists_current(world, api), name)["desired_replicas"] == 2


async def test_another_nodes_write_shows_after_this_node_leads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another node may write apps while it holds the lease: when this node takes a new term, its
    lists and its scaling loop read the store again instead of keeping what they read before."""
    async with memory_world(tmp_path / "state", lease_ttl=3) as world:
        engine = world.engine
        client = TestClient(TestServer(create_app(engine, engine.node_id)))
        await client.start_server()
        try:
            name = unique_app()
            await engine.register(app_document(name, replicas=1, mode="auto"))
            await engine.up(name)
            await world.ready(name, 1)
            await engine.scaling.evaluate_all()
            assert engine.scaling.last_decision[name][1].current == 1
            assert summary(await assert_lists_current(world, client), name)["desired_replicas"] == 1
            term = engine.cluster.term
            await engine.release_leadership()
            # Another node's write while this one follows: its own store object, its own connection.
            other = await asyncio.to_thread(Store.open, engine.settings.database_url)
            try:
                await asyncio.to_thread(other.apps.scale, name, 4, "another node")
            finally:
                await asyncio.to_thread(other.database.dispose)
            for _ in range(200):  # alone, this node takes the next term after its hold-off (~2 s)
                if engine.cluster.is_leader() and engine.cluster.term != term:
                    break
                await asyncio.sleep(0.05)
            assert engine.cluster.is_leader() and engine.cluster.term != term
            await world.ready(name, 4)  # the new term's reconciler follows the other node's count
            assert summary(await assert_lists_current(world, client), name)["desired_replicas"] == 4
            await engine.scaling.evaluate_all()
            assert engine.scaling.last_decision[name][1].current == 4
        finally:
            await client.close()


@pytest.mark.parametrize(
    "secret",
    [
        '0}, {"name',  # spans two entries of /apps: only masking the whole list at once finds it
        '": [{"name": "',  # spans the list's opening and the first entry
        "apps",  # inside the text around the entries
    ],
)
async def test_secrets_are_masked_as_in_the_whole_list_even_across_entries(
    world: MemoryWorld, api: TestClient, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The redactor is process-wide and only grows: these values would mask other tests' answers.
    monkeypatch.setattr(default_redactor, "_values", set(default_redactor._values))
    monkeypatch.setattr(default_redactor, "_pattern", default_redactor._pattern)
    for _ in range(3):
        await world.engine.register(app_document(unique_app(), replicas=1))
    await assert_lists_current(world, api)
    await world.engine.set_secret(unique_app("s"), {"password": secret})
    await assert_lists_current(world, api)  # byte for byte what masking the whole answer gives
    assert secret.encode() not in await (await api.get("/apps")).read()
    await world.engine.register(app_document(unique_app(), replicas=1))  # one entry re-encoded
    await assert_lists_current(world, api)
