"""Cost growth past one host: the REAL engine (reconciler, health scheduling, metrics windows, scaler,
store, API) on the in-memory runtime with simulated replicas, at 100, 1,000 and 10,000 replicas
(10 replicas per app: 10 to 1,000 apps).

Each size runs in its own process (so RSS is that size's own), with the production intervals
(Settings defaults for the scaler, metrics and relist periods), every app in auto mode (the scaler
evaluates all of them) and health checks every 10 s.  After every replica is ready and routed, the
process only sleeps for the measured period; then it times the API.  Printed per size:

- CPU per replica per second: process utime + stime (all threads: the store's too) over the period,
  divided by replicas and seconds (µs of CPU per replica per wall second), and the whole process's %;
- RSS per replica: (VmRSS after the period − VmRSS of the started engine before any app) / replicas;
- reconcile pass p50/p99 (wall time of one app's pass, relists and wakes during the period);
- one metrics sample (wall time of the collector's sample of every replica);
- ``GET /apps`` and ``GET /api/v1/apps`` p50/p99 over sequential requests (wall), and bytes answered.

Then the growth ratio of each per-replica figure from the smallest to the largest size (goal: within
1.5×) and the 10,000-replica totals beside the goals (one core, 1 GB).  Asserts nothing.

With ``--baseline TREE`` the largest size is measured in that checkout too, and its figures printed
beside this tree's; ``--tree TREE`` measures another checkout instead of this one.  Each size's line
names the tree and commit its child really ran (bench/_children.py).

    .venv/bin/python bench/fleet.py [--sizes 100,1000,10000] [--seconds 30] [--tree T] [--baseline T]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _children import add_tree_arguments, enter_tree, ran_from, ran_line, run_child

REPLICAS_PER_APP = 10
HEALTH_PERIOD_SECONDS = 10
API_REQUESTS = 20
FLAT_GOAL = 1.5
CPU_GOAL_PERCENT = 100.0  # one core
RSS_GOAL_MB = 1024.0


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("VmRSS is missing from /proc/self/status")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def app_document(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {
            "image": "orchestry/demo:latest",
            "command": ["/bin/serve"],
            "ports": [{"containerPort": 8080}],
            "terminationGracePeriodSeconds": 5,
        },
        "scaling": {
            "mode": "auto",
            "minReplicas": REPLICAS_PER_APP,
            "maxReplicas": REPLICAS_PER_APP * 2,
            "windowSeconds": 60,
        },
        "healthCheck": {
            "path": "/health",
            "periodSeconds": HEALTH_PERIOD_SECONDS,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
    }


async def timed_gets(url: str, count: int) -> tuple[list[float], int]:
    import aiohttp

    latencies: list[float] = []
    size = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.get(url) as response:
                body = await response.read()
                assert response.status == 200, (url, response.status)
            latencies.append(time.perf_counter() - started)
            size = len(body)
    return latencies, size


async def measure(replicas: int, seconds: float, profile_to: str | None = None) -> dict[str, Any]:
    """One size, in this process: start, fill, settle, measure (``profile_to``: cProfile statistics of
    the measured period and the API requests, written to that file)."""
    from aiohttp import web
    from memory_fleet_engine import memory_fleet_engine

    from core.api.app import create_app

    apps = max(1, replicas // REPLICAS_PER_APP)
    with tempfile.TemporaryDirectory(prefix="orchestry-fleet-") as tmp:
        engine, _ = memory_fleet_engine(Path(tmp) / "state", "fleet")
        await engine.start()
        rss_empty = rss_kib()
        fill_started = time.perf_counter()
        fill_cpu = cpu_seconds()
        names = [f"fleet-{i:04d}" for i in range(apps)]
        for name in names:
            await engine.register(app_document(name))
        up_failures: list[str] = []
        for batch in range(0, apps, 50):
            answers = await asyncio.gather(
                *(engine.up(n) for n in names[batch : batch + 50]), return_exceptions=True
            )
            # A failed `up` is what a user applying many apps at once would see: count it, say why,
            # and ask again so the fill still completes.
            for name, answer in zip(names[batch : batch + 50], answers, strict=True):
                if isinstance(answer, BaseException):
                    up_failures.append(f"{name}: {type(answer).__name__}: {answer}")
                    await engine.up(name)
        deadline = time.monotonic() + 600
        while sum(engine.reconciler.ready_count(n) for n in names) < replicas:
            if time.monotonic() > deadline:
                raise RuntimeError("the fleet never became ready")
            await asyncio.sleep(0.5)
        fill_seconds = time.perf_counter() - fill_started
        fill_cpu = cpu_seconds() - fill_cpu
        # The SQLite store's write queue (absent in trees before it, and on PostgreSQL).
        writers = getattr(engine.store.database, "sqlite_writers", None)
        fill_writes = writers.writes if writers is not None else float("nan")
        fill_longest_wait = writers.longest_wait if writers is not None else float("nan")

        passes: list[float] = []
        reconciler = engine.reconciler
        original_pass = reconciler._pass

        async def timed_pass(state: Any, intent: Any) -> dict[str, int]:
            started = time.perf_counter()
            try:
                return await original_pass(state, intent)
            finally:
                passes.append(time.perf_counter() - started)

        reconciler._pass = timed_pass  # type: ignore[method-assign]
        samples: list[float] = []
        last_sample_at = engine.metrics.last_sample_at
        # Let the first relist after the fill pass, then measure a quiet period.
        await asyncio.sleep(2.0)
        profile = cProfile.Profile() if profile_to else None
        if profile is not None:
            profile.enable()
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        end = wall_before + seconds
        while (now := time.monotonic()) < end:
            await asyncio.sleep(min(0.5, end - now))
            seen = engine.metrics.last_sample_at
            if seen != last_sample_at and engine.metrics.last_sample_seconds is not None:
                last_sample_at = seen
                samples.append(engine.metrics.last_sample_seconds)
        cpu_used, wall_used = cpu_seconds() - cpu_before, time.monotonic() - wall_before
        rss_full = rss_kib()

        runner = web.AppRunner(create_app(engine, engine.node_id), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        legacy, legacy_bytes = await timed_gets(f"{base}/apps", API_REQUESTS)
        v1, v1_bytes = await timed_gets(f"{base}/api/v1/apps", API_REQUESTS)
        if profile is not None:
            profile.disable()
            profile.dump_stats(profile_to)
        await runner.cleanup()
        await engine.stop(stop_apps=False)
    return {
        "replicas": replicas,
        "apps": apps,
        "fill_seconds": fill_seconds,
        "fill_cpu": fill_cpu,
        "up_failures": len(up_failures),
        "up_failure_examples": up_failures[:3],
        "fill_writes": fill_writes,
        "fill_write_wait_max_ms": fill_longest_wait * 1000,
        "cpu_percent": cpu_used / wall_used * 100,
        "cpu_us_per_replica_s": cpu_used / wall_used / replicas * 1e6,
        "rss_mb": rss_full / 1024,
        "rss_kb_per_replica": (rss_full - rss_empty) / replicas,
        "pass_p50_ms": statistics.median(passes) * 1000 if passes else float("nan"),
        "pass_p99_ms": percentile(passes, 0.99) * 1000,
        "passes": len(passes),
        "sample_ms": statistics.median(samples) * 1000 if samples else float("nan"),
        "legacy_p50_ms": statistics.median(legacy) * 1000,
        "legacy_p99_ms": percentile(legacy, 0.99) * 1000,
        "legacy_kb": legacy_bytes / 1024,
        "v1_p50_ms": statistics.median(v1) * 1000,
        "v1_p99_ms": percentile(v1, 0.99) * 1000,
        "v1_kb": v1_bytes / 1024,
    }


def run_size(replicas: int, seconds: float, tree: Path, label: str = "") -> dict[str, Any]:
    """One size in a child process running ``tree``; prints its header line."""
    started = time.perf_counter()
    args = ["--child", str(replicas), "--seconds", str(seconds)]
    row = run_child(Path(__file__), tree, args, f"{replicas}-replica{label}")
    wall = time.perf_counter() - started
    print(
        f"  {replicas} replicas{label}: {ran_line(row)},"
        f" measured in {wall:.0f} s wall (load {load_average()})",
        flush=True,
    )
    print(
        f"    fill: {row['up_failures']} of {row['apps']} `up` calls failed"
        f"; {row['fill_writes']} SQLite writes since the start,"
        f" longest wait for a turn {row['fill_write_wait_max_ms']:.1f} ms",
        flush=True,
    )
    for example in row["up_failure_examples"]:
        print(f"      {example}", flush=True)
    return row


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"\n{'replicas':>8} {'apps':>5} {'fill s':>7} {'CPU %':>6} {'µs CPU/rep/s':>12} {'RSS MB':>7}"
        f" {'KB/rep':>7} {'pass p50':>9} {'pass p99':>9} {'sample':>8} {'/apps p50':>10} {'/apps p99':>10}"
        f" {'v1 p99':>9} {'v1 KB':>8}"
    )
    for r in rows:
        print(
            f"{r['replicas']:>8} {r['apps']:>5} {r['fill_seconds']:>7.1f} {r['cpu_percent']:>6.1f}"
            f" {r['cpu_us_per_replica_s']:>12.1f} {r['rss_mb']:>7.0f} {r['rss_kb_per_replica']:>7.1f}"
            f" {r['pass_p50_ms']:>7.2f}ms {r['pass_p99_ms']:>7.2f}ms {r['sample_ms']:>6.1f}ms"
            f" {r['legacy_p50_ms']:>8.1f}ms {r['legacy_p99_ms']:>8.1f}ms {r['v1_p99_ms']:>7.1f}ms"
            f" {r['v1_kb']:>8.0f}"
        )
    first, last = rows[0], rows[-1]
    goal = f"goal: per-replica cost within {FLAT_GOAL}×"
    print(f"\ngrowth {first['replicas']} → {last['replicas']} replicas ({goal})")
    for key, label in (
        ("cpu_us_per_replica_s", "CPU per replica per second"),
        ("rss_kb_per_replica", "RSS per replica"),
    ):
        ratio = last[key] / first[key] if first[key] else float("nan")
        print(f"  {label:<28} {ratio:5.2f}×  {'ok' if ratio <= FLAT_GOAL else 'OVER'}")
    scale = last["replicas"] / first["replicas"]
    for key, label in (
        ("pass_p99_ms", "reconcile pass p99 (per app)"),
        ("sample_ms", "metrics sample / replica"),
        ("legacy_p99_ms", "/apps p99 / replica"),
    ):
        per_app = key == "pass_p99_ms"  # a pass covers one app: its size does not grow
        ratio = last[key] / first[key] / (1 if per_app else scale) if first[key] else float("nan")
        print(f"  {label:<28} {ratio:5.2f}×")
    print(
        f"\nat {last['replicas']} replicas: {last['cpu_percent']:.1f} % of one core"
        f" (goal < {CPU_GOAL_PERCENT:.0f} %),"
        f" RSS {last['rss_mb']:.0f} MB (goal < {RSS_GOAL_MB:.0f} MB)"
    )


def print_baseline(ours: dict[str, Any], base: dict[str, Any], baseline: Path) -> None:
    print(f"\nat {ours['replicas']} replicas, this tree beside the baseline ({baseline}):")
    print(f"  {'':<30} {'this':>10} {'baseline':>10} {'this/base':>10}")
    for key, label in (
        ("fill_seconds", "fill, s wall"),
        ("fill_cpu", "fill, s CPU"),
        ("up_failures", "fill, failed `up` calls"),
        ("cpu_percent", "CPU % of one core"),
        ("cpu_us_per_replica_s", "µs CPU per replica per s"),
        ("rss_mb", "RSS MB"),
        ("rss_kb_per_replica", "RSS KB per replica"),
        ("pass_p50_ms", "reconcile pass p50 ms"),
        ("pass_p99_ms", "reconcile pass p99 ms"),
        ("sample_ms", "metrics sample ms"),
        ("legacy_p50_ms", "/apps p50 ms"),
        ("legacy_p99_ms", "/apps p99 ms"),
        ("v1_p99_ms", "/api/v1/apps p99 ms"),
    ):
        ratio = f"{ours[key] / base[key]:9.2f}×" if base[key] else f"{'':>10}"
        print(f"  {label:<30} {ours[key]:>10.2f} {base[key]:>10.2f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--seconds", type=float, default=30.0)
    add_tree_arguments(parser, "another checkout (e.g. /work/main) measured at the largest size too")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", help="with --child: write the run's cProfile statistics to this file")
    args = parser.parse_args()
    if args.child:
        import logging

        enter_tree(args.tree)
        logging.basicConfig(level=logging.WARNING)
        result = asyncio.run(measure(args.child, args.seconds, args.profile))
        print(json.dumps({**result, "ran": ran_from(args.tree)}))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"fleet bench: {REPLICAS_PER_APP} replicas per app, health every {HEALTH_PERIOD_SECONDS} s,"
        f" production scaler/metrics/relist intervals, {args.seconds:.0f} s measured per size;"
        f" {os.cpu_count()} CPUs,"
        f" load average {load_average()} at start (shared machine: CPU figures are this process's own)"
    )
    rows = [run_size(size, args.seconds, args.tree) for size in sizes]
    base = None
    if args.baseline is not None:
        base = run_size(sizes[-1], args.seconds, args.baseline, " (baseline)")
    print_table(rows)
    if base is not None:
        print_baseline(rows[-1], base, args.baseline)


if __name__ == "__main__":
    main()
