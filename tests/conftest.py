"""Fixtures shared by every test folder.

``database_url`` gives each test an empty database on both stores: a SQLite file and a fresh
PostgreSQL database created for the test and dropped after it, so parallel runs never collide.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from core.store import Store
from core.store.db import normalise_url
from tests.support.default_pool import default_sized_pool
from tests.support.interrupt import accept_ctrl_c

os.environ.pop("NO_COLOR", None)  # NO_COLOR makes every Textual snapshot differ
accept_ctrl_c()  # a run started in the background would otherwise pass SIGINT on ignored to the CLI

# Property tests: a small example count by default (the suite must stay fast); CI (CI=true) derandomizes
# so a run is reproducible: the same examples each time, no example database carried between runs.
# `pytest --hypothesis-profile=thorough` searches harder.  A test's own @settings(max_examples=...) wins.
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True, database=None, print_blob=True)
settings.register_profile("thorough", settings.get_profile("dev"), max_examples=500)
settings.load_profile(
    os.environ.get("ORCHESTRY_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

PG_URL = os.environ.get("ORCHESTRY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
DEMO_IMAGE = os.environ.get("ORCHESTRY_DEMO_IMAGE", "orchestry/demo:latest")


def _pg_admin_url() -> sa.engine.URL:
    return sa.make_url(PG_URL).set(drivername="postgresql+psycopg2")


def run_as_admin(admin_url: str | sa.engine.URL, statement: str) -> None:
    """One statement outside a transaction, as CREATE and DROP DATABASE must run."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        admin.dispose()


# A test that takes the ``store`` fixture gets its database migrated before its body runs: that database
# is a copy of one migrated once per session (with a cluster id of its own, as a migration gives), instead
# of running every migration again. Creating, migrating and dropping took 1.5-2.5 s a PostgreSQL test on
# this loaded 2-core host, the migration 0.4-1.0 s of it. Tests that open a store themselves, migration
# tests among them, still get an empty database.
MIGRATED_BY_THE_STORE_FIXTURE = "store"


def _gets_a_migrated_store(request: pytest.FixtureRequest) -> bool:
    return MIGRATED_BY_THE_STORE_FIXTURE in request.fixturenames


def _new_cluster_id(url: str) -> None:
    """What migration 0002 gives each database: one random id (a copy would share its template's)."""
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE cluster_identity SET cluster_id = :id"), {"id": uuid.uuid4().hex})
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once, for ``pg_database_url`` to copy; dropped at the end."""
    name = f"orchestry_m_{uuid.uuid4().hex[:12]}"
    run_as_admin(_pg_admin_url(), f'CREATE DATABASE "{name}"')
    try:
        Store.open(_pg_admin_url().set(database=name).render_as_string(hide_password=False)).close()
        yield name
    finally:
        run_as_admin(_pg_admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once, for ``sqlite_database_url`` to copy."""
    path = tmp_path_factory.mktemp("migrated") / "orchestry.db"
    Store.open(f"sqlite:///{path}").close()
    return path


class DatabaseDropper:
    """Drops the tests' PostgreSQL databases on a thread of its own, in the order they were handed over:
    a test's teardown no longer waits for its DROP DATABASE (0.3-1.0 s on this loaded 2-core host), the
    next test runs meanwhile. Every database is still dropped, and a drop that failed fails the session."""

    def __init__(self) -> None:
        self._names: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drop_each, name="drop-test-databases", daemon=True)
        self.failures: list[str] = []
        self._thread.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def _drop_each(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                run_as_admin(_pg_admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # reported when the session ends; the next ones are still dropped
                self.failures.append(f"{name}: {exc}")

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()


@pytest.fixture(scope="session")
def database_dropper() -> Iterator[DatabaseDropper]:
    dropper = DatabaseDropper()
    yield dropper
    dropper.close()
    assert not dropper.failures, f"test databases not dropped: {dropper.failures}"


@pytest.fixture
def pg_database_url(request: pytest.FixtureRequest, database_dropper: DatabaseDropper) -> Iterator[str]:
    """An empty PostgreSQL database (migrated already when the test takes ``store``), dropped after."""
    name = f"orchestry_t_{uuid.uuid4().hex[:12]}"
    template = ""
    if _gets_a_migrated_store(request):
        template = f' TEMPLATE "{request.getfixturevalue("migrated_pg_template")}"'
    run_as_admin(_pg_admin_url(), f'CREATE DATABASE "{name}"{template}')
    try:
        url = _pg_admin_url().set(database=name).render_as_string(hide_password=False)
        if template:
            _new_cluster_id(url)
        yield url
    finally:
        database_dropper.drop(name)


@pytest.fixture
def sqlite_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file not there yet (a copy of a migrated one when the test takes ``store``)."""
    url = f"sqlite:///{tmp_path / 'orchestry.db'}"
    if _gets_a_migrated_store(request):
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), tmp_path / "orchestry.db")
        _new_cluster_id(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every store test runs on both SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_database_url")
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store on each database of ``database_url``, migrated, closed after the test."""
    opened = Store.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Any]:
    """A whole Engine on the real Docker engine and nginx, with a fresh SQLite store; apps and nginx
    are stopped afterwards."""
    from core.engine import Engine
    from tests.integration.harness import engine_settings

    eng = Engine(engine_settings(tmp_path / "state"))
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop(stop_apps=True)


@pytest.fixture
def default_pool() -> Iterator[ThreadPoolExecutor]:
    """A pool sized as asyncio sizes its default one, for the test to set on its loop and fill
    (tests.support.default_pool). Fixtures that depend on it stop before it shuts down."""
    pool = default_sized_pool()
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def unique_name(prefix: str = "t") -> str:
    """An app name no other test (or parallel test run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
def _stop_leftover_test_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An engine stopped without ``stop_nginx`` leaves its nginx serving, by design; tests must not.

    Only nginx under THIS session's base temp dir is stopped: other pytest runs on the machine keep theirs.
    """
    import signal

    base = str(tmp_path_factory.getbasetemp())
    yield
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("nginx: master process") and f"{base}/" in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGQUIT)
