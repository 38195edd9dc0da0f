"""The console at fleet size: 1,000 simulated replicas in 100 apps, side by side with 100 in 10 apps.

The REAL engine (reconciler, health scheduling, metrics windows, scaler, store) runs on the in-memory
runtime with simulated replicas, as bench/fleet.py builds it (production intervals, health checks every
10 s); the console attaches to it in the same process (headless, 200×50, every pane of its default
layout shown).  Each size runs in its own process.  Printed per size:

Every simulated replica's CPU and memory wander each second (so figures change on every refresh).

- first screen / first data frame: from the console's start to the first painted screen, and to the
  first screen painted after a frame of apps and replicas was applied (and the process CPU time that
  took: what a loaded host does not inflate);
- idle CPU: utime + stime of the process (console + engine, every thread) over ``--seconds``, as % of
  one core, from 5 s after the first data frame or once every screen is built ahead (see
  ``screens_warmed``), whichever is later; then the engine's alone (console closed) over half as long;
- idle paints: compositor passes a second while idle (the console's clock aims at one);
- idle loop holds: how long each event-loop callback ran while idle (a key arriving meanwhile waits
  for it), in the loop thread's CPU time (which a loaded host does not inflate) and in wall time: the
  longest, p99.9, how many a second over 5 ms of CPU, their CPU as % of the time, and the five
  longest with what they ran;
- keypress latency p50/p99, wall and CPU, over ``--presses`` presses of each kind: time from the
  key event entering the app to the first painted screen that shows its effect (the apps cursor moved
  and the replicas pane shows the newly selected app; the replicas cursor moved; the help screen
  opened, closed; the describe screen opened, closed; the what-if, logs and nodes screens opened,
  closed), and over every press of every kind together; for each screen opened, its first open beside
  the p99 of its later ones.
  Not ``pilot.press``: it sleeps ≥ 40 ms waiting for idle;
- scrolling: PageDown through the apps table (every press selects another app, so the replicas table
  changes too) and through the replicas table: p50/p99/max of press → painted screen;
- full garbage collections (generation 2, counted by a ``gc`` callback whatever the tree does about
  them) while idle and while keys are pressed: how many, the longest (the loop is stopped meanwhile),
  wall and CPU, and their CPU in all;
- RSS (VmRSS) after the idle period and at the end; with ``--long-idle SECONDS``, also every 30 s of
  that much more idle time (before the presses): memory stays flat or it does not.  Beside it, at the
  same instants, the metric windows' buckets (an app's fill for 15 minutes, then stay level) and
  Python's allocated blocks; and the lowest RSS, RSS at 15 and 30 minutes, the last 10 minutes' slope.

Prints figures; asserts nothing.

    .venv/bin/python bench/console_fleet.py [--sizes 10x10,100x10] [--seconds 20] [--presses 40]
                                            [--long-idle 600] [--tree TREE] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _children import add_tree_arguments, enter_tree, ran_from, ran_line, run_child

SIZE = (200, 50)
HEALTH_PERIOD_SECONDS = 10
GOALS = {"first data frame s": 1.0, "idle CPU %": 5.0, "keypress p99 ms": 50.0}


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS is missing from /proc/self/status")


def window_buckets(windows: Any) -> int:
    """Every app's metric-window buckets (per second of the app and of each replica)."""
    return sum(windows.bucket_count(app) for app in windows.apps())


def long_idle_summary(series: list[float]) -> str:
    """RSS samples 30 s apart: the lowest, at 15 and 30 minutes, and the slope of the last 10 minutes."""
    at = {minutes: series[minutes * 2] for minutes in (15, 30) if minutes * 2 < len(series)}
    last = series[-21:]  # ten minutes: 21 samples
    slope = (last[-1] - last[0]) / ((len(last) - 1) / 2) if len(last) > 1 else float("nan")
    marks = "".join(f", {m} min {mb:.0f}" for m, mb in at.items())
    span = (len(last) - 1) / 2
    return f"min {min(series):.0f}{marks}, end {series[-1]:.0f} MB; last {span:g} min {slope:+.2f} MB/min"


