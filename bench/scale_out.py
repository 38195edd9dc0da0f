"""Scale-out benchmark: Orchestry vs `docker-compose up -d --scale` on the same image.

Orchestry's clock stops when every replica is healthy *and* routed through nginx (each one has
answered a request through the load balancer); compose's stops when the containers are running.
Each round runs Orchestry's cases and then compose's, so both see the same load on a shared machine.
Prints medians of N runs, the ratio, and where each new replica's time goes (median offsets from the
scale call: planned, created, started, first probe, first passing probe, routed = the nginx reload
that includes it, answered = first answer through nginx).  Asserts nothing (machines are noisy).

    .venv/bin/python bench/scale_out.py [--runs 7]
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
from core.timeline import STAGES, ReplicaTimeline  # noqa: E402
from testkit.harness import demo_app, docker, engine_settings  # noqa: E402

COMPOSE_FILE = ROOT / "compose" / "docker-compose.bench.yml"
ANSWERED = "answered"
TIMED_CASES = ("1→10", "0→10")
POLLERS = 8  # concurrent clients polling through nginx


async def replicas_answering(url: str, expected: int, timeout: float = 60.0) -> dict[str, float]:
    """Poll through nginx until ``expected`` distinct replicas have answered; each one's first answer
    (perf_counter).

    POLLERS clients each send one request after another, independently: a request that waits (busybox
    httpd's listen backlog is 9, and a dropped SYN is retried after a second) holds up only its own
    client, not a whole round of them, so a replica's first answer is seen when nginx routes to it."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:

        async def poller() -> None:
            while len(seen) < expected and time.monotonic() < deadline:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            name = (await resp.text()).split("replica=")[-1].split()[0]
                            seen.setdefault(name, time.perf_counter())
                            continue
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.005)  # not routed yet (404/502): no busy loop against nginx

        await asyncio.gather(*(poller() for _ in range(POLLERS)))
    if len(seen) < expected:
        raise RuntimeError(f"only {len(seen)} of {expected} replicas answered through nginx")
    return seen


async def wait_live(engine: Engine, name: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        containers = await engine.runtime.list_managed(name)
        view = await engine.get_app(name)
        if len(containers) == count and view.ready_replicas == count:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{name} did not reach {count} replicas")


Offsets = dict[str, dict[str, float]]  # replica name → stage → seconds after the scale call


async def scale_and_route(
    engine: Engine, name: str, url: str, timeline: ReplicaTimeline
) -> tuple[float, Offsets]:
    """Scale ``name`` to ten and wait until ten replicas answer through nginx: the time, and each new
    replica's stages as offsets from the scale call."""
    timeline.clear()
    started = time.perf_counter()
    await engine.scale(name, 10)
    answered = await replicas_answering(url, 10)
    # The clock stops at the tenth replica's first answer through nginx.
    elapsed = max(answered.values()) - started
    offsets: Offsets = {}
    for replica, stages in timeline.by_replica().items():
        row = {stage: at - started for stage, at in stages.items()}
        if replica in answered:
            row[ANSWERED] = answered[replica] - started
        offsets[replica] = row
    return elapsed, offsets


async def orchestry_round(
    engine: Engine,
    name: str,
    timeline: ReplicaTimeline,
    results: dict[str, list[float]],
    lines: dict[str, list[Offsets]],
) -> None:
    url = f"http://{engine.settings.lb_listen}/{name}/"
    elapsed, offsets = await scale_and_route(engine, name, url, timeline)
    results["1→10"].append(elapsed)
    lines["1→10"].append(offsets)

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
    elapsed, offsets = await scale_and_route(engine, name, url, timeline)
    results["0→10"].append(elapsed)
    lines["0→10"].append(offsets)
    await engine.scale(name, 1)
    await wait_live(engine, name, 1)


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


def compose_round(project: str, results: dict[str, list[float]]) -> None:
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


async def all_runs(
    runs: int,
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[Offsets]]]:
    ours: dict[str, list[float]] = {"1→10": [], "0→10": [], "10→1": [], "crash→routed": []}
    theirs: dict[str, list[float]] = {"1→10": [], "0→10": []}
    lines: dict[str, list[Offsets]] = {case: [] for case in TIMED_CASES}
    timeline = ReplicaTimeline()
    project = f"obench{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state", drain_timeout=5.0))
        await engine.start()
        engine.reconciler.record_timeline(timeline)
        name = f"bench-{uuid.uuid4().hex[:6]}"
        try:
            await engine.register(
                demo_app(name, scaling={"mode": "manual", "minReplicas": 0, "maxReplicas": 10})
            )
            await engine.up(name)
            await wait_live(engine, name, 1)
            for _ in range(runs):
                await orchestry_round(engine, name, timeline, ours, lines)
                await asyncio.to_thread(compose_round, project, theirs)
        finally:
            await engine.stop(stop_apps=True)
            await asyncio.to_thread(
                subprocess.run,
                ["docker-compose", "-p", project, "-f", str(COMPOSE_FILE), "down", "-t", "1"],
                capture_output=True,
            )
    return ours, theirs, lines


def _slot(replica: str) -> int:
    return int(replica.rsplit("-", 1)[-1])


def print_timeline(case: str, runs: list[Offsets]) -> None:
    """Per new replica (by slot) the median offset of each stage over the runs, and the last replica's."""
    columns = [*STAGES, ANSWERED]
    print(
        f"\n{case}: where each new replica's time goes (ms after the scale call, median of {len(runs)} runs)"
    )
    print(f"{'replica':<9}" + "".join(f"{c:>13}" for c in columns))
    slots = sorted({_slot(r) for offsets in runs for r in offsets})

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:>13.0f}" if values else f"{'-':>13}"

    for slot in slots:
        rows = [row for offsets in runs for r, row in offsets.items() if _slot(r) == slot]
        print(
            f"{'slot ' + str(slot):<9}" + "".join(cell([row[c] for row in rows if c in row]) for c in columns)
        )
    last = [
        [
            max(row[c] for row in offsets.values() if c in row)
            for offsets in runs
            if any(c in row for row in offsets.values())
        ]
        for c in columns
    ]
    print(f"{'last':<9}" + "".join(cell(values) for values in last))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ours, theirs, lines = asyncio.run(all_runs(args.runs))
    print(f"scale benchmark, median of {args.runs} runs (seconds); rounds alternate Orchestry and compose")
    print(f"{'case':<14}{'orchestry':>12}{'compose':>12}{'ratio':>9}")
    for case, values in ours.items():
        mine = statistics.median(values)
        base = statistics.median(theirs[case]) if case in theirs else None
        ratio = f"{mine / base:.2f}x" if base else "-"
        base_text = f"{base:.3f}" if base else "-"
        print(f"{case:<14}{mine:>12.3f}{base_text:>12}{ratio:>9}")
    print("orchestry waits for health checks and nginx routing; compose only for 'running'.")
    for case in TIMED_CASES:
        print_timeline(case, lines[case])


if __name__ == "__main__":
    main()
