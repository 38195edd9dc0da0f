"""Wake the election the moment a peer releases or takes the lease (PostgreSQL LISTEN/NOTIFY).

The lease repository sends ``NOTIFY orchestry_lease`` inside the transaction that releases or acquires
a term, so it arrives when (and only if) that transaction commits. Followers listen on one dedicated
connection and try for the lease at once instead of at their next retry: a clean handover takes a
round trip, not a retry period. A notice only says "look now"; the lease row in the database stays the
only truth, so a lost notice (connection dropped, SQLite) costs nothing but the wait for the next
retry, which still runs on its timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "orchestry_lease"
# After a failed connect or a dropped connection: how long to rely on the timer before trying again.
RECONNECT_SECONDS = 5.0
CONNECT_TIMEOUT = 5


def notify_sql(payload: str) -> tuple[sa.TextClause, dict[str, str]]:
    """The statement that tells listeners, sent inside the lease transaction (delivered on COMMIT)."""
    return sa.text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}


class LeaseNotices:
    """A LISTEN connection read by the event loop (add_reader: nothing blocks while waiting)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._conn: Any = None  # a raw psycopg2 connection, autocommit, listening
        self._fd = -1  # its socket, as registered with the loop (libpq forgets it once the link drops)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self._retry_at = 0.0
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False
        # The (rare) connect has a thread of its own: on asyncio's default pool, full of other work, a
        # follower stayed deaf to a release, and took the lease a retry period late. One thread, started
        # on first use, ended when these notices are collected.
        self._connector = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orchestry-lease-notices")
        self.received = 0  # notices seen (for tests and diagnostics)

    @property
    def listening(self) -> bool:
        return self._conn is not None

    def _connect(self) -> Any:
        import psycopg2  # PostgreSQL only: SQLite nodes never load the driver

        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)  # as the store's own connections
        conn = psycopg2.connect(*args, **kwargs)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def start(self) -> None:
        """Begin listening (again) in the background unless listening, connecting, or a recent attempt
        failed: an unreachable database (connect timeout 5 s) never holds up the election's timer."""
        if self._conn is not None or self._connecting is not None or self._closed:
            return
        if time.monotonic() < self._retry_at:
            return
        self._connecting = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        try:
            conn = await asyncio.get_running_loop().run_in_executor(self._connector, self._connect)
        except Exception as exc:  # any driver failure: fall back to the timer
            self._retry_at = time.monotonic() + RECONNECT_SECONDS
            log.info("not listening for lease notices (%s); followers retry on their timer", exc)
            return
        finally:
            self._connecting = None
        if self._closed:
            conn.close()
            return
        self._loop = asyncio.get_running_loop()
        self._conn, self._fd = conn, conn.fileno()
        self._loop.add_reader(self._fd, self._readable)
        # Whatever changed while not listening is read by the step this wakes.
        self._event.set()

    def _readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.poll()
        except Exception as exc:  # the connection is gone: drop it, reconnect later
            log.info("lease notices connection lost (%s)", exc)
            self._drop()
            self._retry_at = time.monotonic() + RECONNECT_SECONDS
            self._event.set()  # a step now reads the lease instead of trusting silence
            return
        if conn.notifies:
            self.received += len(conn.notifies)
            conn.notifies.clear()
            self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True when a notice (or a change of connection) came first.

        Notices that arrive while the caller is busy are kept for the next wait, never lost."""
        self.start()
        try:
            # Not asyncio.wait_for: on Python 3.11 it returns, instead of raising, when the notice came
            # in the same turn as a cancel, and the election's loop then never stopped.
            async with asyncio.timeout(timeout):
                await self._event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # By the number registered: a reconnect may get the same number, and a stale registration
        # would leave the new socket unwatched.
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        self._fd = -1
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Stop listening for good (a connection still being opened is closed when it arrives)."""
        self._closed = True
        self._drop()
        self._connector.shutdown(wait=False)
