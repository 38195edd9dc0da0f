"""Adoption after a controller restart, many apps on one listener, rolling updates, clear errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.engine import Engine
from core.errors import AppBlocked, SpecError
from core.runtime.docker import DockerRuntime
from testkit.harness import free_port
from tests.conftest import unique_name
from tests.integration.harness import (
    TrafficClient,
    demo_app,
    engine_settings,
    get_text,
    lb,
    ready_count,
    ready_is,
    wait_for,
)


async def test_controller_restart_adopts_replicas_without_interrupting_traffic(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path / "state")
    first = Engine(settings)
    await first.start()
    name = unique_name("adopt")
    second: Engine | None = None
    try:
        await first.register(demo_app(name))
        await first.up(name)
        await first.scale(name, 3)
        await wait_for(lambda: ready_is(first, name, 3), what="3 ready")
        before = sorted(c.id for c in await first.runtime.list_managed(name))
        async with TrafficClient(lb(first, name), concurrency=2, label="controller restart") as client:
            await asyncio.sleep(0.3)
            await first.stop()  # containers keep running, nginx keeps serving
            await asyncio.sleep(0.5)
            second = Engine(settings)
            await second.start()
            await wait_for(lambda: ready_is(second, name, 3), what="3 adopted replicas ready")
            await asyncio.sleep(0.5)
        after = sorted(c.id for c in await second.runtime.list_managed(name))
        assert after == before, "a restarted controller must adopt, not recreate"
        client.assert_none_failed(at_least=20)
        adopted = [e for e in await second.events(app=name) if e.kind == "replicas_adopted"]
        assert adopted and "3 running replica" in adopted[0].message
    finally:
        if second is not None:
            await second.stop(stop_apps=True)
        else:
            await first.stop(stop_apps=True)


async def test_apps_share_one_listener_and_a_spec_change_rolls_without_errors(engine: Engine) -> None:
    names = [unique_name("a"), unique_name("b"), unique_name("roll")]
    for name in names:
        await engine.register(demo_app(name))
        await engine.up(name)
    rolling = names[2]
    await engine.scale(rolling, 2)
    for name in names:
        await wait_for(
            lambda name=name: ready_is(engine, name, 1 if name != rolling else 2), what=f"{name} ready"
        )
    for name in names[:2]:
        status, body = await get_text(lb(engine, name))
        assert status == 200 and name in body, body
    old_ids = {c.id for c in await engine.runtime.list_managed(rolling)}
    changed = demo_app(rolling)
    changed["spec"]["environment"] = [{"name": "GREETING", "value": "v2"}]
    async with TrafficClient(lb(engine, rolling), concurrency=3, label="rolling update") as client:
        await engine.register(changed)
        await wait_for(lambda: _rolled(engine, rolling, old_ids), timeout=60, what="all replicas replaced")
        await asyncio.sleep(0.5)
    client.assert_none_failed(at_least=50)


async def _rolled(engine: Engine, name: str, old_ids: set[str]) -> bool:
    now = {c.id for c in await engine.runtime.list_managed(name)}
    return not (now & old_ids) and len(now) == 2 and await ready_count(engine, name) == 2


@pytest.mark.parametrize("bad", ["../x", "a;b", "A B", "-lead", "x" * 64])
async def test_names_that_try_to_escape_are_rejected(engine: Engine, bad: str) -> None:
    with pytest.raises(SpecError) as err:
        await engine.register(demo_app(bad))
    assert "metadata.name" in str(err.value)
    assert await engine.list_apps() == []


async def test_missing_image_gives_one_error_and_no_retry_loop(engine: Engine) -> None:
    name = unique_name("noimg")
    doc = demo_app(name)
    doc["spec"]["image"] = "orchestry/does-not-exist:1"
    await engine.register(doc)
    with pytest.raises(AppBlocked) as err:
        await engine.up(name)
    assert "orchestry/does-not-exist:1" in str(err.value)
    await asyncio.sleep(3)
    view = await engine.get_app(name)
    assert view.status == "error" and "does-not-exist" in view.status_reason
    blocked = [e for e in await engine.events(app=name) if e.kind == "app_blocked"]
    assert len(blocked) == 1, "a missing image must be reported once, not retried in a loop"
    assert await engine.runtime.list_managed(name) == []


async def test_bad_command_is_reported_clearly(engine: Engine) -> None:
    name = unique_name("badcmd")
    doc = demo_app(name)
    doc["spec"]["command"] = ["/bin/does-not-exist"]
    await engine.register(doc)
    with pytest.raises(AppBlocked) as err:
        await engine.up(name)
    assert "does-not-exist" in str(err.value)
    assert (await engine.get_app(name)).status == "error"


async def test_port_clash_is_reported_once_with_the_reason(engine: Engine) -> None:
    name = unique_name("clash")
    doc = demo_app(name)
    # Every replica binds the same fixed port: the second cannot start. The port is one the kernel just
    # handed out, not a neighbour of the engine's own (CI found another process on port + 1).
    doc["spec"]["command"] = ["httpd", "-f", "-p", f"127.0.0.1:{free_port()}", "-h", "/www"]
    await engine.register(doc)
    await engine.up(name)
    await engine.scale(name, 2)
    view = await wait_for(lambda: _status_is(engine, name, "error"), timeout=30, what="error status")
    assert "Address already in use" in view.status_reason and f"{name}-2" in view.status_reason
    await asyncio.sleep(3)
    blocked = [e for e in await engine.events(app=name) if e.kind == "app_blocked"]
    assert len(blocked) == 1 and "Address already in use" in blocked[0].message
    assert len(await engine.runtime.list_managed(name)) <= 1, "the failing slot must not be retried in a loop"


async def _status_is(engine: Engine, name: str, status: str) -> object:
    view = await engine.get_app(name)
    return view if view.status == status else None


async def test_docker_unreachable_is_reported_and_health_stays_fast(tmp_path: Path) -> None:
    runtime = DockerRuntime("unix:///tmp/orchestry-no-such-docker.sock")
    eng = Engine(engine_settings(tmp_path / "state"), runtime=runtime)
    await eng.start()
    try:
        events = await eng.events(category="error")
        assert any("orchestry-no-such-docker.sock" in e.message for e in events), [e.message for e in events]
        health = await eng.health()  # how fast it answers: bench/responsiveness.py
        assert health["docker"]["status"] == "error"
        name = unique_name("nodock")
        await eng.register(demo_app(name))
        assert (await eng.get_app(name)).name == name
    finally:
        await eng.stop(stop_nginx=True)


async def test_nginx_config_failing_the_test_keeps_the_previous_config_serving(engine: Engine) -> None:
    name = unique_name("keep")
    await engine.register(demo_app(name))
    await engine.up(name)
    await wait_for(lambda: ready_count(engine, name), what="ready")
    accepted = await engine.nginx.apply_raw({"broken.conf": "this is not nginx syntax;\n"})
    assert accepted is False
    status, body = await get_text(lb(engine, name))
    assert status == 200 and name in body
    errors = [e for e in await engine.events(category="error") if e.kind == "nginx_config_rejected"]
    assert errors and "broken.conf" in errors[0].message + str(errors[0].details)
    # Later routing changes still go through: the rejected file was withdrawn.
    await engine.scale(name, 2)
    await wait_for(lambda: ready_is(engine, name, 2), what="2 ready after the rejection")


async def test_down_right_after_a_scale_stops_everything(engine: Engine) -> None:
    name = unique_name("race")
    await engine.register(demo_app(name))
    await engine.up(name)
    await engine.scale(name, 3)
    await engine.down(name, force=True)
    await asyncio.sleep(2)  # a pass computed before the down must not bring the app back
    assert await engine.runtime.list_managed(name) == []
    view = await engine.get_app(name)
    assert view.status == "stopped" and view.replicas == []
