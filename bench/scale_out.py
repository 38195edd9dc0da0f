"""Scale-out benchmark: Orchestry vs `docker-compose up -d --scale` on the same image.

Orchestry's clock stops when every replica is healthy *and* routed through nginx (each one has
answered a request through the load balancer); compose's stops when the containers are running.
Prints medians of N runs and the ratio; asserts nothing (machines are shared and noisy).

    .venv/bin/python bench/scale_out.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.engine import Engine  # noqa: E402
from testkit.harness import demo_app, docker, engine_settings  # noqa: E402

COMPOSE_FILE = ROOT / "compose" / "docker-compose.bench.yml"


async def replicas_answering(url: str, expected: int, timeout: float = 60.0) -> None:
    """Poll through nginx until ``expected`` distinct replicas have answered."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:

            async def one() -> None:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            seen.add((await resp.text()).split("replica=")[-1].split()[0])
                except (aiohttp.ClientError, TimeoutError):
                    pass

            await asyncio.gather(*(one() for _ in range(2 * expected)))
            if len(seen) >= expected:
                return
            await asyncio.sleep(0.01)
    raise RuntimeError(f"only {len(seen)} of {expected} replicas answered through nginx")


async def wait_live(engine: Engine, name: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        containers = await engine.runtime.list_managed(name)
        view = await engine.get_app(name)
        if len(containers) == count and view.ready_replicas == count:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{name} did not reach {count} replicas")


async def orchestry_runs(runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"1→10": [], "0→10": [], "10→1": [], "crash→routed": []}
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state", drain_timeout=5.0))
        await engine.start()
        name = f"bench-{uuid.uuid4().hex[:6]}"
        url = f"http://{engine.settings.lb_listen}/{name}/"
        try:
            await engine.register(
                demo_app(name, scaling={"mode": "manual", "minReplicas": 0, "maxReplicas": 10})
            )
            await engine.up(name)
            await wait_live(engine, name, 1)
            for _ in range(runs):
                started = time.perf_counter()
                await engine.scale(name, 10)
                await replicas_answering(url, 10)
                results["1→10"].append(time.perf_counter() - started)

                [victim] = (await engine.runtime.list_managed(name))[:1]
                started = time.perf_counter()
                await docker("kill", victim.id)
                await wait_live(engine, name, 10)
                await replicas_answering(url, 10)
                results["crash→routed"].append(time.perf_counter() - started)

                started = time.perf_counter()
                await engine.scale(name, 1)
                await wait_live(engine, name, 1)
                results["10→1"].append(time.perf_counter() - started)

                await engine.scale(name, 0)
                await wait_live(engine, name, 0)
                # A crash leaves back-off state; a benchmark round starts from a clean slate.
                engine.reconciler.unblock(name)
                started = time.perf_counter()
                await engine.scale(name, 10)
                await replicas_answering(url, 10)
                results["0→10"].append(time.perf_counter() - started)
                await engine.scale(name, 1)
                await wait_live(engine, name, 1)
        finally:
            await engine.stop(stop_apps=True)
    return results


def compose(*args: str, project: str) -> None:
    subprocess.run(
        ["docker-compose", "-p", project, "-f", str(COMPOSE_FILE), *args],
        check=True,
        capture_output=True,
    )


def running_count(project: str) -> int:
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--filter",
            "status=running",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return len(out.split())


def compose_runs(runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"1→10": [], "0→10": []}
    project = f"obench{uuid.uuid4().hex[:6]}"
    try:
        for _ in range(runs):
            compose("up", "-d", "--scale", "web=1", project=project)
            started = time.perf_counter()
            compose("up", "-d", "--scale", "web=10", project=project)
            while running_count(project) < 10:
                time.sleep(0.02)
            results["1→10"].append(time.perf_counter() - started)
            compose("down", "-t", "1", project=project)
            started = time.perf_counter()
            compose("up", "-d", "--scale", "web=10", project=project)
            while running_count(project) < 10:
                time.sleep(0.02)
            results["0→10"].append(time.perf_counter() - started)
            compose("down", "-t", "1", project=project)
    finally:
        subprocess.run(
            ["docker-compose", "-p", project, "-f", str(COMPOSE_FILE), "down", "-t", "1"], capture_output=True
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours = asyncio.run(orchestry_runs(args.runs))
    theirs = compose_runs(args.runs)
    print(f"scale benchmark, median of {args.runs} runs (seconds)")
    print(f"{'case':<14}{'orchestry':>12}{'compose':>12}{'ratio':>9}")
    for case, values in ours.items():
        mine = statistics.median(values)
        base = statistics.median(theirs[case]) if case in theirs else None
        ratio = f"{mine / base:.2f}x" if base else "-"
        base_text = f"{base:.3f}" if base else "-"
        print(f"{case:<14}{mine:>12.3f}{base_text:>12}{ratio:>9}")
    print("orchestry waits for health checks and nginx routing; compose only for 'running'.")


if __name__ == "__main__":
    main()
