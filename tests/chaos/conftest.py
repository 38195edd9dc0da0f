"""A three-daemon cluster on PostgreSQL with its controller LB, started once per test session.

Tests that only watch it, or that kill or step down its leader and leave it whole again
(``restore``), share it: starting three daemons costs seconds per test otherwise. Tests that need a
cluster of their own (a frozen leader, a cut database) keep their own fixture.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from core.store import Store
from testkit.daemon_cluster import DaemonCluster
from tests.conftest import _pg_admin_url, run_as_admin

SHARED_TTL = 3


@contextlib.contextmanager
def two_stores_on(database_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database, as two nodes of a cluster each open their own; closed afterwards."""
    first, second = Store.open(database_url), Store.open(database_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.fixture
def two_stores(pg_database_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one PostgreSQL database."""
    with two_stores_on(pg_database_url) as stores:
        yield stores


@pytest.fixture(scope="session")
def session_pg_database_url() -> Iterator[str]:
    """An empty PostgreSQL database for the whole session, dropped at its end."""
    name = f"orchestry_s_{uuid.uuid4().hex[:12]}"
    run_as_admin(_pg_admin_url(), f'CREATE DATABASE "{name}"')
    try:
        yield _pg_admin_url().set(database=name).render_as_string(hide_password=False)
    finally:
        run_as_admin(_pg_admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_cluster(
    tmp_path_factory: pytest.TempPathFactory, session_pg_database_url: str
) -> AsyncIterator[DaemonCluster]:
    """Three ``orchestry daemon`` nodes (lease TTL 3 s) and a controller LB in front of them."""
    cluster = DaemonCluster(
        tmp_path_factory.mktemp("shared-cluster"), session_pg_database_url, size=3, lease_ttl=SHARED_TTL
    )
    try:
        await cluster.start()
        await cluster.start_controller_lb()
        yield cluster
    finally:
        await cluster.close()


async def restore(cluster: DaemonCluster) -> None:
    """Restart every node that a test killed, so the next test finds three nodes again."""
    for node in list(cluster.nodes):
        if not node.alive:
            await cluster.restart(node)
