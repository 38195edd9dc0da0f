"""Controller footprint: CPU and memory of the engine process while it manages 10 apps × 10 idle demo
replicas, and the cost of one metrics sample per replica (cgroup fast path vs the Docker API).

The engine runs in this process with the production intervals (Settings defaults for the scaler,
metrics and relist periods), every app in auto mode so the scaling loop evaluates all of them.  During
the measured period this script only sleeps and reads /proc/self once a second, so the figures are the
engine's own: CPU from utime + stime in /proc/self/stat (all threads, the Docker executor included),
memory from VmRSS in /proc/self/status.  nginx and the containers are other processes and not counted.
Prints figures beside the goals; asserts nothing.

    .venv/bin/python bench/footprint.py [--seconds 60] [--apps 10] [--replicas 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.engine import Engine  # noqa: E402
from core.metrics.cgroup import CgroupLocator, read_cgroups  # noqa: E402
from core.net.connections import PROC_NET_TCP_FILES, count_established, established_connections  # noqa: E402
from core.settings import Settings  # noqa: E402
from testkit.harness import demo_app, engine_settings  # noqa: E402

CPU_GOAL_PERCENT = 3.0
RSS_GOAL_MB = 150.0
API_SAMPLE_CONTAINERS = 10  # the Docker API waits ~1-2 s per sample: a subset tells the per-replica cost


def production_intervals() -> dict[str, Any]:
    fields = Settings.model_fields
    keys = ("scaler_interval", "metrics_interval", "relist_interval", "lease_ttl")
    return {key: fields[key].default for key in keys}


def cpu_seconds() -> float:
    # Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} is missing from /proc/self/status")


def app_document(name: str, replicas: int) -> dict[str, Any]:
    return demo_app(
        name,
        scaling={"mode": "auto", "minReplicas": replicas, "maxReplicas": replicas * 2, "windowSeconds": 60},
        healthCheck={"path": "/health", "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3},
    )


async def all_ready(engine: Engine, names: list[str], replicas: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = await asyncio.gather(*(engine.get_app(n) for n in names))
        if all(v.ready_replicas == replicas for v in views):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"not every app reached {replicas} ready replicas within {timeout:.0f} s")


async def measure_idle(engine: Engine, seconds: float) -> dict[str, float]:
    sample_costs: list[float] = []
    rss: list[int] = []
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    last_sample_at = engine.metrics.last_sample_at
    end = wall_before + seconds
    while (now := time.monotonic()) < end:
        await asyncio.sleep(min(1.0, end - now))
        rss.append(status_kib("VmRSS"))
        if engine.metrics.last_sample_at != last_sample_at and engine.metrics.last_sample_seconds is not None:
            last_sample_at = engine.metrics.last_sample_at
            sample_costs.append(engine.metrics.last_sample_seconds)
    cpu_after, wall_after = cpu_seconds(), time.monotonic()
    return {
        "cpu_percent": (cpu_after - cpu_before) / (wall_after - wall_before) * 100.0,
        "rss_mb_mean": statistics.mean(rss) / 1024,
        "rss_mb_max": max(rss) / 1024,
        "hwm_mb": status_kib("VmHWM") / 1024,
        "collector_sample_ms": statistics.median(sample_costs) * 1000 if sample_costs else float("nan"),
    }


async def sample_costs(engine: Engine, names: list[str], container_ids: list[str]) -> dict[str, float]:
    """One sample's parts: all replicas through cgroup files, a subset through the API, and the count of
    nginx → replica connections (netlink sock_diag, beside the /proc/net/tcp scan it replaced)."""
    locator = CgroupLocator()
    await asyncio.to_thread(read_cgroups, locator, container_ids)  # locate once, as the collector does
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        readings = await asyncio.to_thread(read_cgroups, locator, container_ids)
    cgroup_wall = (time.perf_counter() - started) / rounds
    ports = [t.port for name in names for t in engine.metrics.targets(name)]
    started = time.perf_counter()
    for _ in range(rounds):
        await asyncio.to_thread(established_connections, ports, "127.0.0.1")
    connections_wall = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        text = await asyncio.to_thread(PROC_NET_TCP_FILES[0].read_text)
        count_established(text, ports)
    proc_wall = (time.perf_counter() - started) / rounds
    tcp_rows = sum(len(path.read_text().splitlines()) - 1 for path in PROC_NET_TCP_FILES if path.exists())
    subset = container_ids[:API_SAMPLE_CONTAINERS]
    started = time.perf_counter()
    from_api = await engine.runtime.stats(subset)
    api_wall = time.perf_counter() - started
    return {
        "cgroup_found": len(readings),
        "cgroup_sample_ms": cgroup_wall * 1000,
        "cgroup_per_replica_us": cgroup_wall / max(1, len(container_ids)) * 1e6,
        "api_found": len(from_api),
        "api_sample_ms": api_wall * 1000,
        "api_per_replica_ms": api_wall / max(1, len(subset)) * 1000,
        "connections_ms": connections_wall * 1000,
        "connections_proc_ms": proc_wall * 1000,
        "tcp_rows": tcp_rows,
    }


async def run(seconds: float, apps: int, replicas: int) -> None:
    intervals = production_intervals()
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state", **intervals))
        await engine.start()
        names = [f"fp{index}-{uuid.uuid4().hex[:6]}" for index in range(apps)]
        try:
            for name in names:
                await engine.register(app_document(name, replicas))
            started = time.monotonic()
            await asyncio.gather(*(engine.up(name) for name in names))
            await all_ready(engine, names, replicas)
            print(
                f"{apps} apps × {replicas} replicas ready in {time.monotonic() - started:.1f} s "
                f"(scaler every {intervals['scaler_interval']:g} s, metrics every "
                f"{intervals['metrics_interval']:g} s, relist every {intervals['relist_interval']:g} s)"
            )
            await asyncio.sleep(5)  # let start-up work (first probes, reloads) finish before measuring
            idle = await measure_idle(engine, seconds)
            containers = [c.id for name in names for c in await engine.runtime.list_managed(name)]
            costs = await sample_costs(engine, names, containers)
            sources = engine.metrics._sampler.last_sources  # diagnostics only: which path served
        finally:
            await engine.stop(stop_apps=True)

    cgroup_count = sum(1 for source in sources.values() if source == "cgroup")
    print(f"\ncontroller idle for {seconds:.0f} s managing {len(containers)} replicas")
    print(f"{'figure':<44}{'value':>12}   goal")
    print(f"{'CPU, % of one core':<44}{idle['cpu_percent']:>12.2f}   < {CPU_GOAL_PERCENT:g} %")
    print(f"{'RSS, MB (mean over the period)':<44}{idle['rss_mb_mean']:>12.1f}   < {RSS_GOAL_MB:g} MB")
    print(f"{'RSS, MB (max over the period)':<44}{idle['rss_mb_max']:>12.1f}")
    print(f"{'peak RSS since start (VmHWM), MB':<44}{idle['hwm_mb']:>12.1f}")
    print(f"{'collector: one sample of all replicas, ms':<44}{idle['collector_sample_ms']:>12.2f}")
    print(f"{'  replicas sampled through cgroup files':<44}{cgroup_count:>12d}")
    print("\none metrics sample")
    print(f"{'cgroup files: all replicas, ms':<44}{costs['cgroup_sample_ms']:>12.2f}")
    print(f"{'cgroup files: per replica, µs':<44}{costs['cgroup_per_replica_us']:>12.1f}")
    api_label = f"Docker API: {API_SAMPLE_CONTAINERS} replicas in parallel, ms"
    print(f"{api_label:<44}{costs['api_sample_ms']:>12.0f}")
    print(f"{'Docker API: per replica, ms':<44}{costs['api_per_replica_ms']:>12.1f}")
    print(f"{'connection count via netlink sock_diag, ms':<44}{costs['connections_ms']:>12.2f}")
    rows_label = f"  same from /proc/net/tcp ({costs['tcp_rows']:.0f} rows), ms"
    ratio = costs["connections_proc_ms"] / max(costs["connections_ms"], 1e-9)
    print(f"{rows_label:<44}{costs['connections_proc_ms']:>12.2f}   ({ratio:.0f}× slower)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="idle period measured (default 60)")
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.apps, args.replicas))


if __name__ == "__main__":
    main()
