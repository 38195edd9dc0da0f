"""API latency under load: req/s and p50/p99 of GET /health, GET /apps and GET /api/v1/apps with 50 (or
--apps) apps registered, on a quiet engine and while one app scales back and forth (1↔10) the whole run.

Each list is measured three ways, side by side: "kept" is the daemon as it runs (the leader keeps each
app's encoded entry and the whole answer while nothing it shows changes, core/api/kept_answers.py, and
the engine's own work takes the least of the loop it can); "kept, before" is the same answers with the
engine's own work during a scale as it was (see ``EngineWork``: store reads in a thread each pass and
after each write, ``nginx -t`` started on the loop, a metrics sample in one go); "built" is the path
before kept answers: the app records read from the store and every app's view built and encoded for
every request (``--no-built`` skips it: slow at 500 apps).  Two load generators, named on each line, so
a slow client is not taken for a slow server: ApacheBench (``ab -k``, C, one process) and the Python
one (aiohttp in a separate process).  Each line gives the server's CPU per request (this process: the
engine and the API; then less the engine's idle CPU, measured first with no request) and the load
generator's CPU over the run: a generator near 100 % of a core is the bottleneck, not the server.

    .venv/bin/python bench/api.py [--seconds 5] [--concurrency 8] [--apps 50] [--tools ab,python]
                                  [--listing shared|per-app] [--no-built]

The engine's idle CPU is measured three ways, side by side: each app's pass listing its own containers
and the idle work before (``IdleWork``: the workers' safety net read every app from the store, every
stopped app passed each relist interval); the reconciler's shared container listing
(core/shared_listing.py) with that idle work; and as the daemon runs now (stopped apps with nothing
left relisted together, the kept records).  ``/health`` is measured before (each probe its own
database ping) and now (probes that arrive together share one).  The bench's engine relists every 5 s
(testkit's engine_settings); production's default is 30 s, so its relist work is a sixth of this.
``--listing per-app`` runs the requests on the per-app listing.

Needs Docker, nginx, the demo image (``scripts/build_demo_image.sh``) and ``ab`` (apache2-utils).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.api.app import create_app
from core.api.context import redacted_dumps
from core.api.kept_answers import KEPT_ANSWERS, KeptAnswers
from core.engine import Engine
from core.lb import nginx, nginx_procs
from core.metrics import collector
from core.metrics.collector import SAMPLE_SLICE_APPS
from core.runtime.base import ContainerInfo, Runtime
from testkit.harness import demo_app, engine_settings, wait_for

LIST_PATHS = ("/apps", "/api/v1/apps")
# Each list measured: built for every request; kept answers with the engine's own work as before
# (EngineWork); as today.
WAYS = ("built", "kept, before", "kept")
# ab stops at -t or -n, whichever comes first, and allocates per request of -n: a bound, not a target.
AB_MAX_RATE = 20_000


class SwitchableAnswers(KeptAnswers):
    """The daemon's kept answers, or (``keep = False``) the path before them: records from the store
    and every view built and encoded for each request."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.keep = True
        self._engine = engine

    async def respond(self, engine, route, build, entry):  # type: ignore[no-untyped-def]
        if self.keep:
            return await super().respond(engine, route, build, entry)
        self._engine._c.views.records._key = None  # as before: the store is read on every request
        body = redacted_dumps((await build()).model_dump(mode="json")).encode()
        return web.Response(body=body, content_type="application/json", charset="utf-8")


class EngineWork:
    """Switch the engine's own work during a scale between today's way (``now``) and the way before
    (the "kept, before" lines): each reconciler pass read its app from the store in a thread (now: the
    leader's kept records), the kept records re-read the apps the leader wrote (now: they splice in
    the rows its writes committed), nginx's commands (``nginx -t`` before each reload) started on the
    event loop (now: from their own threads), and a metrics sample added every app's figures in one go
    (now: the loop answers between slices of apps)."""

    def __init__(self, engine: Engine) -> None:
        self._reconciler = engine._c.reconciler
        self._records = engine._c.views.records
        self._kept = self._reconciler.records

    def now(self, on: bool) -> None:
        self._reconciler.records = self._kept if on else None
        nginx._run = nginx_procs._run if on else _run_on_the_loop
        collector.SAMPLE_SLICE_APPS = SAMPLE_SLICE_APPS if on else sys.maxsize
        if on:
            self._records.__dict__.pop("_caught_up", None)
        else:
            self._records._caught_up = lambda: None  # type: ignore[method-assign]


