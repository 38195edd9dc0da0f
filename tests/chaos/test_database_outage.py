"""PostgreSQL stops under a three-daemon cluster, then comes back.

The cluster runs on a private PostgreSQL server (tests/chaos/pg_private.py) so the test may stop it;
the shared server on 5432 is never touched. While the database is down apps keep serving, every node
answers quickly and clearly, and nobody leads (a leader that cannot renew steps down). When it returns
a leader is elected, adopts the apps unchanged, and writes work again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testkit.daemon_cluster import DaemonCluster, call, ready_replicas
from tests.chaos.pg_private import PrivatePostgres, private_database_url, private_postgres  # noqa: F401
from tests.conftest import unique_name
from tests.integration.harness import TrafficClient, demo_app, wait_for

TTL = 3


@pytest.fixture
async def cluster(tmp_path: Path, private_database_url: str) -> AsyncIterator[DaemonCluster]:  # noqa: F811
    running = DaemonCluster(tmp_path, private_database_url, size=3, lease_ttl=TTL)
    try:
        await running.start()
        yield running
    finally:
        await running.close()


async def _ready_is(url: str, name: str, count: int) -> bool:
    return await ready_replicas(url, name) == count


async def test_database_outage_keeps_apps_serving_and_recovers(
    cluster: DaemonCluster,
    private_postgres: PrivatePostgres,  # noqa: F811
) -> None:
    leader = await cluster.wait_leader()
    name = unique_name("db")
    cluster.apps.add(name)
    assert (await call(f"{leader.url}/api/v1/apps", "POST", demo_app(name))).status == 201
    assert (await call(f"{leader.url}/api/v1/apps/{name}/up", "POST", timeout=120)).status == 200
    assert (await call(f"{leader.url}/api/v1/apps/{name}/scale", "POST", {"replicas": 2})).status == 200
    await wait_for(lambda: _ready_is(leader.url, name, 2), timeout=60, what="2 ready replicas")
    before = await cluster.containers(name)

    async with TrafficClient(f"http://{cluster.apps_lb}/{name}/", concurrency=2) as traffic:
        stopped_at = time.monotonic()
        await asyncio.to_thread(private_postgres.stop)
        await wait_for(_no_leader(cluster), timeout=TTL * 3, what="the leader to step down")
        stepped_down = time.monotonic() - stopped_at

        # Every node answers at once and says what is wrong, for as long as the outage lasts.
        leaders_seen: list[str] = []
        outage_end = time.monotonic() + 8.0
        while time.monotonic() < outage_end:
            leaders_seen += [n.node_id for n in await cluster.leaders()]
            for node in cluster.nodes:
                health = await call(f"{node.url}/health", timeout=5)
                assert health.status == 200, (node.node_id, health)  # latency: bench/api.py
                assert health.body["database"]["status"] == "error" and health.body["is_leader"] is False
            await asyncio.sleep(0.5)
        assert leaders_seen == [], "nobody leads without the database (no split brain)"

        write = await call(f"{leader.url}/api/v1/apps/{name}/scale", "POST", {"replicas": 3})
        assert write.status == 503 and "Traceback" not in str(write.body), write
        assert "leader" in write.body["detail"].lower() or "database" in write.body["detail"].lower()
        read = await call(f"{leader.url}/api/v1/apps", timeout=5)
        assert read.status == 503, read
        assert "database" in read.body["detail"] and "Traceback" not in read.body["detail"]

        back_at = time.monotonic()
        await asyncio.to_thread(private_postgres.start)
        new_leader = await cluster.wait_leader(timeout=30)
        elected = time.monotonic() - back_at
        await wait_for(lambda: _ready_is(new_leader.url, name, 2), timeout=30, what="apps adopted")
        recovered = time.monotonic() - back_at
        await asyncio.sleep(1.0)

    print(
        f"\ndatabase outage: leader stepped down {stepped_down:.2f} s after the stop; after the restart "
        f"a leader in {elected:.2f} s, apps adopted and ready in {recovered:.2f} s; "
        f"{traffic.total} app requests, {traffic.failures} failed"
    )
    assert traffic.failures == 0, (traffic.statuses, traffic.errors[-3:])
    assert all(node.alive for node in cluster.nodes), "no daemon died"
    assert await cluster.containers(name) == before, "the apps were adopted unchanged"

    answer = await call(f"{new_leader.url}/api/v1/apps/{name}/scale", "POST", {"replicas": 3}, timeout=60)
    assert answer.status == 200, answer
    await wait_for(lambda: _ready_is(new_leader.url, name, 3), timeout=60, what="scaled out after recovery")
    # Supervised tasks that met the outage said so in one line and were restarted with back-off.
    for node in cluster.nodes:
        assert "Traceback" not in _supervisor_lines(node.log()), node.log()[-3000:]
        assert node.log().count("background task") < 20, "restarts back off instead of spinning"


def _supervisor_lines(log: str) -> str:
    """The supervisor's log records, each with the lines (a traceback) that follow it."""
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d )", log)
    return "\n".join(r for r in records if " core.supervisor: " in r)


def _no_leader(cluster: DaemonCluster):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await cluster.leaders() == []

    return check
