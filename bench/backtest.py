"""Policy backtest speed and metric-history size.

    .venv/bin/python bench/backtest.py [--repeat 3] [--postgres postgresql://postgres@127.0.0.1:5432/test]

1. One app, 7 days of 10 s records (a daily sine load): one backtest (target: under 1 s), and the
   API's work for one request (the current and a candidate policy: two backtests).
2. 50 apps, 24 h of 10 s records each: a backtest of every app (target: under 2 s).
3. The store's size per app-day at each resolution (raw at the default 5 s scaling period, 1 min
   rollups after a day, 10 min after a week), on SQLite and, when reachable, PostgreSQL; and the time to
   read 7 days of one app back (1 day raw + 6 days of minutes, as retention leaves them).

Prints figures; asserts nothing.  Times are the best of --repeat runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.backtest import backtest, synthetic_trace
from core.history import DAY, MetricSample, roll_up
from core.spec import ScalingPolicy, validate_policy_update
from core.store import Store

PERIOD = 10.0


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def best_cpu(repeat: int, work: Callable[[], object]) -> str:
    """Wall and CPU time: on a shared machine the CPU time is what the work itself costs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return f"{min(walls):.3f} s wall, {min(cpus):.3f} s CPU"


def day_of_raw(app: str, start: float, period: float) -> list[MetricSample]:
    trace = synthetic_trace("sine", ScalingPolicy(), app, start=start, period=period, duration=DAY)
    return trace


def store_figures(url: str, label: str) -> None:
    store = Store.open(url)
    try:
        policy = ScalingPolicy()
        raw = day_of_raw("size-raw", 0.0, 5.0)
        minutes = roll_up(synthetic_trace("sine", policy, "size-min", 0.0, 5.0, DAY), 60)
        tens = roll_up(synthetic_trace("sine", policy, "size-10m", 0.0, 5.0, DAY), 600)
        for samples in (raw, minutes, tens):
            for chunk in range(0, len(samples), 2000):
                store.history.add(samples[chunk : chunk + 2000])
        sizes = _bytes_per_app(store, url)
        print(f"{label}: store size per app-day")
        for app, rows, tier in (
            ("size-raw", len(raw), "raw 5 s"),
            ("size-min", len(minutes), "1 min"),
            ("size-10m", len(tens), "10 min"),
        ):
            print(f"  {tier:8} {rows:6d} rows  {sizes[app] / 1024:8.0f} KiB  ({sizes[app] / rows:.0f} B/row)")
        week = [
            *day_of_raw("week", 6 * DAY, 5.0),
            *roll_up(synthetic_trace("sine", policy, "week", 0, 5.0, 6 * DAY), 60),
        ]
        for chunk in range(0, len(week), 2000):
            store.history.add(week[chunk : chunk + 2000])
        read = best(3, lambda: store.history.range("week", 0.0))
        rows = len(store.history.range("week", 0.0))
        run = best(3, lambda: backtest(store.history.range("week", 0.0), policy))
        print(
            f"  7 days as retention keeps them ({rows} rows): read {read:.3f} s, read + backtest {run:.3f} s"
        )
    finally:
        store.close()


def _bytes_per_app(store: Store, url: str) -> dict[str, float]:
    """Bytes each app's rows take: the table's size split by row count, measured after the inserts."""
    with store.database.engine.connect() as conn:
        counts = dict(conn.execute(sa.text("SELECT app, count(*) FROM metric_samples GROUP BY app")).all())
        if store.dialect == "postgresql":
            total = conn.execute(sa.text("SELECT pg_total_relation_size('metric_samples')")).scalar_one()
        else:
            total = conn.execute(
                sa.text(
                    "SELECT sum(pgsize) FROM dbstat WHERE name IN ('metric_samples', "
                    "'ix_metric_samples_app_at', 'sqlite_autoindex_metric_samples_1')"
                )
            ).scalar_one()
    rows = sum(counts.values())
    return {app: total * n / rows for app, n in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("ORCHESTRY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (a shared machine: times are noisy)"
    )

    policy = ScalingPolicy()
    candidate = validate_policy_update(policy, {"maxReplicas": 3, "cooldownSeconds": 60})
    week = synthetic_trace("sine", policy, "web", period=PERIOD, duration=7 * DAY)
    one = best_cpu(args.repeat, lambda: backtest(week, policy))
    both = best_cpu(args.repeat, lambda: (backtest(week, policy), backtest(week, candidate)))
    print(
        f"1 app, 7 days of 10 s records ({len(week)}): backtest {one} (target < 1 s); "
        f"current + candidate {both}"
    )

    fleet = [synthetic_trace("sine", policy, f"app-{i}", period=PERIOD, duration=DAY) for i in range(50)]
    many = best_cpu(args.repeat, lambda: [backtest(samples, policy) for samples in fleet])
    print(f"50 apps, 24 h of 10 s records each ({sum(map(len, fleet))}): backtests {many} (target < 2 s)")
    # Part of that is the collector's full passes over a heap holding 432 000 records and as many
    # replica points (a NamedTuple is never untracked): shown apart so the replay's own cost is visible.
    gc.disable()
    try:
        quiet = best_cpu(args.repeat, lambda: [backtest(samples, policy) for samples in fleet])
    finally:
        gc.enable()
    print(f"  the same with the garbage collector off: {quiet}")

    with tempfile.TemporaryDirectory() as tmp:
        store_figures(f"sqlite:///{tmp}/bench.db", "SQLite")
    name = f"orchestry_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        sa.make_url(args.postgres).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable ({str(exc).splitlines()[0]}): skipped")
        return
    try:
        store_figures(str(sa.make_url(args.postgres).set(database=name)), "PostgreSQL")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