class FullCollections:
    """Every generation-2 collection's duration, whoever started it (Python or the console)."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        # The collecting thread's CPU time for each: what a loaded host does not inflate.
        self.cpu_durations: list[float] = []
        self._started = self._cpu_started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started, self._cpu_started = time.perf_counter(), time.thread_time()
        else:
            self.durations.append(time.perf_counter() - self._started)
            self.cpu_durations.append(time.thread_time() - self._cpu_started)

    def since(self, mark: int) -> tuple[int, float]:
        """How many since ``mark`` (a former ``len(durations)``) and the longest, in ms."""
        new = self.durations[mark:]
        return len(new), max(new, default=0.0) * 1000

    def cpu_since(self, mark: int) -> tuple[float, float]:
        """The longest and the sum of their CPU times since ``mark``, in ms."""
        new = self.cpu_durations[mark:]
        return max(new, default=0.0) * 1000, sum(new) * 1000


def ran(handle: asyncio.events.Handle) -> str:
    """What a callback ran: a task's step says which task and where it stopped (a worker, a widget's
    message loop), not just "TaskStepMethWrapper"."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" at {frame.f_code.co_name}:{frame.f_lineno}" if frame is not None else ""
        return f"task {task.get_name()} {getattr(coro, '__qualname__', coro)}{where}"[:200]
    return repr(handle)[:200]


class LoopHolds:
    """How long each callback of the event loop held it (a key that lands meanwhile waits that long):
    times every ``Handle._run`` (task steps, timers, call_soon) while ``recording``, whatever the tree.
    In CPU time of the loop's thread (what a loaded host does not inflate) and in wall time."""

    def __init__(self) -> None:
        self.recording = False
        self.durations: list[float] = []  # CPU
        self.walls: list[float] = []
        self.longest: list[tuple[float, float, str]] = []  # the five longest in CPU: CPU, wall, what
        # With ``by_kind``: CPU seconds per kind of callback (what ran, without where it stopped), to
        # tell the compositor's passes from the refresh and the engine's tasks (costs a little CPU).
        self.by_kind: dict[str, float] | None = None
        # While a key is pressed (see press): every callback that ran before its paint, CPU, wall, what;
        # the slowest presses then say what held them (the chart, a refresh, the table's own render...).
        self.during: list[tuple[float, float, str]] | None = None
        original = asyncio.events.Handle._run
        holds = self

        def timed(handle: asyncio.events.Handle) -> None:
            during = holds.during  # the press's own step ends it (see press)
            if during is not None:
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    return original(handle)
                finally:
                    used, held = time.thread_time() - cpu, time.perf_counter() - started
                    # Naming a callback (repr of its task) costs more than most callbacks: only the
                    # ones long enough to be among a press's longest are named.
                    during.append((used, held, ran(handle) if used > 0.001 or held > 0.005 else ""))
            if not holds.recording:
                return original(handle)
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(handle)
            finally:
                used, held = time.thread_time() - cpu, time.perf_counter() - started
                holds.durations.append(used)
                holds.walls.append(held)
                if holds.by_kind is not None:
                    kind = re.sub(r" at [^ ]*$| at 0x[0-9a-f]+|0x[0-9a-f]+", "", ran(handle))[:90]
                    holds.by_kind[kind] = holds.by_kind.get(kind, 0.0) + used
                if len(holds.longest) < 5 or used > holds.longest[-1][0]:
                    holds.longest = sorted([*holds.longest, (used, held, ran(handle))], reverse=True)[:5]

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def figures(self, seconds: float) -> dict[str, Any]:
        used, held = self.durations, self.walls
        return {
            "idle_hold_cpu_max_ms": max(used, default=0.0) * 1000,
            "idle_hold_cpu_p999_ms": percentile(used, 0.999) * 1000,
            "idle_holds_cpu_over_5ms_per_s": sum(1 for d in used if d > 0.005) / seconds,
            "idle_loop_cpu_percent": sum(used) / seconds * 100,
            "idle_hold_max_ms": max(held, default=0.0) * 1000,
            "idle_hold_p999_ms": percentile(held, 0.999) * 1000,
            "idle_hold_longest": [
                f"{cpu * 1000:.1f} ms CPU ({wall * 1000:.0f} wall) {what}" for cpu, wall, what in self.longest
            ],
            "idle_cpu_by_kind": [
                f"{cpu / seconds * 100:.2f} % {kind}"
                for kind, cpu in sorted((self.by_kind or {}).items(), key=lambda kv: -kv[1])[:12]
            ],
        }


