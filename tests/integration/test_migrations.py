"""Alembic migrations on both dialects: empty → head → base → head, and the alembic CLI config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from core.store import Store, current_revision, downgrade, upgrade
from core.store.db import REPO_ROOT, normalise_url
from core.store.models import metadata

TABLES = {
    "applications",
    "instances",
    "events",
    "scaling_history",
    "leader_lease",
    "cluster_nodes",
    "secrets",
    "cluster_identity",
    "metric_samples",
}
HEAD = "0003"


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert TABLES <= table_names(database_url)
    assert current_revision(database_url) == HEAD

    downgrade(database_url, "base")
    assert table_names(database_url) & TABLES == set()
    assert current_revision(database_url) is None

    upgrade(database_url)
    assert TABLES <= table_names(database_url)
    store = Store.open(database_url, upgrade=False)
    try:
        assert store.apps.list() == []
    finally:
        store.close()


def test_migrated_schema_matches_the_tables_the_repositories_use(database_url: str) -> None:
    upgrade(database_url)
    engine = sa.create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table in metadata.sorted_tables:
                migrated = {c["name"] for c in inspector.get_columns(table.name)}
                assert migrated == set(table.columns.keys()), table.name
    finally:
        engine.dispose()


def test_alembic_cli_from_the_repo_root_uses_orchestry_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    alembic = Path(sys.executable).with_name("alembic")
    env = {**os.environ, "ORCHESTRY_DATABASE_URL": url}
    result = subprocess.run(
        [str(alembic), "upgrade", "head"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert current_revision(url) == HEAD
    assert TABLES <= table_names(url)


def test_upgrading_a_0001_database_keeps_its_apps_and_gives_it_a_cluster_id(database_url: str) -> None:
    upgrade(database_url, "0001")
    engine = sa.create_engine(normalise_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO applications (name, spec, raw, spec_hash, status, status_reason, mode,"
                    " desired_replicas, policy, created_at, updated_at, generation) VALUES ('kept', '{}',"
                    " '{}', 'h', 'stopped', '', 'manual', 2, '{}', 1.0, 1.0, 1)"
                )
            )
    finally:
        engine.dispose()
    store = Store.open(database_url)  # migrates to head on open, as the engine does
    try:
        assert current_revision(database_url) == HEAD
        assert [app.name for app in store.apps.list()] == ["kept"]
        assert len(store.identity.cluster_id()) == 32
    finally:
        store.close()
