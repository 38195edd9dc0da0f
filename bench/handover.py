"""Leader handover and failover of a three-daemon HA cluster, measured through the controller LB.

Three real ``orchestry daemon`` processes on a fresh PostgreSQL database of their own (created and
dropped here), lease TTL ``--ttl``, behind the controller LB (templates/controller-lb.conf.j2, real
nginx). A client writes through the LB in a loop (POST /api/v1/apps/NAME/scale of a registered app that
is not up, alternating 1 and 2 replicas: a fenced store write on the leader, no container started).
Each run signals the leader and measures the time from the signal to the first write accepted (200)
by another node:

- SIGTERM: a clean handover (the leader stops and releases its lease);
- SIGKILL: a failover (the lease must expire; the goal is TTL + 1 s).

The node is restarted and the cluster settles between runs. With ``--baseline REV`` the same runs are
made first with the daemons (and controller LB template) of that git revision, exported to a temporary
directory, so the figures stand side by side in one run. Prints figures; asserts nothing.

    .venv/bin/python bench/handover.py [--runs 5] [--ttl 5] [--baseline f1d2ca9]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `testkit` and `scripts` importable
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from testkit.daemon_cluster import Answer, DaemonCluster, call  # noqa: E402
from testkit.harness import demo_app, free_port, wait_for  # noqa: E402

PG_URL = os.environ.get("ORCHESTRY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
WRITE_GAP = 0.01  # between a refused write and the next attempt: a client retrying quickly


def admin(statement: str) -> None:
    """CREATE or DROP DATABASE on the PostgreSQL server (outside a transaction, as they must run)."""
    engine = sa.create_engine(
        sa.make_url(PG_URL).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


class TreeCluster(DaemonCluster):
    """A DaemonCluster whose daemons and controller LB template come from ``tree`` (a checkout)."""

    def __init__(self, base: Path, database_url: str, tree: Path, lease_ttl: int) -> None:
        super().__init__(base, database_url, size=3, lease_ttl=lease_ttl)
        self.tree = tree

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env["PYTHONPATH"] = str(self.tree)
        env["ORCHESTRY_LOG_LEVEL"] = "info"
        return env

    async def start_controller_lb(self) -> str:
        listen = f"127.0.0.1:{free_port()}"
        await asyncio.to_thread(self._start_nginx, listen)
        self.controller_listen = listen
        return f"http://{listen}"

    def _start_nginx(self, listen: str) -> None:
        """Render the tree's own template (scripts/controller_lb.py) and start nginx on it."""
        prefix = self._controller_prefix
        nodes = [arg for n in self.nodes for arg in ("--node", f"127.0.0.1:{n.port}")]
        out = subprocess.run(
            [sys.executable, str(self.tree / "scripts" / "controller_lb.py"), "--listen", listen,
             "--prefix", str(prefix), *nodes],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        subprocess.run(
            ["nginx", "-p", str(prefix), "-c", out.stdout.strip(), "-e", str(prefix / "error.log")],
            check=True, start_new_session=True,
        )  # fmt: skip


async def write(lb: str, app: str, replicas: int) -> Answer:
    return await call(f"{lb}/api/v1/apps/{app}/scale", "POST", {"replicas": replicas}, timeout=10)


def answered_by(answer: Answer) -> str:
    """The upstream that answered (nginx lists every one it tried; the last one answered)."""
    return answer.headers.get("X-Orchestry-Node", "").split(",")[-1].strip()


async def _answers(url: str) -> bool:
    return (await call(f"{url}/health", timeout=3)).status == 200


def lease_left(engine: sa.Engine) -> float:
    """Seconds the newest term's lease has left, by the database clock."""
    with engine.connect() as conn:
        return float(
            conn.execute(
                sa.text(
                    "SELECT expires_at - EXTRACT(EPOCH FROM clock_timestamp()) FROM leader_lease "
                    "ORDER BY term DESC LIMIT 1"
                )
            ).scalar_one()
        )


async def one_run(
    cluster: TreeCluster, lb: str, app: str, sig: signal.Signals, db: sa.Engine
) -> tuple[float, float]:
    """Seconds from the signal to a write accepted by another node, and the lease left at the signal."""
    leader = await cluster.wait_leader(timeout=60)
    # Every node up and following before the signal (a restarted node may still be catching up).
    for node in cluster.nodes:
        await wait_for(lambda url=node.url: _answers(url), timeout=60)
    replicas = 1
    answer = await write(lb, app, replicas)
    assert answer.status == 200, f"the leader did not take a write before the signal: {answer}"
    old = f"127.0.0.1:{leader.port}"
    asked = time.monotonic()
    left = await asyncio.to_thread(lease_left, db)
    started = time.monotonic()
    left -= started - asked
    leader.send(sig)
    while True:
        replicas = 3 - replicas
        answer = await write(lb, app, replicas)
        if answer.status == 200 and answered_by(answer) != old:
            elapsed = time.monotonic() - started
            break
        if time.monotonic() - started > 4 * cluster.lease_ttl + 30:
            raise AssertionError(f"no write accepted by another node after {sig.name}: {answer}")
        await asyncio.sleep(WRITE_GAP)
    await asyncio.to_thread(leader.process.wait)
    await cluster.restart(leader)
    return elapsed, left


async def measure(tree: Path, label: str, runs: int, ttl: int) -> dict[str, list[float]]:
    name = f"orchestry_bench_handover_{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(admin, f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    figures: dict[str, list[float]] = {"SIGTERM": [], "SIGKILL": [], "after expiry": []}
    db = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg2"))
    with tempfile.TemporaryDirectory(prefix="bench-handover-") as tmp:
        cluster = TreeCluster(Path(tmp), url, tree, ttl)
        try:
            await cluster.start()
            lb = await cluster.start_controller_lb()
            app = f"handover-{uuid.uuid4().hex[:8]}"
            cluster.apps.add(app)
            answer = await call(f"{lb}/api/v1/apps", "POST", demo_app(app))
            assert answer.status in (200, 201), answer
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for i in range(runs):
                    seconds, left = await one_run(cluster, lb, app, sig, db)
                    figures[sig.name].append(seconds)
                    if sig == signal.SIGKILL:
                        figures["after expiry"].append(seconds - left)
                    print(
                        f"  {label}: {sig.name} run {i + 1}: write accepted after {seconds:.3f} s "
                        f"(the lease had {left:.3f} s left)"
                    )
        finally:
            await cluster.close()
            db.dispose()
            await asyncio.to_thread(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return figures


def export_tree(rev: str, into: Path) -> Path:
    """``rev`` of this repository as plain files (no worktree registered), with alembic and scripts."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per signal (median reported)")
    parser.add_argument("--ttl", type=int, default=5, help="leader lease TTL, seconds")
    parser.add_argument("--baseline", default="", help="git revision to measure first, side by side")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  (each run as it ends)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-handover-tree-") as tree_dir:
        if args.baseline:
            tree = export_tree(args.baseline, Path(tree_dir))
            results[f"baseline {args.baseline}"] = asyncio.run(
                measure(tree, f"baseline {args.baseline}", args.runs, args.ttl)
            )
        results["this tree"] = asyncio.run(measure(ROOT, "this tree", args.runs, args.ttl))
    print(f"\nthree daemons on PostgreSQL, lease TTL {args.ttl} s, write through the controller LB; "
          f"median of {args.runs} (min–max)")  # fmt: skip
    columns = ("SIGTERM", "SIGKILL", "after expiry")
    print(f"{'':24}" + "".join(f"{c + ' → write (s)':>26}" for c in columns))
    for label, figures in results.items():
        cells = [
            f"{statistics.median(v):.3f} ({min(v):.2f}–{max(v):.2f})" if v else "-"
            for v in (figures[c] for c in columns)
        ]
        print(f"{label:24}" + "".join(f"{c:>26}" for c in cells))
    print("(after expiry: a SIGKILL's time less what the killed leader's lease still had left)")
    if len(results) == 2:
        old, new = results.values()
        for sig in columns:
            print(f"{sig}: {statistics.median(new[sig]) / statistics.median(old[sig]):.2f}× the baseline")
    print(f"goals: SIGTERM ≤ 0.3 s; SIGKILL ≤ TTL + 1 s = {args.ttl + 1} s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
