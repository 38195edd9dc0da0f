"""Where a scale-out's time goes between a replica passing its health check and nginx routing it.

Runs ``--runs`` scales 1→10 of the demo app (the polling client of bench/scale_out.py in a process of
its own), with the reconciler's timeline on and the nginx controller's steps traced: each route
requested (how many servers, urgent or not), each reload's coalescing end, its wait for the master's
pause after the previous reload, files written, `nginx -t`, the reload's signal (SIGHUP, or SIGUSR2
for a fresh master), new workers seen, old workers told to stop, the reload done; beside them each
replica's Docker start, passing probe, routed and first answer through nginx, and event-loop stalls
over 5 ms.  Prints each round's trace in ms after the
scale call, then medians over the rounds of the intervals that make up "passed → routed".
Asserts nothing; instruments by wrapping the controller's functions, so it measures the tree it runs in.

    .venv/bin/python bench/route_trace.py [--runs 5] [--quiet]
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

import core.lb.nginx as nginx_module  # noqa: E402
from bench.scale_out import SETTLE_SECONDS, Client, wait_live  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.timeline import PASSED, ROUTED, STARTED, ReplicaTimeline  # noqa: E402
from testkit.harness import demo_app, engine_settings  # noqa: E402

Trace = list[tuple[float, str, str]]  # (perf_counter, step, detail)
TRACE: Trace = []


def note(step: str, detail: str = "") -> None:
    TRACE.append((time.perf_counter(), step, detail))


def instrument() -> None:
    """Wrap the controller's steps so each one leaves a mark in TRACE."""
    controller = nginx_module.NginxController

    set_route = controller.set_route

    async def traced_set_route(self: Any, route: Any, urgent: bool = False) -> None:
        note("route requested", f"{len(route.servers)} servers{' urgent' if urgent else ''}")
        await set_route(self, route, urgent)

    controller.set_route = traced_set_route  # type: ignore[method-assign]

    def wrap_async(name: str, before: str, after: str) -> None:
        original = getattr(controller, name)

        async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
            if before:
                note(before)
            result = await original(self, *args, **kwargs)
            if after:
                note(after, "" if result is None else str(result)[:60])
            return result

        setattr(controller, name, traced)

    wrap_async("_until_master_takes_signals", "coalesced", "master free")
    wrap_async("_test_config", "", "nginx -t done")
    wrap_async("_reload", "", "reload done (old workers gone)")
    if hasattr(controller, "_until_predecessor_gone"):  # a baseline tree may not wait for it
        wrap_async("_until_predecessor_gone", "predecessor wait", "predecessor gone")

    write_files = nginx_module.write_files

    def traced_write(*args: Any) -> None:
        write_files(*args)
        note("files written")

    nginx_module.write_files = traced_write

    stop_old = nginx_module._stop_old_workers

    def traced_stop(pids: set[int]) -> None:
        note("new workers seen", f"old {sorted(pids)}")
        stop_old(pids)

    nginx_module._stop_old_workers = traced_stop

    class KillSpy:
        """The module's ``os``, with kill() noting the signal of a reload."""

        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def kill(pid: int, sig: int) -> None:
            if sig in (nginx_module.signal.SIGHUP, nginx_module.signal.SIGUSR2):
                note("reload signalled", nginx_module.signal.Signals(sig).name)
            os.kill(pid, sig)

    nginx_module.os = KillSpy()  # type: ignore[assignment]