HOLDS = LoopHolds()  # one wrapper of the loop's callbacks for the process (see press)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def app_document(name: str, replicas: int) -> dict[str, Any]:
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
            "minReplicas": replicas,
            "maxReplicas": replicas * 2,
            "windowSeconds": 60,
        },
        "healthCheck": {
            "path": "/health",
            "periodSeconds": HEALTH_PERIOD_SECONDS,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
    }


async def start_fleet(engine: Any, apps: int, replicas: int, ready_within: float | None = 600.0) -> list[str]:
    """Registers and ups ``apps`` apps of ``replicas`` each on a started engine (50 ups at a time) and
    waits until every replica is ready; ``ready_within`` seconds at the most (None: as long as it takes).
    Both console benches start their fleet here. Returns the apps' names."""
    names = [f"fleet-{i:04d}" for i in range(apps)]
    for name in names:
        await engine.register(app_document(name, replicas))
    for batch in range(0, apps, 50):
        await asyncio.gather(*(engine.up(n) for n in names[batch : batch + 50]))
    deadline = None if ready_within is None else time.monotonic() + ready_within
    while sum(engine.reconciler.ready_count(n) for n in names) < apps * replicas:
        if deadline is not None and time.monotonic() > deadline:
            raise RuntimeError("the fleet never became ready")
        await asyncio.sleep(0.5)
    return names


async def wander_load(runtime: Any) -> None:
    """Every replica's CPU and memory move each second, as a real fleet's do: every refresh then
    changes figures in the apps and replicas tables (a steady 5 % would leave their cells alone)."""
    rng = random.Random(7)
    while True:
        for container in list(runtime.containers.values()):
            container.cpu_percent = rng.uniform(1.0, 60.0)
            container.memory_bytes = rng.randint(8, 200) * 1024 * 1024
        await asyncio.sleep(1.0)


class Paints:
    """Wraps the app's ``_display`` (called once per painted screen, headless too) to time paints."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[float]]] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None:
                return
            self.count += 1
            now = time.perf_counter()
            for waiter in list(self._waiters):
                check, future = waiter
                if not future.done() and check():
                    future.set_result(now)
                    self._waiters.remove(waiter)

        app._display = display

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> float:
        """The perf_counter of the first paint after which ``check()`` holds."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((check, future))
        return await asyncio.wait_for(future, timeout)


Press = tuple[float, float, str]  # wall and CPU seconds, and what held the loop meanwhile


async def press(app: Any, paints: Paints, key: str, shown: Callable[[], bool]) -> Press:
    """Seconds from ``key`` entering the app to the first paint where ``shown()`` holds, the process
    CPU seconds spent meanwhile (what a loaded host does not inflate), and the three loop callbacks that
    ran longest meanwhile (what a slow press waited for)."""
    from textual import events

    event = events.Key(key, None)
    event.set_sender(app)
    HOLDS.during = []
    started, cpu = time.perf_counter(), time.process_time()
    waiting = asyncio.ensure_future(paints.until(shown))
    app._driver.send_message(event)
    try:
        painted = await waiting
    finally:
        ran_meanwhile, HOLDS.during = HOLDS.during, None
    used = time.process_time() - cpu
    longest = sorted(ran_meanwhile, reverse=True)[:3]
    what = f"{len(ran_meanwhile)} callbacks; longest: " + "; ".join(
        f"{c * 1000:.1f} ms CPU ({w * 1000:.1f} wall) {shorter(name)}" for c, w, name in longest
    )
    await asyncio.sleep(0.02)  # a person's next key comes later than the paint
    return painted - started, used, what


