"""The console's refresh on the leader builds replica views only for the app it shows: every other app
comes as a summary (what the apps table shows), and after a switch the next frame carries the newly
selected app's replicas with their current CPU and memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.errors import Conflict
from core.models import AppSummary
from core.store import AppRecord
from orchestry_tui.console import engine_backend
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.formatting import app_row
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from tests.integration.harness import wait_for as until
from tests.support.world import MemoryWorld, app_document, unique_app


@pytest.fixture
async def backend(world: MemoryWorld) -> AsyncIterator[EngineBackend]:
    attached = EngineBackend(world.engine.settings, engine=world.engine, serve_api=False)
    await attached.start()
    try:
        yield attached
    finally:
        await attached.stop()


async def two_apps(world: MemoryWorld) -> tuple[str, str]:
    first, second = unique_app("a"), unique_app("b")
    for name, replicas in ((first, 2), (second, 3)):
        await world.engine.register(app_document(name, replicas=replicas))
        await world.engine.up(name)
    await world.ready(first, 2)
    await world.ready(second, 3)
    return first, second


async def measure(world: MemoryWorld, app: str, cpu: float) -> None:
    """Every replica of ``app`` uses ``cpu`` % of a core, and the collector samples once."""
    for container in world.runtime.running(app):
        world.runtime.set_usage(container.name, cpu_percent=cpu)
    await world.clock.advance(1.0)
    await world.engine.metrics.sample_once()


def counting_replica_reads(world: MemoryWorld, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The apps whose replicas' figures get read (once per replica view built), in order."""
    built: list[str] = []
    metrics = world.engine.metrics
    original = metrics.replica_metrics

    def replica_metrics(app: str, *args: Any, **kwargs: Any) -> Any:
        built.append(app)
        return original(app, *args, **kwargs)

    monkeypatch.setattr(metrics, "replica_metrics", replica_metrics)
    return built


async def test_the_apps_table_shows_every_app_and_only_the_selected_one_has_replicas(
    world: MemoryWorld, backend: EngineBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await two_apps(world)
    built = counting_replica_reads(world, monkeypatch)

    frame = await backend.frame(first, charts=False)

    assert built == [first], "replica views are built for the selected app only"
    apps = {a.name: a for a in frame.apps}
    assert set(apps) == {first, second}
    # The table's cells are what a full view gives: status, ready/desired, mode.
    full = {a.name: a for a in await world.engine.list_apps()}
    for name in (first, second):
        assert app_row(apps[name], None) == app_row(full[name], None)
    assert [str(c) for c in app_row(apps[second], None)[:4]] == [second, "running", "3/3", "manual"]
    assert [r.slot for r in apps[first].replicas] == [1, 2]
    assert isinstance(apps[second], AppSummary) and apps[second].replicas == []
    assert frame.summarised == frozenset({second})


async def test_after_a_switch_the_next_frame_shows_the_new_apps_current_figures(
    world: MemoryWorld, backend: EngineBackend
) -> None:
    first, second = await two_apps(world)
    await measure(world, second, 10.0)
    before = await backend.frame(first, charts=False)
    assert second in before.summarised

    await measure(world, second, 40.0)  # the figures move while the first app is shown
    after = await backend.frame(second, charts=False)

    shown = next(a for a in after.apps if a.name == second)
    assert second not in after.summarised and first in after.summarised
    assert [r.slot for r in shown.replicas] == [1, 2, 3]
    assert [r.cpu_percent for r in shown.replicas] == [40.0, 40.0, 40.0]


async def test_the_api_overview_still_carries_every_apps_replicas(world: MemoryWorld) -> None:
    first, second = await two_apps(world)
    overview = await world.engine.overview()
    assert {a.name: len(a.replicas) for a in overview.apps} == {first: 2, second: 3}
    assert not any(isinstance(a, AppSummary) for a in overview.apps)


async def test_the_console_switching_apps_shows_the_new_apps_replicas_with_current_figures(
    world: MemoryWorld, backend: EngineBackend
) -> None:
    first, second = sorted(await two_apps(world))  # the table lists them by name
    await measure(world, second, 40.0)
    app = OrchestryConsole(backend, poll_seconds=600.0)  # frames only when the console asks for one
    async with app.run_test(size=(160, 45)) as pilot:
        replicas = app.query_one("#replicas", KeyedTable)
        await until(lambda: app.frames_applied and replicas.row_count == 2, what="the first app's replicas")
        assert app.selected == first
        app.query_one("#apps", KeyedTable).focus()
        await pilot.press("down")
        await until(lambda: replicas.row_count == 3, what="the second app's replicas")
        assert app.selected == second
        assert [str(replicas.cell(f"{second}-{slot}", "cpu")) for slot in (1, 2, 3)] == ["40.0%"] * 3


async def test_the_leader_gives_an_apps_replicas_at_once_and_only_while_its_records_are_current(
    world: MemoryWorld,
) -> None:
    first, _second = await two_apps(world)
    await measure(world, first, 25.0)
    await world.engine.list_apps()  # the leader keeps the records it read
    view = world.engine.live_app(first)
    assert view is not None and [r.cpu_percent for r in view.replicas] == [25.0, 25.0]
    assert world.engine.live_app("nope") is None
    await world.engine.scale(first, 3)  # its own write: the kept records take the row it committed
    view = world.engine.live_app(first)
    assert view is not None and view.desired_replicas == 3
    with pytest.raises(Conflict):  # a write that failed: its row is not known until read again
        world.engine.store.apps.create(AppRecord(name=first, spec={}, raw={}, spec_hash=""))
    assert world.engine.live_app(first) is None


async def test_a_frame_is_the_engines_overview_built_in_steps_keeping_unchanged_summaries(
    world: MemoryWorld, backend: EngineBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh's frame shows what ``Engine.overview`` answers, but is built FRAME_SLICE apps at a
    time (the loop runs what came meanwhile, a key, between them) and an app's summary is built again
    only when its listing key moves (what the apps table shows of it changed)."""
    monkeypatch.setattr(engine_backend, "FRAME_SLICE", 1)
    first, second = await two_apps(world)
    await measure(world, second, 30.0)
    summarised: list[str] = []
    steps: list[str] = []
    views = world.engine._c.views
    summary = views._summary

    def counted(record: AppRecord) -> Any:
        summarised.append(record.name)
        loop.call_soon(lambda: steps.append("loop") if steps and steps[-1] != "loop" else None)
        steps.append(record.name)
        return summary(record)

    loop = asyncio.get_running_loop()
    overview = await world.engine.overview(detail=[first])
    monkeypatch.setattr(views, "_summary", counted)
    frame = await backend.frame(first, charts=False)
    assert [vars(a) for a in frame.apps] == [vars(a) for a in overview.apps]
    assert {n: app_row(a, frame.figures[n]) for n, a in ((a.name, a) for a in frame.apps)} == {
        a.name: app_row(a, overview.figures[a.name]) for a in overview.apps
    }
    assert summarised == [second] and steps == [second, "loop"]

    summarised.clear()
    await measure(world, second, 35.0)  # figures move: the summary holds, the figures are new
    frame = await backend.frame(first, charts=False)
    assert summarised == []
    assert str(app_row(frame.apps[1], frame.figures[second])[6]) == "32.5%"  # the mean of 30 and 35
    await world.engine.scale(second, 2)  # what the table shows of it moved: summarised again
    frame = await backend.frame(first, charts=False)
    assert summarised == [second] and frame.apps[1].desired_replicas == 2
