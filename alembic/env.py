"""Alembic environment for Orchestry.

The database comes from, in order: a connection handed over by ``core.store.db`` (the normal path:
the engine and ``orchestry db upgrade`` migrate programmatically), ``config.attributes["url"]``,
``sqlalchemy.url`` in alembic.ini, then ``ORCHESTRY_DATABASE_URL``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from core.store.db import create_db_engine, normalise_url
from core.store.models import metadata

config = context.config

if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)


def _database_url() -> str:
    url = (
        config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("ORCHESTRY_DATABASE_URL")
    )
    if not url:
        raise SystemExit("set ORCHESTRY_DATABASE_URL (or sqlalchemy.url in alembic.ini) to the database")
    return url


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    # SQLite gets transactional DDL too (core.store.db emits BEGIN itself), so a failed migration
    # leaves the schema as it was on both dialects.
    context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)


def run_migrations_offline() -> None:
    context.configure(
        url=normalise_url(_database_url()),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(_database_url())
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