def shorter(what: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+|0x[0-9a-f]+", "", what)[:110]


async def measure(
    apps: int,
    replicas: int,
    seconds: float,
    presses: int,
    profile_to: str | None = None,
    long_idle: float = 0.0,
    by_kind: bool = False,
) -> dict[str, Any]:
    """One size in this process (``profile_to``: cProfile statistics of the idle period, written to
    that file; ``long_idle``: seconds more of idle, RSS sampled every 30 s, before the presses;
    ``by_kind``: the idle loop's CPU per kind of callback)."""
    from memory_fleet_engine import memory_fleet_engine

    from orchestry_tui.console.app import OrchestryConsole
    from orchestry_tui.console.engine_backend import EngineBackend
    from orchestry_tui.console.widgets.keyed_table import KeyedTable

    with tempfile.TemporaryDirectory(prefix="orchestry-console-fleet-") as tmp:
        engine, runtime = memory_fleet_engine(Path(tmp) / "state", "cfleet")
        await engine.start()
        await start_fleet(engine, apps, replicas)
        wander = asyncio.create_task(wander_load(runtime))
        await asyncio.sleep(3.0)  # first samples and probes

        prefs = Path(tmp) / "config.toml"
        backend = EngineBackend(engine.settings, engine=engine, serve_api=False)
        app = OrchestryConsole(backend, preferences_path=prefs)
        profile = cProfile.Profile() if profile_to else None
        holds = HOLDS
        holds.by_kind = {} if by_kind else None
        started, cpu_started = time.perf_counter(), cpu_seconds()
        result: dict[str, Any] = {"apps": apps, "replicas": apps * replicas}
        async with app.run_test(size=SIZE) as pilot:
            paints = Paints(app)
            first_screen = await paints.until(lambda: True)
            first_data = await paints.until(lambda: app.frames_applied >= 1)
            first_data_cpu = cpu_seconds() - cpu_started
            result["first_screen_s"] = first_screen - started
            result["first_data_s"] = first_data - started
            await asyncio.sleep(5.0)  # charts, events and log tails arrive
            # ...and the screens built and painted ahead after the first frame (some 30 steps 0.1 s
            # apart, each 5-40 ms of CPU): on a loaded host they ran on into the idle period, whose
            # figure then counted a start-up cost. The idle period starts once they are all built.
            for _ in range(300):  # 30 s at the most
                if getattr(app, "screens_warmed", True):
                    break
                await asyncio.sleep(0.1)
            result["screens_warmed_s"] = time.perf_counter() - first_data
            result["first_data_cpu_s"] = first_data_cpu
            if profile is not None:
                profile.enable()
            cpu_before, wall_before, frames_before = cpu_seconds(), time.monotonic(), app.frames_applied
            paints_before = paints.count
            full_gcs = FullCollections()
            holds.recording = True
            await asyncio.sleep(seconds)
            holds.recording = False
            if profile is not None and profile_to:
                profile.disable()
                profile.dump_stats(profile_to)
            result["idle_cpu_percent"] = (cpu_seconds() - cpu_before) / (time.monotonic() - wall_before) * 100
            result["idle_frames"] = app.frames_applied - frames_before
            result["idle_paints_per_s"] = (paints.count - paints_before) / (time.monotonic() - wall_before)
            result["idle_full_gc_n"], result["idle_full_gc_max_ms"] = full_gcs.since(0)
            result.update(holds.figures(time.monotonic() - wall_before))
            result["idle_full_gc_cpu_max_ms"], result["idle_full_gc_cpu_ms"] = full_gcs.cpu_since(0)
            result["rss_idle_mb"] = rss_mb()
            # Beside RSS: the metric windows' buckets (apps keep 15 minutes: they fill for that long,
            # then stay level) and the blocks Python has allocated, to tell their growth from the rest.
            windows = engine.metrics.windows
            series, buckets, blocks = [rss_mb()], [window_buckets(windows)], [sys.getallocatedblocks()]
            for _ in range(int(long_idle // 30)):
                await asyncio.sleep(30)
                series.append(rss_mb())
                buckets.append(window_buckets(windows))
                blocks.append(sys.getallocatedblocks())
            result["rss_series_mb"] = series
            result["window_buckets_series"] = buckets
            result["allocated_blocks_series"] = blocks
            pressing_from = len(full_gcs.durations)

            apps_table = app.query_one("#apps", KeyedTable)
            replicas_table = app.query_one("#replicas", KeyedTable)
            pane = app.query_one("#replicas-pane")
            apps_table.focus()
            await pilot.pause()

            def apps_moved(key: str) -> float:
                before = apps_table.cursor_row
                want = before + 1 if key == "down" else before - 1

                def shown() -> bool:
                    name = app.selected
                    return (
                        apps_table.cursor_row == want
                        and name is not None
                        and pane.border_title == f"replicas of {name}"
                        and replicas_table.selected_key is not None
                        and replicas_table.selected_key.startswith(name)
                    )

                return shown  # type: ignore[return-value]

            move_app: list[Press] = []
            for i in range(presses):
                span = max(1, min(5, apps_table.row_count - 1))
                key = "down" if (i // span) % 2 == 0 else "up"  # five down, five up: stays near the top
                move_app.append(await press(app, paints, key, apps_moved(key)))  # type: ignore[arg-type]

            replicas_table.focus()
            await pilot.pause()
            move_replica: list[Press] = []
            for i in range(presses):
                span = max(1, min(3, replicas_table.row_count - 1))
                key = "down" if (i // span) % 2 == 0 else "up"
                before = replicas_table.cursor_row
                want = before + 1 if key == "down" else before - 1
                move_replica.append(
                    await press(app, paints, key, lambda w=want: replicas_table.cursor_row == w)
                )

            apps_table.focus()
            await pilot.pause()
            from orchestry_tui.console.screens.describe import DescribeScreen
            from orchestry_tui.console.screens.help import HelpScreen
            from orchestry_tui.console.screens.logs import LogsScreen
            from orchestry_tui.console.screens.nodes import NodesScreen
            from orchestry_tui.console.screens.whatif import WhatIfScreen

            views = {"whatif": ("w", WhatIfScreen), "logs": ("l", LogsScreen), "nodes": ("n", NodesScreen)}
            opened: dict[str, list[Press]] = {name: [] for name in views}
            closed: dict[str, list[Press]] = {name: [] for name in views}

            open_help: list[Press] = []
            close_help: list[Press] = []
            open_describe: list[Press] = []
            close_describe: list[Press] = []
            for _ in range(max(1, presses // 4)):
                open_help.append(
                    await press(app, paints, "question_mark", lambda: isinstance(app.screen, HelpScreen))
                )
                close_help.append(await press(app, paints, "escape", lambda: len(app.screen_stack) == 1))
                open_describe.append(
                    await press(app, paints, "d", lambda: isinstance(app.screen, DescribeScreen))
                )
                close_describe.append(await press(app, paints, "escape", lambda: len(app.screen_stack) == 1))
                for name, (key, kind) in views.items():
                    opened[name].append(
                        await press(app, paints, key, lambda kind=kind: isinstance(app.screen, kind))
                    )
                    closed[name].append(
                        await press(app, paints, "escape", lambda: len(app.screen_stack) == 1)
                    )

            # Scrolling: PageDown from the top of each table to its end.
            apps_table.focus()
            apps_table.move_cursor(row=0)
            await pilot.pause()
            scroll_apps: list[Press] = []
            while apps_table.cursor_row < apps_table.row_count - 1 and len(scroll_apps) < 200:
                before = apps_table.cursor_row
                scroll_apps.append(
                    await press(
                        app,
                        paints,
                        "pagedown",
                        lambda b=before: (
                            apps_table.cursor_row > b and pane.border_title == f"replicas of {app.selected}"
                        ),
                    )
                )
            replicas_table.focus()
            replicas_table.move_cursor(row=0)
            await pilot.pause()
            scroll_replicas: list[Press] = []
            for _ in range(max(1, presses // 4)):
                replicas_table.move_cursor(row=0)
                await pilot.pause()
                while replicas_table.cursor_row < replicas_table.row_count - 1:
                    before = replicas_table.cursor_row
                    scroll_replicas.append(
                        await press(app, paints, "pagedown", lambda b=before: replicas_table.cursor_row > b)
                    )
        result["press_full_gc_n"], result["press_full_gc_max_ms"] = full_gcs.since(pressing_from)
        result["press_full_gc_cpu_max_ms"], result["press_full_gc_cpu_ms"] = full_gcs.cpu_since(pressing_from)
        result["rss_end_mb"] = rss_mb()
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds / 2)
        result["engine_alone_cpu_percent"] = (
            (cpu_seconds() - cpu_before) / (time.monotonic() - wall_before) * 100
        )
        wander.cancel()
        await engine.stop(stop_apps=False)

    slowest: list[tuple[float, float, str, int, str]] = []  # which press a p99 is: often a screen's first

    def figures(name: str, presses: list[Press]) -> None:
        values = [wall for wall, _cpu, _what in presses]
        cpus = [cpu for _wall, cpu, _what in presses]
        result[f"{name}_p50_ms"] = statistics.median(values) * 1000 if values else float("nan")
        result[f"{name}_p99_ms"] = percentile(values, 0.99) * 1000
        result[f"{name}_max_ms"] = max(values) * 1000 if values else float("nan")
        result[f"{name}_cpu_ms"] = statistics.median(cpus) * 1000 if presses else 0.0
        result[f"{name}_cpu_p99_ms"] = percentile(cpus, 0.99) * 1000
        result[f"{name}_n"] = len(values)
        if name.startswith("open_") and len(presses) > 1:
            # A screen's first open against its later ones: the first may still build or lay out what
            # the later ones find done.
            result[f"{name}_first_ms"], result[f"{name}_first_cpu_ms"] = values[0] * 1000, cpus[0] * 1000
            result[f"{name}_later_p99_ms"] = percentile(values[1:], 0.99) * 1000
            result[f"{name}_later_cpu_p99_ms"] = percentile(cpus[1:], 0.99) * 1000
        # The slowest three presses of the kind, with what held the loop meanwhile.
        ranked = sorted(((w, c, i, x) for i, (w, c, x) in enumerate(presses)), reverse=True)
        result[f"{name}_slowest"] = [
            f"{wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU: #{i + 1}: {what}"
            for wall, cpu, i, what in ranked[:3]
        ]
        if name != "every_key":
            slowest.extend((wall, cpu, name, i + 1, what) for i, (wall, cpu, what) in enumerate(presses))

    every = [
        *move_app,
        *move_replica,
        *open_help,
        *close_help,
        *open_describe,
        *close_describe,
        *(p for name in views for p in (*opened[name], *closed[name])),
        *scroll_apps,
        *scroll_replicas,
    ]
    figures("every_key", every)
    result["every_key_cpu_p50_ms"] = result["every_key_cpu_ms"]

    figures("move_app", move_app)
    figures("move_replica", move_replica)
    figures("open_help", open_help)
    figures("close_help", close_help)
    figures("open_describe", open_describe)
    figures("close_describe", close_describe)
    for name in views:
        figures(f"open_{name}", opened[name])
        figures(f"close_{name}", closed[name])
    figures("scroll_apps", scroll_apps)
    figures("scroll_replicas", scroll_replicas)
    result["slowest_presses"] = [
        f"{wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU: {name} #{nth}\n      {what}"
        for wall, cpu, name, nth, what in sorted(slowest, reverse=True)[:8]
    ]
    return result


def run_size(
    apps: int,
    replicas: int,
    seconds: float,
    presses: int,
    tree: Path,
    long_idle: float,
    label: str = "",
    by_kind: bool = False,
) -> dict[str, Any]:
    """One size in a child process running ``tree`` (bench/_children.py); prints its header line."""
    args = [
        "--child",
        f"{apps}x{replicas}",
        "--seconds",
        str(seconds),
        "--presses",
        str(presses),
        "--long-idle",
        str(long_idle),
        *(["--by-callback"] if by_kind else []),
    ]
    row = run_child(Path(__file__), tree, args, f"{apps}×{replicas}{label}")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"  {apps}×{replicas}{label}: {ran_line(row)} (load {load})", flush=True)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    ours = [r for r in rows if r["tree"] == "this"]
    base = next((r for r in rows if r["tree"] == "baseline"), None)
    header = f"{'':<36}" + "".join(
        f"{str(r['replicas']) + (' (base)' if r['tree'] == 'baseline' else ' replicas'):>16}" for r in rows
    )
    header += "   growth" if len(ours) > 1 else ""
    header += "  vs base" if base is not None else ""
    print(header)

    def line(label: str, key: str, unit: str = "") -> None:
        cells = "".join(f"{r[key]:>14.2f}{unit:<2}" for r in rows)
        ratios = ""
        if len(ours) > 1:
            ratios += f"  {ours[-1][key] / ours[0][key]:6.2f}×" if ours[0][key] else "        "
        if base is not None:
            ratios += f"  {ours[-1][key] / base[key]:6.2f}×" if base[key] else ""
        print(f"{label:<36}{cells}{ratios}")

    line("first screen", "first_screen_s", " s")
    line("first data frame", "first_data_s", " s")
    line("first data frame, CPU time", "first_data_cpu_s", " s")
    line("idle from (s after the first frame)", "screens_warmed_s", " s")
    line("idle CPU (console + engine)", "idle_cpu_percent", " %")
    line("idle CPU, engine alone after", "engine_alone_cpu_percent", " %")
    line("idle paints (compositor passes) /s", "idle_paints_per_s", "  ")
    line("idle: loop thread's CPU in callbacks", "idle_loop_cpu_percent", " %")
    line("idle: longest callback, CPU", "idle_hold_cpu_max_ms", "ms")
    line("idle: callback p99.9, CPU", "idle_hold_cpu_p999_ms", "ms")
    line("idle: callbacks over 5 ms CPU /s", "idle_holds_cpu_over_5ms_per_s", "  ")
    line("idle: longest callback, wall", "idle_hold_max_ms", "ms")
    line("idle: callback p99.9, wall", "idle_hold_p999_ms", "ms")
    line("full collections while idle", "idle_full_gc_n", "  ")
    line("  longest", "idle_full_gc_max_ms", "ms")
    line("  longest, CPU", "idle_full_gc_cpu_max_ms", "ms")
    line("  all of them, CPU", "idle_full_gc_cpu_ms", "ms")
    line("full collections while pressing", "press_full_gc_n", "  ")
    line("  longest", "press_full_gc_max_ms", "ms")
    line("  longest, CPU", "press_full_gc_cpu_max_ms", "ms")
    line("  all of them, CPU", "press_full_gc_cpu_ms", "ms")
    line("RSS after the idle period", "rss_idle_mb", "MB")
    line("RSS at the end", "rss_end_mb", "MB")
    print("keypress latency, every press of every kind below (press → first paint showing its effect):")
    line("  wall p50", "every_key_p50_ms", "ms")
    line("  wall p99", "every_key_p99_ms", "ms")
    line("  CPU p50", "every_key_cpu_p50_ms", "ms")
    line("  CPU p99", "every_key_cpu_p99_ms", "ms")
    for key, label in (
        ("move_app", "apps cursor ↓/↑ (replicas shown)"),
        ("move_replica", "replicas cursor ↓/↑"),
        ("open_help", "open help (?)"),
        ("close_help", "close help (esc)"),
        ("open_describe", "open describe (d)"),
        ("close_describe", "close describe (esc)"),
        ("open_whatif", "open what-if (w)"),
        ("close_whatif", "close what-if (esc)"),
        ("open_logs", "open logs (l)"),
        ("close_logs", "close logs (esc)"),
        ("open_nodes", "open nodes (n)"),
        ("close_nodes", "close nodes (esc)"),
        ("scroll_apps", "PageDown, apps table"),
        ("scroll_replicas", "PageDown, replicas table"),
    ):
        line(f"{label} p50", f"{key}_p50_ms", "ms")
        line(f"{label} p99", f"{key}_p99_ms", "ms")
        line(f"{label} CPU p50", f"{key}_cpu_ms", "ms")
        line(f"{label} CPU p99", f"{key}_cpu_p99_ms", "ms")
        if f"{key}_first_ms" in rows[0]:
            line(f"{label} #1", f"{key}_first_ms", "ms")
            line(f"{label} #2+ p99", f"{key}_later_p99_ms", "ms")
            line(f"{label} #1 CPU", f"{key}_first_cpu_ms", "ms")
            line(f"{label} #2+ CPU p99", f"{key}_later_cpu_p99_ms", "ms")
    line("PageDown apps table max", "scroll_apps_max_ms", "ms")
    line("PageDown replicas table max", "scroll_replicas_max_ms", "ms")
    print(
        f"presses per row: {', '.join(str(r['move_app_n']) for r in rows)} (apps cursor);"
        f" PageDowns: {', '.join(str(r['scroll_apps_n']) for r in rows)} (apps table)"
    )
    print(f"presses in all: {', '.join(str(r['every_key_n']) for r in rows)}")
    for r in rows:
        if len(r["rss_series_mb"]) > 1:
            tree = f"{r['replicas']}{' (base)' if r['tree'] == 'baseline' else ''}"
            samples = " ".join(f"{mb:.0f}" for mb in r["rss_series_mb"])
            print(f"RSS every 30 s of the long idle, {tree}: {samples} MB")
            print(f"  {long_idle_summary(r['rss_series_mb'])}")
            buckets = " ".join(str(n) for n in r["window_buckets_series"])
            print(f"  metric-window buckets, same instants: {buckets}")
            blocks = " ".join(f"{n / 1000:.0f}" for n in r["allocated_blocks_series"])
            print(f"  Python's allocated blocks (thousands), same instants: {blocks}")
    for r in rows:
        tree = f"{r['replicas']}{' (base)' if r['tree'] == 'baseline' else ''}"
        print(f"slowest presses (kind #nth press of that kind), {tree}:")
        for slow in r.get("slowest_presses", []):
            print(f"  {slow}")
    for r in rows:
        tree = f"{r['replicas']}{' (base)' if r['tree'] == 'baseline' else ''}"
        print(f"slowest PageDowns in the apps table, {tree}:")
        for slow in r.get("scroll_apps_slowest", []):
            print(f"  {slow}")
    for r in rows:
        tree = f"{r['replicas']}{' (base)' if r['tree'] == 'baseline' else ''}"
        print(f"longest idle callbacks, {tree}:")
        for held in r["idle_hold_longest"]:
            print(f"  {held}")
        if r.get("idle_cpu_by_kind"):
            print(f"idle loop CPU by kind of callback (% of a core), {tree}:")
            for kind in r["idle_cpu_by_kind"]:
                print(f"  {kind}")
    print(f"goals at 1,000 replicas: {GOALS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10x10,100x10", help="APPSxREPLICAS per app, comma separated")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--presses", type=int, default=40)
    add_tree_arguments(parser, "another checkout (e.g. /work/main) measured at the largest size too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help="with --child: write cProfile statistics of the idle period here")
    parser.add_argument(
        "--long-idle", type=float, default=0.0, help="seconds more of idle, RSS every 30 s, before presses"
    )
    parser.add_argument(
        "--by-callback",
        action="store_true",
        help="print the idle loop's CPU per kind of callback (the timing costs both trees a little CPU)",
    )
    args = parser.parse_args()
    if args.child:
        import logging

        enter_tree(args.tree)
        logging.basicConfig(level=logging.WARNING)
        apps, replicas = (int(x) for x in args.child.split("x"))
        measured = measure(
            apps, replicas, args.seconds, args.presses, args.profile, args.long_idle, args.by_callback
        )
        print(json.dumps({**asyncio.run(measured), "ran": ran_from(args.tree)}))
        return
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"console at fleet size: in-memory runtime, health every {HEALTH_PERIOD_SECONDS} s, production"
        f" intervals, {SIZE[0]}×{SIZE[1]}, every default pane shown; {os.cpu_count()} CPUs, load {load}"
    )
    rows = []

    def add_row(apps: int, replicas: int, tree: Path, which: str, label: str = "") -> None:
        # This tree and the baseline run the same child; only the tree and the row's label differ.
        row = run_size(
            apps, replicas, args.seconds, args.presses, tree, args.long_idle, label, by_kind=args.by_callback
        )
        rows.append({**row, "tree": which})

    for size in args.sizes.split(","):
        apps, replicas = (int(x) for x in size.split("x"))
        add_row(apps, replicas, args.tree, "this")
    if args.baseline is not None:
        add_row(apps, replicas, args.baseline, "baseline", " (baseline)")
        print(f"baseline tree: {args.baseline} (last column; ratio = this tree ÷ baseline at {size})")
    print_table(rows)


if __name__ == "__main__":
    main()
