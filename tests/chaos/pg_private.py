"""A private PostgreSQL server that a test may stop and start at will.

The shared server on 5432 serves everyone on this machine and must never be stopped; a test about a
database outage gets its own cluster instead: ``initdb`` into a temp dir as the ``postgres`` user, on a
free loopback port, trust authentication. ``PrivatePostgres.cleanup()`` stops it and removes the data
dir; the ``private_postgres`` fixture calls it even when a test fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import run_as_admin
from tests.integration.harness import free_port

START_TIMEOUT = 60


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(
            f"{name} not found under /usr/lib/postgresql/*/bin: install the postgresql package"
        )
    return found[-1]  # the newest major version


class PrivatePostgres:
    """One PostgreSQL cluster in a temp dir; ``stop()``/``start()`` any number of times."""

    def __init__(self) -> None:
        self.port = free_port()
        self.user = "postgres"
        # Under /tmp, not pytest's tmp_path: pytest's dirs are 0700 root, which the postgres user cannot
        # traverse.
        self.base = Path(tempfile.mkdtemp(prefix="orchestry-pg-"))
        self.data_dir = self.base / "data"
        self.log_path = self.base / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self._run(_bin("initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", self.user, "-E", "UTF8",
                  "--no-sync")  # fmt: skip

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT + 30)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(_bin("pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_path),
                  "-w", "-t", str(START_TIMEOUT), "-o", options)  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown: every client connection is cut at once, as when a database host goes away."""
        self._run(_bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
                  "-t", str(START_TIMEOUT), check=False)  # fmt: skip

    def is_running(self) -> bool:
        return self._run(_bin("pg_ctl"), "status", "-D", str(self.data_dir), check=False).returncode == 0

    def ensure_running(self) -> None:
        if not self.is_running():
            self.start()

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"orchestry_c_{uuid.uuid4().hex[:12]}"
        run_as_admin(self.admin_url, f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = sa.make_url(url).database
        run_as_admin(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        # A server that would not stop must not outlive the test run holding a port.
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 9)
            time.sleep(0.2)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test session only; stopped and removed at the end, pass or fail."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_database_url(private_postgres: PrivatePostgres) -> Iterator[str]:
    """A throwaway database on the private server (restarted first if a previous test left it down)."""
    private_postgres.ensure_running()
    url = private_postgres.create_database()
    try:
        yield url
    finally:
        private_postgres.ensure_running()
        with contextlib.suppress(Exception):
            private_postgres.drop_database(url)
