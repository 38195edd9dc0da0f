"""API latency under load: RPS and p50/p99 of GET /health and GET /apps with 50 apps registered,
first on a quiet engine, then while a scale of one app to 10 replicas is running.

    .venv/bin/python bench/api.py [--seconds 5] [--concurrency 8]

Needs Docker, nginx and the demo image (``scripts/build_demo_image.sh``).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
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
from core.engine import Engine
from testkit.harness import demo_app, engine_settings, wait_for

APPS = 50


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


async def hammer(pool: ProcessPoolExecutor, url: str, seconds: float, concurrency: int) -> list[float]:
    """Load from a separate process, so the client does not steal the server's event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, load_in_process, url, seconds, concurrency)


def report(label: str, latencies: list[float], seconds: float) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label:<34} {len(ordered) / seconds:8.0f} req/s   p50 {statistics.median(ordered) * 1000:6.2f} ms"
        f"   p99 {p99 * 1000:6.2f} ms   max {ordered[-1] * 1000:7.2f} ms"
    )


async def main(seconds: float, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state"))
        await engine.start()
        runner = web.AppRunner(create_app(engine, engine.node_id), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        prefix = f"bench-{uuid.uuid4().hex[:6]}"
        names = [f"{prefix}-{i}" for i in range(APPS)]
        try:
            await wait_for(lambda: engine.cluster.is_leader(), timeout=20, what="leadership")
            for name in names:
                await engine.register(demo_app(name))
            print(f"{APPS} apps registered; {concurrency} concurrent clients, {seconds:g} s per run")
            with ProcessPoolExecutor(1) as pool:
                for path in ("/health", "/apps"):
                    report(
                        f"GET {path} (quiet)",
                        await hammer(pool, base + path, seconds, concurrency),
                        seconds,
                    )
                await engine.up(names[0])
                for path in ("/health", "/apps"):
                    target = 10 if path == "/health" else 1  # scale out, then back in
                    scale = asyncio.create_task(engine.scale(names[0], target))
                    latencies = await hammer(pool, base + path, seconds, concurrency)
                    await scale
                    direction = "1→10" if target == 10 else "10→1"
                    report(f"GET {path} (scale {direction} running)", latencies, seconds)
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
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.concurrency))