async def _run_on_the_loop(argv: list[str]) -> tuple[int, str]:
    """nginx_procs._run as it was: the child started from the event loop."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    output, _ = await asyncio.wait_for(process.communicate(), nginx_procs.CHILD_TIMEOUT)
    text = output.decode(errors="replace").strip()
    return process.returncode or 0, text[-nginx_procs.MAX_OUTPUT :]


class IdleWork:
    """Switch the idle engine's own work between today's way (``now``) and the way before (the
    "before" idle and /health lines): the safety net that keeps a worker per app read every app from
    the store (now: the leader's kept records); every stopped app's worker passed, with a list call
    of its own, each relist_interval (now: the quiet ones are relisted together, one listing); each
    /health probe pinged the database itself (now: probes that arrive together share a ping)."""

    def __init__(self, engine: Engine) -> None:
        self._reconciler = engine._c.reconciler
        self._watch = engine._c.watch
        self._status = engine._c.status
        self._kept = self._watch._app_records
        self._ping = self._status.ping
        self._store = engine.store

    def now(self, on: bool) -> None:
        reconciler = self._reconciler
        type(reconciler).quiet_relist = on
        self._watch._app_records = self._kept if on else self._watch._read_app_records
        self._status.ping = self._ping if on else _OwnPing(self._store)  # type: ignore[assignment]
        if not on:
            # The quiet apps wait for a wake: back on their own timers, spread over one relist
            # interval as their registrations spread them before.
            quiet = [state for state in reconciler.apps.values() if state.quiet]
            loop = asyncio.get_running_loop()
            for index, state in enumerate(quiet):
                state.quiet = False
                loop.call_later(index * reconciler.config.relist_interval / len(quiet), state.wake.set)


class _OwnPing:
    """/health's database check as it was: each probe its own ping in a thread."""

    def __init__(self, store: object) -> None:
        self._store = store

    async def check(self) -> None:
        await asyncio.to_thread(self._store.ping)  # type: ignore[attr-defined]


class PerAppListing:
    """The reconciler's listing before core/shared_listing.py: each pass its own list call."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.calls = 0

    async def of(self, app: str) -> list[ContainerInfo]:
        self.calls += 1
        return await self._runtime.list_managed(app)

    async def every(self) -> dict[str, list[ContainerInfo]]:
        self.calls += 1
        by_app: dict[str, list[ContainerInfo]] = {}
        for info in await self._runtime.list_managed(None):
            by_app.setdefault(info.app, []).append(info)
        return by_app

    async def close(self) -> None:
        return None


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu: float  # seconds, this process
    client_cpu: float  # seconds, the load generator


# --- the Python load generator (aiohttp, in its own process) --------------------------------------------
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


def load_in_process(url: str, seconds: float, concurrency: int) -> tuple[list[float], float]:
    before = cpu_seconds()
    latencies = asyncio.run(_hammer(url, seconds, concurrency))
    return latencies, cpu_seconds() - before


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def python_load(pool: ProcessPoolExecutor, url: str, seconds: float, concurrency: int) -> Run:
    loop = asyncio.get_running_loop()
    before = cpu_seconds()
    latencies, client_cpu = await loop.run_in_executor(pool, load_in_process, url, seconds, concurrency)
    server_cpu = cpu_seconds() - before
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Run(len(ordered), seconds, statistics.median(ordered) * 1000, p99 * 1000, server_cpu, client_cpu)


# --- ApacheBench (C) ------------------------------------------------------------------------------------
async def ab_load(url: str, seconds: float, concurrency: int) -> Run:
    with tempfile.NamedTemporaryFile(suffix=".csv") as percentiles:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = cpu_seconds()
        process = await asyncio.create_subprocess_exec(
            "ab", "-k", "-q", "-c", str(concurrency), "-t", str(seconds),
            "-n", str(int(seconds * AB_MAX_RATE)), "-e", percentiles.name, url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        server_cpu = cpu_seconds() - before
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if process.returncode != 0:
            raise RuntimeError(f"ab failed ({process.returncode}): {err.decode().strip()}")
        report = out.decode()
        field = {
            line.split(":", 1)[0].strip(): line.split(":", 1)[1].split()[0]
            for line in report.splitlines()
            if ":" in line and line.split(":", 1)[1].split()
        }
        # ab counts an answer whose length differs from the first as failed ("Length"): a list that
        # changes during a scale does that legitimately.  Connect, receive and exceptions are real.
        broken = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", report)
        if int(field.get("Non-2xx responses", "0")) or (broken and any(int(n) for n in broken.groups())):
            raise RuntimeError(f"ab saw failures:\n{report}")
        text = await asyncio.to_thread(Path(percentiles.name).read_text)
        rows = list(csv.reader(text.splitlines()))[1:]
        served = {int(float(r[0])): float(r[1]) for r in rows}
    client_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    # Under 100 requests ab's 99th percentile row reads past its samples (0): take the slowest.
    return Run(
        int(field["Complete requests"]),
        float(field["Time taken for tests"]),
        served[50],
        served[99] or served[100],
        server_cpu,
        client_cpu,
    )


# The engine's own CPU per second with no request (its loops, at this many apps), measured before the
# runs and taken out of each run's server CPU, so the per-request figure is the API's.
IDLE = {"cpu_per_second": 0.0}
IDLE_SECONDS = 10.0


async def measure_idle(seconds: float) -> float:
    before, started = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    IDLE["cpu_per_second"] = (cpu_seconds() - before) / (time.perf_counter() - started)
    return IDLE["cpu_per_second"]


def report(label: str, tool: str, run: Run) -> Run:
    api_cpu = max(0.0, run.server_cpu - IDLE["cpu_per_second"] * run.seconds)
    print(
        f"{label:<40} {tool:<6} {run.requests / run.seconds:7.0f} req/s  p50 {run.p50_ms:7.2f} ms"
        f"  p99 {run.p99_ms:7.2f} ms  server CPU {run.server_cpu / run.requests * 1e6:6.0f} µs/req"
        f" (less idle {api_cpu / run.requests * 1e6:6.0f})"
        f"  client CPU {run.client_cpu / run.seconds * 100:4.0f} %",
        flush=True,
    )
    return run


async def while_scaling(engine: Engine, name: str, measure: Awaitable[Run]) -> Run:
    """``measure`` while ``name`` scales 1→10→1→… until it is done (each step waits for the last)."""
    stop = asyncio.Event()

    async def scale_back_and_forth() -> None:
        target = 10
        while not stop.is_set():
            await engine.scale(name, target)
            await asyncio.sleep(0.5)  # the replicas start and stop meanwhile: statuses keep changing
            target = 1 if target == 10 else 10

    scaling = asyncio.create_task(scale_back_and_forth())
    try:
        return await measure
    finally:
        stop.set()
        await scaling


async def bare_site() -> tuple[web.AppRunner, str]:
    """aiohttp with nothing of ours (no middleware, a fixed body): the floor a kept answer can reach."""
    body = b'{"apps": []}'

    async def fixed(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    bare = web.Application()
    bare.router.add_get("/", fixed)
    runner = web.AppRunner(bare, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]


async def main(
    seconds: float, concurrency: int, apps: int, tools: list[str], listing: str, builds: bool
) -> None:
    if "ab" in tools and shutil.which("ab") is None:
        raise SystemExit("ab not found: install apache2-utils, or pass --tools python")
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state"))
        await engine.start()
        api = create_app(engine, engine.node_id)
        answers = api[KEPT_ANSWERS] = SwitchableAnswers(engine)
        runner = web.AppRunner(api, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        prefix = f"bench-{uuid.uuid4().hex[:6]}"
        names = [f"{prefix}-{i:03d}" for i in range(apps)]
        try:
            await wait_for(lambda: engine.cluster.is_leader(), timeout=20, what="leadership")
            for name in names:
                await engine.register(demo_app(name))
            await engine.up(names[0])
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"{apps} apps registered (one running); {concurrency} concurrent clients, {seconds:g} s"
                f" per run; {os.cpu_count()} CPUs, load average {load} (shared machine: compare side by"
                " side); tools: ab = ApacheBench -k (C), python = aiohttp client in its own process",
                flush=True,
            )
            reconciler = engine._c.reconciler
            shared = reconciler.listing
            idle = IdleWork(engine)
            relist = engine.settings.relist_interval
            idle_of: dict[str, tuple[float, float]] = {}
            for way, chosen, now in (
                ("per-app listing, before", PerAppListing(engine.runtime), False),
                ("shared listing, before", shared, False),
                ("shared listing, now", shared, True),
            ):
                reconciler.listing = chosen  # type: ignore[assignment]
                idle.now(now)
                # Passes begun the other way finish; after a switch to "now" every stopped app's next
                # pass (within one relist interval) makes it quiet.
                await asyncio.sleep(relist + 1.0)
                calls = chosen.calls
                # Over two relist periods of the bench's engine (5 s), so every app's periodic pass counts.
                idle_of[way] = (await measure_idle(IDLE_SECONDS), (chosen.calls - calls) / IDLE_SECONDS)
            if listing == "per-app":
                reconciler.listing = chosen = PerAppListing(engine.runtime)  # type: ignore[assignment]
                await asyncio.sleep(1.0)
                await measure_idle(IDLE_SECONDS)
            before_cpu, now_cpu = idle_of["shared listing, before"][0], idle_of["shared listing, now"][0]
            print(
                f"engine idle (no request; relist every {relist:g} s, production's default 30 s): "
                + "; ".join(
                    f"{way}: {cpu * 100:.1f} % of a core, {lists:.0f} list calls/s"
                    for way, (cpu, lists) in idle_of.items()
                )
                + f"; now/before (shared listing) CPU {now_cpu / max(before_cpu, 1e-9):.2f}×"
                + f"; requests below run on the {listing} listing, idle work now",
                flush=True,
            )
            work = EngineWork(engine)
            with ProcessPoolExecutor(1) as pool:
                loaders: dict[str, Callable[[str], Awaitable[Run]]] = {
                    "ab": lambda url: ab_load(url, seconds, concurrency),
                    "python": lambda url: python_load(pool, url, seconds, concurrency),
                }
                bare, bare_url = await bare_site()
                try:
                    for tool in tools:
                        report("bare aiohttp, fixed body (floor)", tool, await loaders[tool](bare_url))
                finally:
                    await bare.cleanup()
                for tool in tools:
                    for way in ("before", "now"):
                        idle.now(way == "now")
                        report(f"GET /health (quiet, {way})", tool, await loaders[tool](base + "/health"))
                idle.now(True)
                summary = []
                for path in LIST_PATHS:
                    for scaling in (False, True):
                        for tool in tools:
                            p99 = {}
                            for way in WAYS if builds else WAYS[1:]:
                                answers.keep = way != "built"
                                work.now(way == "kept")
                                measure = loaders[tool](base + path)
                                if scaling:
                                    measure = while_scaling(engine, names[0], measure)
                                when = "scaling" if scaling else "quiet"
                                label = f"GET {path} ({when}, {way})"
                                p99[way] = report(label, tool, await measure).p99_ms
                            work.now(True)
                            ratios = [
                                f"kept/{way} {p99['kept'] / p99[way]:.2f}×"
                                for way in WAYS
                                if way != "kept" and p99.get(way, 0) > 0
                            ]
                            summary.append(
                                f"{path} {'scaling' if scaling else 'quiet'} {tool}: p99 " + ", ".join(ratios)
                            )
                print("; ".join(summary))
        finally:
            for name in names:
                try:
                    await engine.delete(name)
                except Exception as exc:  # keep cleaning up the rest
                    print(f"cleanup of {name} failed: {exc}", file=sys.stderr)
            with contextlib.suppress(Exception):
                await runner.cleanup()
            await engine.stop(stop_apps=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--tools", default="ab,python", help="comma-separated: ab, python")
    parser.add_argument(
        "--listing", choices=("shared", "per-app"), default="shared", help="the reconciler's listing"
    )
    parser.add_argument(
        "--no-built", action="store_true", help="skip the built-every-time lines (slow at 500 apps)"
    )
    options = parser.parse_args()
    chosen = [t.strip() for t in options.tools.split(",") if t.strip()]
    unknown = set(chosen) - {"ab", "python"}
    if unknown or not chosen:
        parser.error(f"--tools: unknown {sorted(unknown)}; use ab, python or both (ab,python)")
    asyncio.run(
        main(
            options.seconds, options.concurrency, options.apps, chosen, options.listing, not options.no_built
        )
    )
