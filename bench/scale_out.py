"""Scale-out benchmark: Orchestry vs `docker-compose up -d --scale` on the same image.

Orchestry's clock stops when every replica is healthy *and* routed through nginx (each one has
answered a request through the load balancer, polled by a client in a process of its own); compose's
stops when the containers are running.
Each round runs Orchestry's cases and then compose's, so both see the same load on a shared machine.
Orchestry's cases run twice: cold (every replica created and started) and "warm", on a second app
whose spec keeps a warm pool of ten containers created but not started (scaling.warmPool), compared
with the same compose rounds.
Prints medians of N runs, the ratio, and where each new replica's time goes (median offsets from the
scale call: planned, created, started, first probe, first passing probe, routed = the nginx reload
that includes it, answered = first answer through nginx).  Asserts nothing (machines are noisy).

Two more things per round, to say what is left to win: the Docker floor, ten containers like compose's
created and started from ten bare docker-py threads (no engine, no health check, no nginx: the least
any Docker client can do, so floor ÷ compose bounds every cold ratio; nine more, the floor of 1→10,
which creates one container fewer than 0→10; and nine more while the clients poll the app's one
replica, as they do during 1→10, which says what that traffic costs Docker), each stage of the floor
beside the engine's Docker phase (first call, last create, last start), and the CPU split of each timed
case (bench/cpu_split.py: the engine, its polling client, the compose CLI, dockerd, containerd, the
shims with runc, the replicas, nginx and the rest of the machine; medians of CPU seconds).
``--cold-only`` skips the warm-pool rounds (half the time).

    .venv/bin/python bench/scale_out.py [--runs 7] [--cold-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import docker as docker_sdk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu_split  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.timeline import CREATED, PLANNED, ROUTED, STAGES, STARTED, ReplicaTimeline  # noqa: E402
from testkit.harness import demo_app, docker, engine_settings  # noqa: E402

COMPOSE_FILE = ROOT / "compose" / "docker-compose.bench.yml"
ANSWERED = "answered"
TIMED_CASES = ("1→10", "0→10", "1→10 warm", "0→10 warm")
COLD_CASES = ("1→10", "0→10")
FLOOR = "docker floor"
# The floor of what 1→10 creates: nine containers.  0→10 creates one more than 1→10; the two floors say
# what that one costs Docker, a difference no engine can take away.
FLOOR_NINE = "docker floor 9"
# The floor of 1→10 again, while the bench's clients poll the Orchestry app's one replica through nginx
# as they do during 1→10 (and during 0→10 only once a replica is routed): what that traffic (nginx, the
# replica's CGI runs and log lines, the client) costs Docker's creates and starts, without any engine
# work in the window.
FLOOR_POLLED = "docker floor 9 polled"
# The floor's containers: compose's (compose/docker-compose.bench.yml), labelled so a crashed run's can
# be found (docker ps -a --filter label=orchestry.bench=floor).
FLOOR_IMAGE = "orchestry/demo:latest"
FLOOR_COMMAND = ["httpd", "-f", "-p", "127.0.0.1:0", "-h", "/www"]
FLOOR_LABELS = {"orchestry.bench": "floor"}
# The warm rounds' app keeps this many containers created but not started (spec scaling.warmPool).
WARM_POOL = 10
# Clients polling through nginx, each sending one request every PERIOD_SECONDS, a quarter period apart:
# one request every 6 ms, so a newly routed replica (least_conn sends the next request to it) answers
# within one request's time, without the clients' CGI requests taking the CPU Docker needs for its
# creates.  Each keeps its own phase: a client that paused after each answer ran in step with the others
# (started together, their answers as quick, and a stall ending for all at once), four requests at once
# every 25 ms, so a replica routed just after such a round waited out the whole period.  Before the
# first replica of a scale from zero nginx answers the 503 at once, the same time for every client, so
# 0→10 kept them in step more than 1→10, whose one replica answered each request in its own time.
POLLERS = 4
PERIOD_SECONDS = 0.025
# Before each timed case: Docker finishes what the previous step left it (removals, the other tool's
# teardown), so neither tool's case starts while Docker still cleans up after the other.
SETTLE_SECONDS = 1.0


async def replicas_answering(
    url: str, expected: int, timeout: float = 60.0, ready: asyncio.Event | None = None
) -> dict[str, float]:
    """Poll through nginx until ``expected`` distinct replicas have answered; each one's first answer
    (perf_counter).

    POLLERS clients each send one request after another, independently: a request that waits (busybox
    httpd's listen backlog is 9, and a dropped SYN is retried after a second) holds up only its own
    client, not a whole round of them, so a replica's first answer is seen when nginx routes to it.
    Client ``i`` sends at ``i / POLLERS`` of a period, and after each answer at the next of its times
    (one a period apart), so the clients' requests stay spread over the period whatever they wait."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        if ready is not None:
            ready.set()
        start = time.monotonic()

        async def poller(index: int) -> None:
            phase = start + index * PERIOD_SECONDS / POLLERS
            await asyncio.sleep(phase - time.monotonic())
            while len(seen) < expected and time.monotonic() < deadline:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            name = (await resp.text()).split("replica=")[-1].split()[0]
                            seen.setdefault(name, time.perf_counter())
                except (aiohttp.ClientError, TimeoutError):
                    pass
                late = (time.monotonic() - phase) % PERIOD_SECONDS
                await asyncio.sleep(PERIOD_SECONDS - late)

        await asyncio.gather(*(poller(index) for index in range(POLLERS)))
    if len(seen) < expected:
        raise RuntimeError(f"only {len(seen)} of {expected} replicas answered through nginx")
    return seen


class Client:
    """The polling client in a process of its own, as a user's would be: in the engine's process its
    requests and their parsing would take the engine's event loop and CPU (with one replica answering
    from the start, 1→10 paid for that and 0→10, polling an app answering 503 quickly, did not).
    time.perf_counter is CLOCK_MONOTONIC, the same clock in both processes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def polling(cls, url: str, expected: int) -> Client:
        """Started and polling ``url`` until ``expected`` replicas answered."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--poll",
            url,
            "--expect",
            str(expected),
            "--pollers",
            str(POLLERS),
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        if (await process.stdout.readline()).strip() != b"polling":
            raise RuntimeError("the polling client did not start")
        return cls(process)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def first_answers(self) -> tuple[dict[str, float], float]:
        """Each replica's first answer through nginx (perf_counter), once ``expected`` answered, and the
        client's CPU seconds until then; returns as soon as it says so (its exit comes later: see
        ``finish``)."""
        assert self._process.stdout is not None
        line = await self._process.stdout.readline()
        if not line:
            await self._process.wait()
            raise RuntimeError(f"the polling client failed (exit {self._process.returncode})")
        report = json.loads(line)
        return {name: float(at) for name, at in report["answers"].items()}, float(report["cpu"])

    async def finish(self) -> None:
        """Wait for the client's exit (its interpreter's teardown takes a while on a loaded host)."""
        await self._process.communicate()

    async def stop(self) -> None:
        """End a client that is still polling."""
        if self._process.returncode is None:
            self._process.kill()
        await self._process.communicate()


async def poll_and_report(url: str, expected: int) -> None:
    """The client process: say when it polls, then print each replica's first answer as JSON."""
    polling = asyncio.Event()

    async def announce() -> None:
        await polling.wait()
        print("polling", flush=True)

    announcing = asyncio.create_task(announce())
    seen = await replicas_answering(url, expected, ready=polling)
    await announcing
    times = os.times()
    print(json.dumps({"answers": seen, "cpu": times.user + times.system}), flush=True)


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
Split = dict[str, float]  # CPU group (cpu_split.GROUPS, "engine:THREAD", "wall") → seconds


async def scale_and_route(
    engine: Engine, name: str, url: str, timeline: ReplicaTimeline
) -> tuple[float, Offsets, Split]:
    """Scale ``name`` to ten and wait until ten replicas answer through nginx: the time, each new
    replica's stages as offsets from the scale call, and who used the CPU meanwhile."""
    client = await Client.polling(url, 10)
    await asyncio.sleep(SETTLE_SECONDS)
    timeline.clear()
    nginx_master = getattr(engine.nginx, "_master_pid", None)
    before = cpu_split.snapshot(os.getpid(), [client.pid], nginx_master)
    threads_before = cpu_split.thread_seconds()
    started = time.perf_counter()
    await engine.scale(name, 10)
    answered, client_cpu = await client.first_answers()
    wall = time.perf_counter() - started
    after = cpu_split.snapshot(os.getpid(), nginx_master=nginx_master)
    threads = cpu_split.thread_seconds()
    # The client is still there (in its teardown): its CPU is what it reported, not what /proc says now.
    after.pop(client.pid, None)
    split = cpu_split.split(before, after, gone={client.pid: client_cpu})
    await client.finish()
    split.update({f"engine:{t}": seconds - threads_before.get(t, 0.0) for t, seconds in threads.items()})
    split["wall"] = wall
    # The clock stops at the tenth replica's first answer through nginx.
    elapsed = max(answered.values()) - started
    offsets: Offsets = {}
    for replica, stages in timeline.by_replica().items():
        row = {stage: at - started for stage, at in stages.items()}
        if replica in answered:
            row[ANSWERED] = answered[replica] - started
        offsets[replica] = row
    return elapsed, offsets, split


async def orchestry_round(
    engine: Engine,
    name: str,
    timeline: ReplicaTimeline,
    results: dict[str, list[float]],
    lines: dict[str, list[Offsets]],
    splits: dict[str, list[Split]],
) -> None:
    url = f"http://{engine.settings.lb_listen}/{name}/"
    elapsed, offsets, split = await scale_and_route(engine, name, url, timeline)
    results["1→10"].append(elapsed)
    lines["1→10"].append(offsets)
    splits["1→10"].append(split)

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
    elapsed, offsets, split = await scale_and_route(engine, name, url, timeline)
    results["0→10"].append(elapsed)
    lines["0→10"].append(offsets)
    splits["0→10"].append(split)
    await engine.scale(name, 1)
    await wait_live(engine, name, 1)


async def wait_pool(engine: Engine, name: str, size: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(await engine.runtime.list_warm(name)) == size:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the warm pool of {name} did not reach {size}")


async def warm_round(
    engine: Engine,
    name: str,
    timeline: ReplicaTimeline,
    results: dict[str, list[float]],
    lines: dict[str, list[Offsets]],
    splits: dict[str, list[Split]],
) -> None:
    """1→10 and 0→10 of an app with a full warm pool: only Docker's start is left per replica."""
    url = f"http://{engine.settings.lb_listen}/{name}/"
    for case, before in (("1→10 warm", 1), ("0→10 warm", 0)):
        await engine.scale(name, before)
        await wait_live(engine, name, before)
        await wait_pool(engine, name, WARM_POOL)
        elapsed, offsets, split = await scale_and_route(engine, name, url, timeline)
        results[case].append(elapsed)
        lines[case].append(offsets)
        splits[case].append(split)
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


def compose_round(
    project: str,
    results: dict[str, list[float]],
    splits: dict[str, list[Split]],
    floor_marks: dict[str, list[FloorMarks]],
) -> None:
    compose("up", "-d", "--scale", "web=1", project=project)
    for case in COLD_CASES:
        took, split = _compose_to_ten(project)
        results[case].append(took)
        splits[case].append(split)
    marks: FloorMarks = {}
    took, split = floor_round(marks=marks)
    results[FLOOR].append(took)
    splits[FLOOR].append(split)
    floor_marks[FLOOR].append(marks)
    marks = {}
    took, _split = floor_round(9, marks)
    results[FLOOR_NINE].append(took)
    floor_marks[FLOOR_NINE].append(marks)


async def polled_floor_round(
    engine: Engine,
    url: str,
    results: dict[str, list[float]],
    splits: dict[str, list[Split]],
    floor_marks: dict[str, list[FloorMarks]],
) -> None:
    """The floor of 1→10 while the clients poll the app's one replica (FLOOR_POLLED)."""
    client = await Client.polling(url, 10)  # never sees ten: stopped when the floor is done
    try:
        marks: FloorMarks = {}
        nginx_master = getattr(engine.nginx, "_master_pid", None)
        took, split = await asyncio.to_thread(floor_round, 9, marks, (client.pid,), nginx_master)
        results[FLOOR_POLLED].append(took)
        splits[FLOOR_POLLED].append(split)
        floor_marks[FLOOR_POLLED].append(marks)
    finally:
        await client.stop()


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _compose_to_ten(project: str) -> tuple[float, Split]:
    """Seconds from `up --scale web=10` until ten containers run, from what runs now, and the CPU split
    meanwhile (the compose CLI and the `docker ps` polls as "compose"); then down."""
    time.sleep(SETTLE_SECONDS)
    before = cpu_split.snapshot(os.getpid())
    children = _children_seconds()
    started = time.perf_counter()
    compose("up", "-d", "--scale", "web=10", project=project)
    while running_count(project) < 10:
        time.sleep(0.02)
    took = time.perf_counter() - started
    split = cpu_split.split(before, cpu_split.snapshot(os.getpid()))
    split["compose"] += _children_seconds() - children
    split["wall"] = took
    compose("down", "-t", "1", project=project)
    return took, split


FloorMarks = dict[str, list[float]]  # CREATED / STARTED → each container's offset from the first call


def floor_round(
    count: int = 10,
    marks: FloorMarks | None = None,
    client_pids: tuple[int, ...] = (),
    nginx_master: int | None = None,
) -> tuple[float, Split]:
    """``count`` containers like compose's, each created and started by a bare docker-py thread; the
    seconds until the last start returned (Docker then reports it running), and the CPU split; then
    removed.  ``marks``: filled with when each create and each start returned (the engine's timeline
    marks the same two moments, so the two compare stage by stage).  ``client_pids``, ``nginx_master``:
    the polling client and the engine's nginx when the floor runs while they serve (FLOOR_POLLED)."""
    api = docker_sdk.APIClient(version="auto", max_pool_size=10)
    api.trust_env = False  # as the engine's client (a unix socket never goes through a proxy)
    tag = uuid.uuid4().hex[:6]
    returned: list[tuple[str, float]] = []

    def create_and_start(index: int) -> str:
        created = api.create_container(
            FLOOR_IMAGE,
            FLOOR_COMMAND,
            name=f"obench-floor-{tag}-{index}",
            labels=FLOOR_LABELS,
            host_config=api.create_host_config(init=True, network_mode="host"),
            stop_timeout=10,
        )
        returned.append((CREATED, time.perf_counter()))
        api.start(created["Id"])
        returned.append((STARTED, time.perf_counter()))
        return str(created["Id"])

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            time.sleep(SETTLE_SECONDS)
            before = cpu_split.snapshot(os.getpid(), client_pids, nginx_master)
            started = time.perf_counter()
            list(pool.map(create_and_start, range(count)))
            took = time.perf_counter() - started
            if marks is not None:
                for stage, at in returned:
                    marks.setdefault(stage, []).append(at - started)
            split = cpu_split.split(before, cpu_split.snapshot(os.getpid(), client_pids, nginx_master))
            # The bench's own threads made the calls: in this case the engine's line is the client's
            # (with the polling client's, when one polls meanwhile).
            split["client"], split["engine"] = split["client"] + split["engine"], 0.0
            split["wall"] = took
    finally:
        labels = [f"{key}={value}" for key, value in FLOOR_LABELS.items()]
        for container in api.containers(all=True, filters={"label": labels}):
            if container["Names"] and container["Names"][0].startswith(f"/obench-floor-{tag}-"):
                api.remove_container(container["Id"], force=True)
        api.close()
    return took, split


Results = dict[str, list[float]]


@dataclass
class Runs:
    ours: Results
    theirs: Results
    lines: dict[str, list[Offsets]]
    our_splits: dict[str, list[Split]]
    their_splits: dict[str, list[Split]]
    floor_marks: dict[str, list[FloorMarks]]


async def all_runs(runs: int, cold_only: bool = False) -> Runs:
    ours: dict[str, list[float]] = {
        "1→10": [],
        "0→10": [],
        "1→10 warm": [],
        "0→10 warm": [],
        "10→1": [],
        "crash→routed": [],
    }
    if cold_only:
        del ours["1→10 warm"], ours["0→10 warm"]
    theirs: dict[str, list[float]] = {"1→10": [], "0→10": [], FLOOR: [], FLOOR_NINE: [], FLOOR_POLLED: []}
    floor_marks: dict[str, list[FloorMarks]] = {FLOOR: [], FLOOR_NINE: [], FLOOR_POLLED: []}
    lines: dict[str, list[Offsets]] = {case: [] for case in TIMED_CASES}
    our_splits: dict[str, list[Split]] = {case: [] for case in TIMED_CASES}
    their_splits: dict[str, list[Split]] = {case: [] for case in (*COLD_CASES, FLOOR, FLOOR_POLLED)}
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
            warm = f"{name}-warm"
            scaling = {"mode": "manual", "minReplicas": 0, "maxReplicas": 10, "warmPool": WARM_POOL}
            if not cold_only:
                await engine.register(demo_app(warm, scaling=scaling))
                await engine.up(warm)
                await wait_live(engine, warm, 1)
            for _ in range(runs):
                await orchestry_round(engine, name, timeline, ours, lines, our_splits)
                if not cold_only:
                    await warm_round(engine, warm, timeline, ours, lines, our_splits)
                await asyncio.to_thread(compose_round, project, theirs, their_splits, floor_marks)
                # The app is back at one replica (orchestry_round's end), routed.
                url = f"http://{engine.settings.lb_listen}/{name}/"
                await polled_floor_round(engine, url, theirs, their_splits, floor_marks)
        finally:
            await engine.stop(stop_apps=True)
            await asyncio.to_thread(
                subprocess.run,
                ["docker-compose", "-p", project, "-f", str(COMPOSE_FILE), "down", "-t", "1"],
                capture_output=True,
            )
    return Runs(ours, theirs, lines, our_splits, their_splits, floor_marks)


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


def print_splits(our_splits: dict[str, list[Split]], their_splits: dict[str, list[Split]]) -> None:
    """Median CPU seconds per group for each timed case, wall time beside them."""
    groups = [*cpu_split.GROUPS]
    print(
        "\nCPU split: median CPU seconds per process group over each timed case (wall: the window's median"
        " length; for Orchestry it ends once the client has reported the last answer)"
    )
    print(f"{'case':<22}{'wall':>7}" + "".join(f"{g:>11}" for g in groups))
    rows = [(f"{case}", splits) for case, splits in our_splits.items() if splits]
    rows += [
        (case if case.startswith(FLOOR) else f"compose {case}", splits)
        for case, splits in their_splits.items()
        if splits
    ]
    for label, splits in rows:
        cells = "".join(f"{statistics.median(s.get(g, 0.0) for s in splits):>11.2f}" for g in groups)
        print(f"{label:<22}{statistics.median(s['wall'] for s in splits):>7.2f}{cells}")
    for case, splits in our_splits.items():
        threads = sorted({k for s in splits for k in s if k.startswith("engine:")})
        if splits and threads:
            parts = ", ".join(
                f"{t.removeprefix('engine:')} {statistics.median(s.get(t, 0.0) for s in splits):.2f}"
                for t in threads
            )
            print(f"  engine threads, {case}: {parts}")
    print(
        "  engine = this process's own time; client = the polling client (the floor's own threads);"
        " compose = the compose CLI and its `docker ps` polls; shims include runc; replicas = everything"
        " under a shim (dockerd to replicas serve the whole host); nginx = the engine's; rest = the others"
    )


def main() -> None:
    global POLLERS  # read by the polling client, in this process and in the one it starts
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cold-only", action="store_true", help="skip the warm-pool rounds")
    parser.add_argument(
        "--pollers",
        type=int,
        default=POLLERS,
        help=f"clients polling through nginx during Orchestry's cases (default {POLLERS}): each request is"
        " a CGI run and a log line on a replica, work Docker's start competes with",
    )
    parser.add_argument("--poll", metavar="URL", help=argparse.SUPPRESS)  # the client process
    parser.add_argument("--expect", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    POLLERS = args.pollers
    if args.poll:
        asyncio.run(poll_and_report(args.poll, args.expect))
        return
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    done = asyncio.run(all_runs(args.runs, args.cold_only))
    ours, theirs, lines, our_splits, their_splits = (
        done.ours,
        done.theirs,
        done.lines,
        done.our_splits,
        done.their_splits,
    )
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"scale benchmark, median of {args.runs} runs (seconds); rounds alternate Orchestry and compose")
    loads = f"{' '.join(load_before)} before, {' '.join(load_after)} after"
    print(f"load average {loads}; host {socket.gethostname()}; {POLLERS} polling clients")
    print(f"{'case':<18}{'orchestry':>12}{'compose':>12}{'ratio':>9}   per round")
    for case, values in ours.items():
        mine = statistics.median(values)
        compose_case = case.removesuffix(" warm")  # compose has no warm pool: the same baseline
        base = statistics.median(theirs[compose_case]) if compose_case in theirs else None
        ratio = f"{mine / base:.2f}x" if base else "-"
        base_text = f"{base:.3f}" if base else "-"
        rounds = ""
        if compose_case in theirs:
            rounds = " ".join(f"{m / c:.2f}" for m, c in zip(values, theirs[compose_case], strict=False))
        print(f"{case:<18}{mine:>12.3f}{base_text:>12}{ratio:>9}   {rounds}")
    print("orchestry waits for health checks and nginx routing; compose only for 'running'.")
    for case, key, count in (("1→10", FLOOR_NINE, "nine"), ("0→10", FLOOR, "ten")):
        floor = statistics.median(theirs[key])
        base = statistics.median(theirs[case])
        print(
            f"{FLOOR + ' ' + case:<18}{floor:>12.3f}{base:>12.3f}{floor / base:>8.2f}x  ({count} bare"
            f" docker-py creates+starts; orchestry {case} = {statistics.median(ours[case]) / floor:.2f}x"
            " the floor)"
        )
    for case in TIMED_CASES:
        if not lines[case]:
            continue
        # The engine's own claim, without the client's last request: nginx serves all ten.
        routed = statistics.median(max(row[ROUTED] for row in offsets.values()) for offsets in lines[case])
        base = statistics.median(theirs[case.removesuffix(" warm")])
        print(
            f"{case + ' routed':<18}{routed:>12.3f}{base:>12.3f}{routed / base:>8.2f}x  (last nginx reload)"
        )
    print_engine_share(lines)
    print_docker_phase(lines, done.floor_marks)
    print_splits(our_splits, their_splits)
    for case in TIMED_CASES:
        if lines[case]:
            print_timeline(case, lines[case])


def print_docker_phase(lines: dict[str, list[Offsets]], floor_marks: dict[str, list[FloorMarks]]) -> None:
    """Docker's part of each cold case beside the floor's, stage by stage: when the first create was
    sent (the engine's: its first replica planned), the last create and the last start returned (ms
    after the scale call, or the floor's first call; medians).  The engine's Docker phase minus the
    floor's is paired within each round (both ran in it), and so is the polled floor minus the floor:
    what the clients' traffic through the one replica costs Docker."""
    print(
        "\nDocker phase (ms after the scale call / the floor's first call; median; paired: per round, minus"
        " the floor's last start)"
    )
    print(f"{'case':<24}{'first call':>11}{'last create':>12}{'last start':>11}   paired (per round)")

    def engine_row(offsets: Offsets) -> tuple[float, float, float]:
        rows = offsets.values()
        return (
            min(row[PLANNED] for row in rows if PLANNED in row),
            max(row[CREATED] for row in rows if CREATED in row),
            max(row[STARTED] for row in rows if STARTED in row),
        )

    def floor_row(marks: FloorMarks) -> tuple[float, float, float]:
        return 0.0, max(marks[CREATED]), max(marks[STARTED])

    def line(label: str, rows: list[tuple[float, float, float]], base: list[FloorMarks] | None) -> None:
        cells = "".join(
            f"{statistics.median(r[i] for r in rows) * 1000:>{w}.0f}" for i, w in ((0, 11), (1, 12), (2, 11))
        )
        paired = ""
        if base:
            diffs = [r[2] - max(b[STARTED]) for r, b in zip(rows, base, strict=False)]
            each = " ".join(f"{d * 1000:+.0f}" for d in diffs)
            paired = f"   {statistics.median(diffs) * 1000:+.0f} ms ({each})"
        print(f"{label:<24}{cells}{paired}")

    for case, floor in (("1→10", FLOOR_NINE), ("0→10", FLOOR)):
        if floor_marks[floor]:
            line(floor, [floor_row(m) for m in floor_marks[floor]], None)
        if case == "1→10" and floor_marks[FLOOR_POLLED]:
            line(FLOOR_POLLED, [floor_row(m) for m in floor_marks[FLOOR_POLLED]], floor_marks[floor])
        if lines[case]:
            line(f"orchestry {case}", [engine_row(o) for o in lines[case]], floor_marks[floor])
    if lines["1→10"] and lines["0→10"] and floor_marks[FLOOR] and floor_marks[FLOOR_NINE]:
        # Paired within each round: the two cases (and the two floors) ran back to back in it.
        ours = [
            engine_row(one)[2] - engine_row(zero)[2]
            for one, zero in zip(lines["1→10"], lines["0→10"], strict=False)
        ]
        floors = [
            max(nine[STARTED]) - max(ten[STARTED])
            for nine, ten in zip(floor_marks[FLOOR_NINE], floor_marks[FLOOR], strict=False)
        ]

        def ms(values: list[float]) -> str:
            each = " ".join(f"{v * 1000:+.0f}" for v in values)
            return f"{statistics.median(values) * 1000:+.0f} ms ({each})"

        print(
            f"1→10 minus 0→10, last start, paired per round: orchestry {ms(ours)}; floor nine minus ten"
            f" {ms(floors)}"
        )
    print(
        f"  {FLOOR_POLLED}: nine bare creates+starts while the {POLLERS} clients poll the app's one replica"
        " through nginx, as during 1→10 (during 0→10 they meet nginx's quick 503 until the first replica is"
        " routed)"
    )


def print_engine_share(lines: dict[str, list[Offsets]]) -> None:
    """Per round, the parts of a case that are the engine's rather than Docker's: from the scale call to
    the first replica planned (the store write, the pass's listing), and from Docker's last start
    returning to the last replica routed (probe, nginx reload) and answering through nginx.  Paired
    within each round, so steadier than the difference of two stage medians on a loaded host."""
    for case in TIMED_CASES:
        rounds = lines[case]
        if not rounds:
            continue
        planned, routed, answered = [], [], []
        for offsets in rounds:
            rows = offsets.values()
            planned.append(min(row[PLANNED] for row in rows if PLANNED in row))
            last_start = max(row[STARTED] for row in rows if STARTED in row)
            routed.append(max(row[ROUTED] for row in rows if ROUTED in row) - last_start)
            answered.append(max(row[ANSWERED] for row in rows if ANSWERED in row) - last_start)

        def ms(values: list[float]) -> str:
            each = " ".join(f"{v * 1000:.0f}" for v in values)
            return f"{statistics.median(values) * 1000:.0f} ms ({each})"

        print(
            f"{case + ' engine':<18}first planned {ms(planned)} after the scale call; after Docker's last"
            f" start: routed {ms(routed)}, answered {ms(answered)}"
        )


if __name__ == "__main__":
    main()
