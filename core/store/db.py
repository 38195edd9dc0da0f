"""Database engine, transactions, clock and migrations.

The store is synchronous SQLAlchemy: callers on the asyncio side run it on the store's own threads
(``Store.read`` / ``Store.write``, core/store/lanes.py; the lease on its own, core/cluster.py).
Every call opens its own short transaction on a pooled connection, so one failed statement never
leaves the store in a broken state, and every database failure reaches the caller as
:class:`core.errors.StoreError` naming the operation and the database, not a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
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
# How long SQLite's own busy handler waits for a write lock held by another process (a second
# orchestry on the same state dir, a backup tool); this process's own writers queue in SqliteWriters.
SQLITE_BUSY_TIMEOUT_MS = 5000
# How long a write waits for its turn behind this process's other writes before it is refused. Writes
# are short (milliseconds), so a queue this long means SQLite cannot keep up with the fleet.
SQLITE_WRITE_WAIT_SECONDS = 30.0
_USE_POSTGRESQL = (
    "for a fleet this big use PostgreSQL (ORCHESTRY_DATABASE_URL=postgresql://USER@HOST:PORT/DB)"
)


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
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A write transaction takes the write lock up front: a deferred one that read first and then
        # writes fails at once with SQLITE_BUSY under contention instead of waiting busy_timeout.
        immediate = conn.get_execution_options().get(_SQLITE_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqliteWriters:
    """This process's writers of one SQLite file, one at a time, first come first served.

    SQLite lets one connection write at a time. Left to itself, a writer that finds the file locked
    polls from its busy handler with sleeps growing to 100 ms, and every newcomer that asks while the
    lock happens to be free takes it first: under a steady stream of writes (a fleet being applied
    at load 10) an unlucky writer lost every poll for busy_timeout and failed with "database is
    locked". Queued here instead, each writer is handed the turn the moment the one before commits
    and waits only for the writes ahead of it. Readers never queue (WAL: they read beside a writer).

    A write with a deadline (the leader lease's renewal, ``first=True``) goes ahead of the queue and
    waits only for the write under way. First come first served, it waited for every queued write: in
    bench/lease_turn.py's 10,000-replica fill (load 13-17) writes waited up to 1.9-2.1 s for their turn
    and the renewals 46 ms p50, 335 ms at worst; ahead of the queue, 6 ms p50, 152 ms at worst. Well
    inside the default TTL's budget (a renewal must end 0.8 TTL - TTL/3 after the one before began:
    14 s at 30 s) either way, but not at the smallest TTL (3 s: 1.4 s), where a renewal that comes at
    the queue's worst lapses the leader; and writes may queue up to SQLITE_WRITE_WAIT_SECONDS. A
    renewal is one short UPDATE once per TTL/3, so the writes it passes lose milliseconds.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._busy = False
        self._owner: int | None = None  # the thread whose write transaction is open
        self._waiting: deque[threading.Lock] = deque()  # each waiter parks on its own locked gate
        self._first: deque[threading.Lock] = deque()  # writes with a deadline, handed the turn before
        self.writes = 0
        self.longest_wait = 0.0  # seconds, for bench/fleet.py's figures

    @property
    def queued(self) -> int:
        return len(self._first) + len(self._waiting)

    @contextmanager
    def turn(self, operation: str, timeout: float, *, first: bool = False) -> Iterator[None]:
        started = time.monotonic()
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                # Waiting would never end: this thread's own open write is the one ahead.
                raise StoreError(f"{operation} was started inside another write of the same thread")
            if not self._busy:
                self._busy = True
                gate = None
            else:
                gate = threading.Lock()
                gate.acquire()
                (self._first if first else self._waiting).append(gate)
        if gate is not None:
            try:
                handed = gate.acquire(timeout=timeout)
            except BaseException:  # interrupted (Ctrl-C in the main thread): never strand the turn
                if self._leave(gate) is None:
                    self._pass_on()
                raise
            queued = None if handed else self._leave(gate)
            if queued is not None:
                raise StoreError(
                    f"the SQLite store at {self.path} could not take a write while {operation}: it "
                    f"waited {timeout:.0f} s for its turn behind this process's other writes ({queued} "
                    f"queued). SQLite takes one write at a time; {_USE_POSTGRESQL}"
                )
        waited = time.monotonic() - started
        with self._mutex:
            self._owner = me
            self.writes += 1
            self.longest_wait = max(self.longest_wait, waited)
        try:
            yield
        finally:
            self._pass_on()

    def _leave(self, gate: threading.Lock) -> int | None:
        """Take a waiter that gives up out of the queue: how many were queued with it, or None when
        the turn was handed to it meanwhile (it then holds the turn)."""
        with self._mutex:
            queued = len(self._first) + len(self._waiting)
            for line in (self._first, self._waiting):
                if gate in line:
                    line.remove(gate)
                    return queued
            return None

    def _pass_on(self) -> None:
        with self._mutex:
            self._owner = None
            line = self._first or self._waiting
            if line:
                line.popleft().release()  # stays busy: the turn passes straight on
            else:
                self._busy = False


