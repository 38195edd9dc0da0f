"""The Prometheus page of a real engine (in-memory runtime, fake clock) as an SRE's alerts read it: one
copy of each app's state across a cluster, the figures its scaler sees, the bounds it scales between."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from core.metrics.exposition import exposition
from core.runtime.memory import MemoryContainer
from tests.conftest import _pg_admin_url, run_as_admin
from tests.support.world import MemoryWorld, app_document, memory_world, unique_app


def samples(page: str) -> dict[str, float]:
    found = {}
    for line in page.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


async def page_of(world: MemoryWorld) -> dict[str, float]:
    return samples(await exposition(world.engine, openmetrics=False))


async def started(world: MemoryWorld, replicas: int = 2, **scaling: object) -> str:
    name = unique_app("prom")
    document = app_document(name, replicas=replicas)
    document["scaling"].update(scaling)
    await world.engine.register(document)
    await world.engine.up(name)
    await world.ready(name, replicas)
    return name


async def test_only_the_leader_exports_an_apps_state(tmp_path: Path, pg_database_url: str) -> None:
    """Three nodes each exporting every app's desired and ready replicas (a follower's window figures
    all 0) triple ``sum(orchestry_app_replicas_desired)`` and fire "below desired" on stale copies: the
    leader alone exports them; a follower says it follows."""
    async with memory_world(tmp_path / "leader", database_url=pg_database_url) as leader:
        name = await started(leader)
        async with memory_world(tmp_path / "follower", database_url=pg_database_url) as follower:
            assert not follower.engine.is_leader()
            led, followed = await page_of(leader), await page_of(follower)
    assert led[f'orchestry_app_replicas_desired{{app="{name}"}}'] == 2
    assert led["orchestry_is_leader"] == 1
    assert led["orchestry_nginx_up"] == 1 and "orchestry_nginx_up" not in followed  # the leader drives it
    assert followed["orchestry_is_leader"] == 0
    assert [k for k in followed if k.startswith("orchestry_app_replicas") or "_window_" in k] == []


async def test_window_figures_are_the_scalers_window_and_unmeasured_ones_are_absent(tmp_path: Path) -> None:
    """``orchestry_app_window_*`` say they are what the scaler sees over its window: they were the last
    10 s instead (a burst 20 s ago, still driving a 60 s window's decision, read 0), and a figure never
    measured (memory of an app with no samples) read 0, which an alert takes for "fine"."""
    async with memory_world(tmp_path / "state") as world:
        name = await started(world, replicas=1, windowSeconds=60)
        await world.engine.simulate_metrics(name, {"rps": 40.0, "activeConnections": 6.0}, evaluate=False)
        await world.clock.advance(20)
        page = await page_of(world)
    assert page[f'orchestry_app_window_requests_per_second{{app="{name}"}}'] == 40
    assert page[f'orchestry_app_window_connections{{app="{name}"}}'] == 6
    assert f'orchestry_app_window_memory_ratio{{app="{name}"}}' not in page
    assert f'orchestry_app_window_latency_p95_seconds{{app="{name}"}}' not in page


async def test_the_bounds_an_app_scales_between_are_exported(tmp_path: Path) -> None:
    """ "Scaling at max" (an app pinned at maxReplicas while its load stays high) needs the bound on the
    page beside the desired count; so does "stuck at min" and whether the scaler drives the app at all."""
    async with memory_world(tmp_path / "state") as world:
        name = await started(world, replicas=2, maxReplicas=4, mode="auto")
        page = await page_of(world)
        await world.engine.set_mode(name, "manual")
        manual = await page_of(world)
    assert page[f'orchestry_app_replicas_min{{app="{name}"}}'] == 2
    assert page[f'orchestry_app_replicas_max{{app="{name}"}}'] == 4
    assert page[f'orchestry_app_autoscaling{{app="{name}"}}'] == 1
    assert manual[f'orchestry_app_autoscaling{{app="{name}"}}'] == 0


async def test_an_apps_counters_start_at_zero_and_end_with_it(tmp_path: Path) -> None:
    """``increase(orchestry_app_requests_total{status_class="5xx"}[5m]) > 0`` misses the first failures
    when the series appears only with them (a series' first sample has nothing to increase from), so an
    app's counters, and the fixed-label ones of the node, are exported at 0 from the start. A counter
    of an app the store no longer knows (deleted while another node led) is not exported any more."""
    from core.metrics import instruments

    async with memory_world(tmp_path / "state") as world:
        name = await started(world, replicas=1)
        instruments.REQUESTS.inc(3, app="prom-deleted-elsewhere", status_class="2xx")
        page = await page_of(world)
    for status_class in ("2xx", "3xx", "4xx", "5xx"):
        assert page[f'orchestry_app_requests_total{{app="{name}",status_class="{status_class}"}}'] == 0
    assert page[f'orchestry_health_check_failures_total{{app="{name}"}}'] == 0
    assert page[f'orchestry_reconcile_errors_total{{app="{name}"}}'] == 0
    for stage in ("test", "reload"):
        assert f'orchestry_nginx_reload_failures_total{{stage="{stage}"}}' in page
    for state in ("leader", "follower", "candidate"):
        assert f'orchestry_leader_changes_total{{state="{state}"}}' in page
    assert "orchestry_nginx_reloads_total" in page
    assert not [k for k in page if "prom-deleted-elsewhere" in k]


def cut_database(url: str, allowed: bool) -> None:
    """Refuse (or allow again) every connection to this test's own database: an outage of the store
    that no other test or helper sees."""
    name = sa.make_url(url).database
    run_as_admin(_pg_admin_url(), f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
    if not allowed:
        run_as_admin(
            _pg_admin_url(),
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )


async def test_a_store_outage_is_on_the_page_not_a_failed_scrape(
    tmp_path: Path, pg_database_url: str
) -> None:
    """ "Store unreachable" needs a series that says so: the scrape failed with the store (a 503), so
    Prometheus saw ``up == 0``, the same as a dead controller, and the node's own figures went too."""
    async with memory_world(tmp_path / "state", database_url=pg_database_url) as world:
        name = await started(world, replicas=1)
        before = await page_of(world)
        await asyncio.to_thread(cut_database, pg_database_url, False)
        try:
            during = await page_of(world)
        finally:
            await asyncio.to_thread(cut_database, pg_database_url, True)
        after = await page_of(world)
    assert before["orchestry_database_up"] == 1 and after["orchestry_database_up"] == 1
    assert during["orchestry_database_up"] == 0
    assert during["process_resident_memory_bytes"] > 0 and "orchestry_is_leader" in during
    assert f'orchestry_reconcile_errors_total{{app="{name}"}}' in during  # not forgotten for an outage
    # The leader still knows its apps (its kept records): "below desired" stays visible meanwhile.
    assert during[f'orchestry_app_replicas_desired{{app="{name}"}}'] == 1
    assert during[f'orchestry_app_status{{app="{name}",status="running"}}'] == 1


async def test_lease_renewals_are_timed_and_failed_ones_counted(tmp_path: Path, pg_database_url: str) -> None:
    """A leader steps down when renewing its lease takes longer than the TTL allows: an SRE wants to
    see renewals slow down (and fail) before that happens, not learn it from a leader change."""
    from core.metrics import instruments

    async with memory_world(tmp_path / "state", database_url=pg_database_url) as world:
        assert world.engine.is_leader()
        timed = instruments.LEASE_RENEW_DURATION.count()
        failed = instruments.LEASE_RENEW_FAILURES.value()
        await world.engine.cluster.step()
        assert instruments.LEASE_RENEW_DURATION.count() >= timed + 1
        await asyncio.to_thread(cut_database, pg_database_url, False)
        try:
            await world.engine.cluster.step()
        finally:
            await asyncio.to_thread(cut_database, pg_database_url, True)
        page = await page_of(world)
    assert instruments.LEASE_RENEW_FAILURES.value() >= failed + 1  # the election loop may fail one too
    assert page["orchestry_lease_renew_duration_seconds_count"] >= 1
    assert "orchestry_lease_renew_failures_total" in page


async def test_an_apps_status_is_a_state_set(tmp_path: Path) -> None:
    """ "App in error" (a start that cannot succeed: exited at once, image missing) and "degraded" are
    what ``orchestry status`` says first; the page said neither. One series per status, 1 for the
    app's own, so ``orchestry_app_status{status="error"} == 1`` is the alert."""
    async with memory_world(tmp_path / "state") as world:
        name = await started(world, replicas=1)
        running = await page_of(world)
        await world.engine.down(name)
        stopped = await page_of(world)
    for status in ("running", "degraded", "stopped", "error"):
        assert running[f'orchestry_app_status{{app="{name}",status="{status}"}}'] == (status == "running")
        assert stopped[f'orchestry_app_status{{app="{name}",status="{status}"}}'] == (status == "stopped")


async def test_replicas_are_counted_by_state_crash_loop_included(world: MemoryWorld) -> None:
    """ "Replica crash-looping" now, not only "replaced N times lately": a slot waiting out its crash
    back-off is what ``orchestry status`` shows as CrashLoopBackOff, and the page counts it."""
    fine = await started(world, replicas=1)
    name = unique_app("prom")
    world.runtime.on_create = _not_listening  # never proves healthy: its back-off is never forgiven
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    for crash in range(3):  # the third crash puts slot 1 in CrashLoopBackOff
        world.runtime.crash(f"{name}-1", exit_code=1, message=f"boom {crash}")
        await world.engine.reconciler.reconcile_now(name)
        if crash < 2:
            await world.settle(lambda: bool(world.runtime.running(name)), "slot 1 recreated")
    page = await page_of(world)
    series = 'orchestry_app_replicas_by_state{app="%s",state="%s"}'
    assert page[series % (name, "CrashLoopBackOff")] == 1 and page[series % (name, "ready")] == 0
    assert page[series % (fine, "ready")] == 1 and page[series % (fine, "CrashLoopBackOff")] == 0
    assert {k for k in page if k.startswith("orchestry_app_replicas_by_state") and f'"{name}"' in k} == {
        series % (name, state)
        for state in ("starting", "ready", "unhealthy", "draining", "CrashLoopBackOff", "failed")
    }


def _not_listening(container: MemoryContainer) -> None:
    container.listening = False
