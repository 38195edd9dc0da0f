"""API latency under load: RPS and p50/p99 of GET /health, GET /apps and GET /api/v1/apps with 50 (or
--apps) apps registered, first on a quiet engine, then while a scale of one app (1→10, then 10→1) runs.

Each list is measured twice, side by side: "kept" is the daemon as it runs (the leader keeps the
encoded list while nothing it shows changes, core/api/kept_answers.py); "built" is the path before
that: the app records read from the store and every app's view built and encoded for every request.
The load comes from a separate process; CPU is this (server) process's own, per request.

    .venv/bin/python bench/api.py [--seconds 5] [--concurrency 8] [--apps 50]

Needs Docker, nginx and the demo image (``scripts/build_demo_image.sh``).  Prints figures; asserts nothing.
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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.api.app import create_app
from core.api.kept_answers import KEPT_ANSWERS, KeptAnswers
from core.engine import Engine
from testkit.harness import demo_app, engine_settings, wait_for

LIST_PATHS = ("/apps", "/api/v1/apps")


class SwitchableAnswers(KeptAnswers):
    """The daemon's kept answers, or (``keep = False``) the path before them: records from the store
    and every view built and encoded for each request."""

    def __init__(self) -> None:
        super().__init__()
        self.keep = True

    async def respond(self, engine, route, build):  # type: ignore[no-untyped-def]
        if self.keep:
            return await super().respond(engine, route, build)
        engine._c.views._records_key = None  # as before: the store is read on every request
        return await KeptAnswers().respond(_NoFingerprint(), route, build)


class _NoFingerprint:
    def apps_fingerprint(self) -> None:
        return None


async def _hammer(url: str, seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return latencies


def load_in_process(url: str, seconds: float, concurrency: int) -> list[float]:
    return asyncio.run(_hammer(url, seconds, concurrency))


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def hammer(
    pool: ProcessPoolExecutor, url: str, seconds: float, concurrency: int
) -> tuple[list[float], float]:
    """Load from a separate process, so the client does not steal the server's event loop; the
    latencies and the CPU seconds this (server) process spent meanwhile."""
    loop = asyncio.get_running_loop()
    before = cpu_seconds()
    latencies = await loop.run_in_executor(pool, load_in_process, url, seconds, concurrency)
    return latencies, cpu_seconds() - before


def report(label: str, measured: tuple[list[float], float], seconds: float) -> float:
    latencies, cpu = measured
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label:<44} {len(ordered) / seconds:7.0f} req/s  p50 {statistics.median(ordered) * 1000:7.2f} ms"
        f"  p99 {p99 * 1000:7.2f} ms  max {ordered[-1] * 1000:7.2f} ms"
        f"  CPU {cpu / len(ordered) * 1e6:6.0f} µs/req"
    )
    return p99


async def main(seconds: float, concurrency: int, apps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state"))
        await engine.start()
        api = create_app(engine, engine.node_id)
        answers = api[KEPT_ANSWERS] = SwitchableAnswers()
        runner = web.AppRunner(api, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        prefix = f"bench-{uuid.uuid4().hex[:6]}"
        names = [f"{prefix}-{i}" for i in range(apps)]
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        try:
            await wait_for(lambda: engine.cluster.is_leader(), timeout=20, what="leadership")
            for name in names:
                await engine.register(demo_app(name))
            print(
                f"{apps} apps registered; {concurrency} concurrent clients, {seconds:g} s per run;"
                f" {os.cpu_count()} CPUs, load average {load} (shared machine: compare side by side)"
            )
            with ProcessPoolExecutor(1) as pool:
                report(
                    "GET /health (quiet)", await hammer(pool, base + "/health", seconds, concurrency), seconds
                )
                ratios = []
                for path in LIST_PATHS:
                    p99 = {}
                    for keep in (False, True):
                        answers.keep = keep
                        label = f"GET {path} (quiet, {'kept' if keep else 'built'})"
                        p99[keep] = report(
                            label, await hammer(pool, base + path, seconds, concurrency), seconds
                        )
                    ratios.append(f"{path} quiet p99 kept/built {p99[True] / p99[False]:.2f}×")
                await engine.up(names[0])
                target = 10
                for path in LIST_PATHS:
                    for keep in (False, True):
                        answers.keep = keep
                        scale = asyncio.create_task(engine.scale(names[0], target))
                        measured = await hammer(pool, base + path, seconds, concurrency)
                        await scale
                        direction = "1→10" if target == 10 else "10→1"
                        report(
                            f"GET {path} (scale {direction}, {'kept' if keep else 'built'})",
                            measured,
                            seconds,
                        )
                        target = 1 if target == 10 else 10
                print("; ".join(ratios))
        finally:
            for name in names:
                try:
                    await engine.delete(name)
                except Exception as exc:  # keep cleaning up the rest
                    print(f"cleanup of {name} failed: {exc}", file=sys.stderr)
            await runner.cleanup()
            await engine.stop(stop_apps=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--apps", type=int, default=50)
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.concurrency, options.apps))