# One queue per SQLite file, shared by every Database of this process on it (a second Store, the
# migrations of `orchestry db upgrade` run in-process), kept while any of them is open.
_sqlite_writers: weakref.WeakValueDictionary[str, SqliteWriters] = weakref.WeakValueDictionary()
_sqlite_writers_lock = threading.Lock()


def _writers_of(path: str) -> SqliteWriters:
    key = os.path.realpath(os.path.expanduser(path))
    with _sqlite_writers_lock:
        writers = _sqlite_writers.get(key)
        if writers is None:
            writers = _sqlite_writers[key] = SqliteWriters(key)
        return writers


def _sqlite_busy(exc: sa.exc.SQLAlchemyError) -> bool:
    """SQLite's busy handler gave up: another connection kept the write lock past busy_timeout."""
    origin = getattr(exc, "orig", None)
    if not isinstance(origin, sqlite3.OperationalError):
        return False
    name = getattr(origin, "sqlite_errorname", "")
    return name.startswith("SQLITE_BUSY") or "database is locked" in str(origin)


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
        # SQLite only: this process's writers queue here instead of racing in SQLite's busy handler.
        self.sqlite_writers = (
            _writers_of(self.engine.url.database or "") if self.dialect == "sqlite" else None
        )

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
    def write(self, operation: str, *, first: bool = False) -> Iterator[sa.Connection]:
        """A write transaction; ``first``: a write with a deadline goes ahead of this process's queued
        SQLite writes (see SqliteWriters)."""
        with self._transaction(operation, write=True, first=first) as conn:
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

    def write_turn(self, operation: str, first: bool = False) -> contextlib.AbstractContextManager[None]:
        """On SQLite, wait for this process's earlier writes to end (see SqliteWriters); PostgreSQL
        takes concurrent writes itself, so nothing waits there."""
        if self.sqlite_writers is None:
            return nullcontext()
        return self.sqlite_writers.turn(operation, SQLITE_WRITE_WAIT_SECONDS, first=first)

    @contextmanager
    def _transaction(self, operation: str, *, write: bool, first: bool = False) -> Iterator[sa.Connection]:
        # The turn comes before a pooled connection is taken: queued writers hold none, so readers
        # always find one.
        with self.write_turn(operation, first) if write else nullcontext():
            try:
                with self.engine.connect() as conn:
                    if write and self.dialect == "sqlite":
                        conn.execution_options(**{_SQLITE_IMMEDIATE: True})
                    with conn.begin():
                        yield conn
            except sa.exc.IntegrityError as exc:
                raise IntegrityViolation(
                    f"{operation} was refused by the database: {_first_line(exc)}"
                ) from exc
            except sa.exc.SQLAlchemyError as exc:
                raise self._failure(operation, exc) from exc

    def _failure(self, operation: str, exc: sa.exc.SQLAlchemyError) -> StoreError:
        if self.dialect == "sqlite" and _sqlite_busy(exc):
            # This process's own writers queue, so the lock was held by another process.
            return StoreError(
                f"the SQLite store at {self.engine.url.database} stayed locked by another process for "
                f"more than {SQLITE_BUSY_TIMEOUT_MS / 1000:.0f} s while {operation} ({_first_line(exc)}): "
                f"is a second orchestry or a tool using the same state dir? Retry, or {_USE_POSTGRESQL}"
            )
        return StoreError(
            f"the database at {self.display_url} failed while {operation}: {_first_line(exc)}; "
            "check that it is reachable and migrated (`orchestry db upgrade`)"
        )

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
        # On SQLite a migration writes like any other write: after this process's writes, not racing them.
        with database.write_turn(operation), database.engine.connect() as conn:
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
