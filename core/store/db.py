"""Database engine, transactions, clock and migrations.

The store is synchronous SQLAlchemy: callers on the asyncio side run it through ``asyncio.to_thread``
(or a bounded executor).  Every call opens its own short transaction on a pooled connection, so one
failed statement never leaves the store in a broken state, and every database failure reaches the
caller as :class:`core.errors.StoreError` naming the operation and the database, not a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from core.errors import NotLeader, StoreError
from core.store import models as t

log = logging.getLogger(__name__)

# alembic/ and alembic.ini live at the repository root (core/store/db.py -> parents[2]); this holds
# for a clean clone and for an editable install, which both run from the source tree.
REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_DIR = REPO_ROOT / "alembic"

# Any constant works; it only has to be the same for every Orchestry node sharing a PostgreSQL
# database so that nodes starting together do not race to create the same tables.
_MIGRATION_LOCK_KEY = 0x0C4E57
_SQLITE_IMMEDIATE = "orchestry_sqlite_immediate"


class IntegrityViolation(StoreError):
    """A constraint refused a write; repositories turn it into Conflict, NotFound or a lost race."""


class FencedOut(NotLeader):
    """A leader-only write carried a term that no longer leads: the database refused it."""

    def __init__(self, operation: str, why: str, leader_id: str | None = None) -> None:
        super().__init__(leader_id)
        self.message = f"{self.message} ({operation} refused: {why})"


@dataclass(frozen=True)
class WriteFence:
    """Fencing for leader-only writes (DESIGN.md §4): the term goes into the write's transaction.

    ``term()`` is the term this node believes it leads, or None when it knows it does not. A write is
    committed only if, as its last statement, the database still finds that term newest, unreleased,
    held by ``node_id`` and valid for at least ``margin`` more seconds; a leader that was frozen or cut
    off past its lease cannot write over its successor.
    """

    term: Callable[[], int | None]
    node_id: str
    margin: float

    @property
    def idle_timeout_ms(self) -> int:
        # Between the check and COMMIT the server waits at most this long for a client that froze
        # (SIGSTOP, a paused VM), then kills the session: a commit can never land after the lease ends.
        return int(max(0.2, self.margin * 0.6) * 1000)


def normalise_url(url: str) -> sa.engine.URL:
    """Parse a database URL; plain ``postgresql://`` / ``postgres://`` URLs get the psycopg2 driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"ORCHESTRY_DATABASE_URL is not a database URL ({exc}): use sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database '{parsed.drivername}' is not supported: use sqlite:///PATH or postgresql://..."
        )
    if backend == "sqlite" and (not parsed.database or parsed.database == ":memory:"):
        raise StoreError(
            "an in-memory SQLite database cannot be shared between connections: "
            "give a file path, e.g. sqlite:////var/lib/orchestry/orchestry.db"
        )
    return parsed