async def loop_stalls(stop: asyncio.Event, threshold: float = 0.005) -> None:
    """Note each time the event loop came back more than ``threshold`` late to a 1 ms sleep."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        late = time.perf_counter() - before - 0.001
        if late > threshold:
            note("loop stalled", f"{late * 1000:.0f} ms")


Round = tuple[float, Trace, dict[str, dict[str, float]], dict[str, float]]


async def one_round(engine: Engine, name: str, timeline: ReplicaTimeline) -> Round:
    url = f"http://{engine.settings.lb_listen}/{name}/"
    client = await Client.polling(url, 10)
    await asyncio.sleep(SETTLE_SECONDS)
    timeline.clear()
    TRACE.clear()
    stop = asyncio.Event()
    watcher = asyncio.create_task(loop_stalls(stop))
    started = time.perf_counter()
    await engine.scale(name, 10)
    answered, _cpu = await client.first_answers()
    stop.set()
    await watcher
    await client.finish()
    trace = list(TRACE)
    replicas = timeline.by_replica()
    await engine.scale(name, 1)
    await wait_live(engine, name, 1)
    return started, trace, replicas, answered


def print_round(
    started: float, trace: Trace, replicas: dict[str, dict[str, float]], answered: dict[str, float]
) -> None:
    rows: list[tuple[float, str, str]] = list(trace)
    for replica, stages in replicas.items():
        for stage in (STARTED, PASSED, ROUTED):
            if stage in stages:
                rows.append((stages[stage], f"{replica.rsplit('-', 1)[-1]:>3} {stage}", ""))
    for replica, at in answered.items():
        rows.append((at, f"{replica.rsplit('-', 1)[-1]:>3} answered", ""))
    rows.sort()
    first_start = min((s[STARTED] for s in replicas.values() if STARTED in s), default=started)
    for at, step, detail in rows:
        if at < first_start - 0.005:
            continue  # creates and the pass before Docker's first start: not this trace's subject
        print(f"{(at - started) * 1000:8.1f}  {step:<34}{detail}")


def intervals(trace: Trace, replicas: dict[str, dict[str, float]]) -> dict[str, float]:
    """The pieces of the last replica's passed → routed, and each reload's steps, in ms."""
    out: dict[str, float] = {}
    passes = [s[PASSED] for s in replicas.values() if PASSED in s]
    routes = [s[ROUTED] for s in replicas.values() if ROUTED in s]
    if not passes or not routes:
        return out
    last_pass = max(passes)
    out["last passed → last routed"] = (max(routes) - last_pass) * 1000
    gaps = [(s[ROUTED] - s[PASSED]) * 1000 for s in replicas.values() if PASSED in s and ROUTED in s]
    out["passed → routed, median replica"] = statistics.median(gaps)

    def first(step: str, after: float) -> float | None:
        return next((at for at, s, _ in trace if s == step and at >= after), None)

    steps = [
        "route requested",
        "coalesced",
        "master free",
        "files written",
        "reload signalled",
        "new workers seen",
    ]
    steps.append("reload done (old workers gone)")
    previous = last_pass
    for step in steps:
        at = first(step, previous)
        if at is None:
            break
        out[f"last: → {step}"] = (at - previous) * 1000
        previous = at
    hups = [at for at, s, _ in trace if s == "reload signalled"]
    seen = [at for at, s, _ in trace if s == "new workers seen"]
    done = [at for at, s, _ in trace if s.startswith("reload done")]
    pairs = [
        (h, next((x for x in seen if x >= h), None), next((d for d in done if d >= h), None)) for h in hups
    ]
    forks = [(x - h) * 1000 for h, x, _ in pairs if x is not None]
    quits = [(d - x) * 1000 for _, x, d in pairs if x is not None and d is not None]
    waits = [at for at, s, _ in trace if s == "predecessor wait"]
    gone = [at for at, s, _ in trace if s == "predecessor gone"]
    waited = [(g - w) * 1000 for w, g in zip(waits, gone, strict=False)]
    if waited:
        # How long reloads waited for the master a fresh one replaced (the most of them, as a median
        # of zeros would hide them).
        out["per reload: longest predecessor wait"] = max(waited)
    if forks:
        out["per reload: signal → new workers seen"] = statistics.median(forks)
    if quits:
        out["per reload: new workers → old gone"] = statistics.median(quits)
    out["reloads"] = float(len(hups))
    out["reloads by SIGHUP"] = float(sum(1 for _, s, d in trace if s == "reload signalled" and d == "SIGHUP"))
    stalls = [float(d.split()[0]) for _, s, d in trace if s == "loop stalled"]
    out["loop stalls > 5 ms"] = float(len(stalls))
    out["loop stalled ms, total"] = sum(stalls)
    return out


async def main_async(runs: int, quiet: bool) -> None:
    instrument()
    timeline = ReplicaTimeline()
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state", drain_timeout=5.0))
        await engine.start()
        engine.reconciler.record_timeline(timeline)
        name = f"trace-{uuid.uuid4().hex[:6]}"
        summaries: list[dict[str, float]] = []
        try:
            await engine.register(
                demo_app(name, scaling={"mode": "manual", "minReplicas": 0, "maxReplicas": 10})
            )
            await engine.up(name)
            await wait_live(engine, name, 1)
            for index in range(runs):
                started, trace, replicas, answered = await one_round(engine, name, timeline)
                if not quiet:
                    print(f"\nround {index + 1}: ms after the scale call")
                    print_round(started, trace, replicas, answered)
                passes = sorted((s[PASSED] - started) * 1000 for s in replicas.values() if PASSED in s)
                print(f"round {index + 1} passed at (ms): {' '.join(f'{p:.0f}' for p in passes)}")
                summaries.append(intervals(trace, replicas))
        finally:
            await engine.stop(stop_apps=True)
    print(f"\nmedians over {runs} rounds (ms; the last replica's steps each from the one before)")
    keys: list[str] = []
    for summary in summaries:
        keys += [k for k in summary if k not in keys]
    for key in keys:
        values = [s[key] for s in summaries if key in s]
        each = " ".join(f"{v:.0f}" for v in values)
        print(f"{key:<40}{statistics.median(values):>8.1f}   ({each})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quiet", action="store_true", help="only the medians, not each round's trace")
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3]
    asyncio.run(main_async(args.runs, args.quiet))
    after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average {' '.join(load)} before, {' '.join(after)} after")


if __name__ == "__main__":
    main()