def create_db_engine(url: str) -> sa.Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            connect_args={"connect_timeout": 5},
        )
    Path(parsed.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 module otherwise opens transactions lazily (only before DML), which breaks
        # read-then-write atomicity; SQLAlchemy emits BEGIN itself in _on_begin below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A write transaction takes the write lock up front: a deferred one that read first and then
        # writes fails at once with SQLITE_BUSY under contention instead of waiting busy_timeout.
        immediate = conn.get_execution_options().get(_SQLITE_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _first_line(exc: BaseException) -> str:
    origin = getattr(exc, "orig", None) or exc
    text = str(origin).strip().splitlines()
    return text[0] if text else type(origin).__name__


class Database:
    """An engine plus the per-call transaction helpers every repository uses."""

    def __init__(self, url: str) -> None:
        self.engine = create_db_engine(url)
        self.dialect = self.engine.dialect.name
        self.display_url = self.engine.url.render_as_string(hide_password=True)
        self.fence: WriteFence | None = None  # None: every write is allowed (no election on this store)

    @property
    def now_sql(self) -> sa.ColumnElement[float]:
        """The database clock as epoch seconds, for use inside statements."""
        if self.dialect == "postgresql":
            return sa.literal_column("EXTRACT(EPOCH FROM clock_timestamp())::double precision", sa.Double)
        return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Double)

    @contextmanager
    def read(self, operation: str) -> Iterator[sa.Connection]:
        with self._transaction(operation, write=False) as conn:
            yield conn

    @contextmanager
    def write(self, operation: str) -> Iterator[sa.Connection]:
        with self._transaction(operation, write=True) as conn:
            yield conn

    @contextmanager
    def leader_write(self, operation: str) -> Iterator[sa.Connection]:
        """A write only the lease holder may make: fenced by its term when a fence is set."""
        fence = self.fence
        if fence is None:
            with self._transaction(operation, write=True) as conn:
                yield conn
            return
        term = fence.term()
        if term is None:
            raise FencedOut(operation, "this node does not hold the leader lease")
        with self._transaction(operation, write=True) as conn:
            yield conn
            self._check_term(conn, operation, term, fence)

    def _check_term(self, conn: sa.Connection, operation: str, term: int, fence: WriteFence) -> None:
        """The last statement before COMMIT: is ``term`` still ours, newest and valid long enough?"""
        lease = t.leader_lease
        columns: list[sa.ColumnElement[Any]] = [
            lease.c.term,
            lease.c.leader_id,
            lease.c.released_at,
            lease.c.expires_at,
            self.now_sql.label("now"),
        ]
        if self.dialect == "postgresql":
            columns.append(
                sa.func.set_config(
                    "idle_in_transaction_session_timeout", str(fence.idle_timeout_ms), True
                ).label("idle_timeout")
            )
        newest = conn.execute(sa.select(*columns).order_by(lease.c.term.desc()).limit(1)).first()
        if newest is None:
            raise FencedOut(operation, f"term {term} has no lease row")
        if newest.term != term or newest.leader_id != fence.node_id:
            raise FencedOut(operation, f"term {term} is over, term {newest.term} leads", newest.leader_id)
        if newest.released_at is not None:
            raise FencedOut(operation, f"the lease of term {term} was released")
        if newest.expires_at <= newest.now + fence.margin:
            raise FencedOut(operation, f"the lease of term {term} is about to expire and was not renewed")

    @contextmanager
    def _transaction(self, operation: str, *, write: bool) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                if write and self.dialect == "sqlite":
                    conn.execution_options(**{_SQLITE_IMMEDIATE: True})
                with conn.begin():
                    yield conn
        except sa.exc.IntegrityError as exc:
            raise IntegrityViolation(f"{operation} was refused by the database: {_first_line(exc)}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"the database at {self.display_url} failed while {operation}: {_first_line(exc)}; "
                "check that it is reachable and migrated (`orchestry db upgrade`)"
            ) from exc

    def now(self) -> float:
        with self.read("reading the database clock") as conn:
            return float(conn.execute(sa.select(self.now_sql)).scalar_one())

    def ping(self) -> None:
        with self.read("answering a ping") as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


# --- migrations ---------------------------------------------------------------------------------


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini")) if (REPO_ROOT / "alembic.ini").exists() else Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["connection"] = connection
    # Keep the application's logging configuration: alembic.ini's [loggers] is for the alembic CLI.
    config.attributes["configure_logging"] = False
    return config


def _run_migration(database: Database, operation: str, action: Any) -> None:
    if not ALEMBIC_DIR.is_dir():
        raise StoreError(f"the migration scripts are missing: expected them in {ALEMBIC_DIR}")
    try:
        with database.engine.connect() as conn:
            postgres = database.dialect == "postgresql"
            if postgres:
                conn.execute(sa.select(sa.func.pg_advisory_lock(_MIGRATION_LOCK_KEY)))
                conn.commit()
            try:
                action(_alembic_config(conn))
                conn.commit()
            finally:
                if postgres:
                    conn.rollback()
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(_MIGRATION_LOCK_KEY)))
                    conn.commit()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"{operation} of the database at {database.display_url} failed: {_first_line(exc)}"
        ) from exc


def upgrade_database(database: Database, revision: str = "head") -> None:
    _run_migration(database, "upgrading", lambda cfg: command.upgrade(cfg, revision))


def downgrade_database(database: Database, revision: str = "base") -> None:
    _run_migration(database, "downgrading", lambda cfg: command.downgrade(cfg, revision))


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (``orchestry db upgrade``)."""
    database = Database(url)
    try:
        upgrade_database(database, revision)
    finally:
        database.dispose()


def downgrade(url: str, revision: str = "base") -> None:
    database = Database(url)
    try:
        downgrade_database(database, revision)
    finally:
        database.dispose()


def current_revision(url: str) -> str | None:
    """The applied alembic revision, or None on an empty database."""
    database = Database(url)
    try:
        with database.read("reading the schema revision") as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        database.dispose()
