"""The engine's idle CPU at fleet size, without the console: where goal 5's "engine alone" goes.

The REAL engine on the in-memory runtime (bench/memory_fleet_engine.py: production scaler, metrics and
relist periods, health checks every 10 s) with 100 apps of 10 replicas whose CPU and memory wander
every second (as in bench/console_fleet.py).  After the fleet is ready and a warm-up, the process only
idles; printed per tree, in rounds that alternate this tree and the baseline (a shared host drifts):

- CPU: utime + stime of the process (every thread) over the measured period, as % of one core; the
  event loop's thread alone; the other threads (cgroup reads, store writes, connection counts);
- the event loop's turns per second (each a call of its selector's ``select``) and, of those, its
  wakeups: the turns that waited (a timeout other than 0) and so slept in epoll until a timer or a
  file descriptor woke them.  A turn costs the loop its bookkeeping even when its callbacks do little;
  two timers a hair apart are two wakeups where one would do;
- garbage collections of each generation while idle: how many and their CPU (a full collection stops
  the event loop for the whole heap: in the console's process the console's objects too);
- objects moved into the oldest generation per minute, counted in a second period of the same length
  (counting costs CPU, so not while CPU is measured): the young objects still alive at a collection
  of the middle generation.  Python starts a full collection once these reach a quarter of the heap,
  so this rate sets how often full collections come.

Prints figures; asserts nothing.

    .venv/bin/python bench/engine_idle.py [--apps 100] [--replicas 10] [--seconds 60] [--warmup 20]
                                          [--rounds 2] [--tree TREE] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _children import add_tree_arguments, enter_tree, ran_from, ran_line, run_child

TICK = 1 / os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process."""
    found: dict[int, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            raw = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = raw[raw.rindex(")") + 2 :].split()
        found[int(tid)] = (int(fields[11]) + int(fields[12])) * TICK
    return found


class Collections:
    """Each generation's collections and their CPU while ``recording``; with ``counting_promotions``
    also how many objects each collection of the middle generation moved into the oldest."""

    def __init__(self) -> None:
        self.recording = False
        self.counting_promotions = False
        self.count = [0, 0, 0]
        self.cpu = [0.0, 0.0, 0.0]
        self.promoted = 0
        self._started = 0.0
        self._oldest_before = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if self.counting_promotions and generation == 1:
            oldest = len(gc.get_objects(generation=2))
            if phase == "start":
                self._oldest_before = oldest
            else:
                self.promoted += max(0, oldest - self._oldest_before)
        if not self.recording:
            return
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.count[generation] += 1
            self.cpu[generation] += time.thread_time() - self._started


class LoopTurns:
    """Counts the running loop's turns and wakeups while installed (a wrapper around its selector's
    ``select``: one Python call per turn, nothing per callback)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.turns = 0
        self.wakeups = 0
        self._selector = loop._selector  # type: ignore[attr-defined]
        self._select = self._selector.select

    def _counting_select(self, timeout: float | None = None) -> Any:
        self.turns += 1
        if timeout != 0:
            self.wakeups += 1
        return self._select(timeout)

    def __enter__(self) -> LoopTurns:
        self._selector.select = self._counting_select
        return self

    def __exit__(self, *exc: object) -> None:
        del self._selector.select  # the instance attribute goes; the class's method is back


async def measure(apps: int, replicas: int, seconds: float, warmup: float) -> dict[str, Any]:
    from console_fleet import start_fleet, wander_load
    from memory_fleet_engine import memory_fleet_engine

    collections = Collections()
    with tempfile.TemporaryDirectory(prefix="orchestry-engine-idle-") as tmp:
        engine, runtime = memory_fleet_engine(Path(tmp) / "state", "idle")
        await engine.start()
        await start_fleet(engine, apps, replicas)
        wander = asyncio.create_task(wander_load(runtime))
        await asyncio.sleep(warmup)

        loop_thread = threading.get_native_id()
        threads_before = thread_cpu()
        times_before, wall_before = os.times(), time.monotonic()
        collections.recording = True
        with LoopTurns(asyncio.get_running_loop()) as turns:
            await asyncio.sleep(seconds)
        collections.recording = False
        wall = time.monotonic() - wall_before
        times_after, threads_after = os.times(), thread_cpu()
        process = times_after.user + times_after.system - times_before.user - times_before.system
        loop_cpu = threads_after.get(loop_thread, 0.0) - threads_before.get(loop_thread, 0.0)

        collections.counting_promotions = True
        promoted_from = time.monotonic()
        await asyncio.sleep(seconds)
        collections.counting_promotions = False
        promoted_over = time.monotonic() - promoted_from
        heap = len(gc.get_objects())

        wander.cancel()
        await engine.stop(stop_apps=False)
    return {
        "cpu_percent": process / wall * 100,
        "loop_cpu_percent": loop_cpu / wall * 100,
        "threads_cpu_percent": (process - loop_cpu) / wall * 100,
        "turns_per_s": turns.turns / wall,
        "wakeups_per_s": turns.wakeups / wall,
        "gc_counts": collections.count,
        "gc_cpu_ms": [c * 1000 for c in collections.cpu],
        "gc_cpu_percent": sum(collections.cpu) / wall * 100,
        "promoted_per_min": collections.promoted / promoted_over * 60,
        "tracked_objects": heap,
        "seconds": wall,
    }


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    add_tree_arguments(parser, "another checkout (e.g. a worktree at main's commit) measured beside it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import logging

        enter_tree(args.tree)
        logging.basicConfig(level=logging.WARNING)
        result = asyncio.run(measure(args.apps, args.replicas, args.seconds, args.warmup))
        print(json.dumps({**result, "ran": ran_from(args.tree)}))
        return
    trees = [("this", args.tree)] + ([("baseline", args.baseline)] if args.baseline else [])
    print(
        f"engine alone, idle: {args.apps} apps × {args.replicas} replicas on the in-memory runtime,"
        f" {args.seconds:.0f} s measured after {args.warmup:.0f} s of warm-up; {os.cpu_count()} CPUs,"
        f" load {load_average()} at start"
    )
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
    child = ["--child", "--apps", str(args.apps), "--replicas", str(args.replicas)]
    child += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    for round_ in range(1, args.rounds + 1):
        # Baseline first in odd rounds, this tree first in even ones: neither always gets the quieter slot.
        order = trees[::-1] if round_ % 2 else trees
        for name, tree in order:
            load = load_average()
            row = run_child(Path(__file__), tree, child, f"{name} tree")
            rows[name].append(row)
            print(
                f"  round {round_} {name:<8} {ran_line(row)} (load {load} → {load_average()}):"
                f" CPU {row['cpu_percent']:.2f} %, loop thread {row['loop_cpu_percent']:.2f} %,"
                f" other threads {row['threads_cpu_percent']:.2f} %; loop turns {row['turns_per_s']:.1f}/s,"
                f" wakeups {row['wakeups_per_s']:.1f}/s; collections"
                f" {'/'.join(str(n) for n in row['gc_counts'])}"
                f" ({'/'.join(f'{ms:.0f}' for ms in row['gc_cpu_ms'])} ms CPU);"
                f" {row['promoted_per_min']:.0f} objects/min into the oldest generation",
                flush=True,
            )
    print()
    print(f"  {'mean of the rounds':<42}" + "".join(f"{name:>12}" for name, _ in trees))
    for key, label in (
        ("cpu_percent", "CPU, % of one core"),
        ("loop_cpu_percent", "  the event loop's thread"),
        ("threads_cpu_percent", "  the other threads"),
        ("gc_cpu_percent", "  garbage collections (all generations)"),
        ("turns_per_s", "event loop turns / s"),
        ("wakeups_per_s", "  wakeups (turns that waited) / s"),
        ("promoted_per_min", "objects into the oldest generation / min"),
        ("tracked_objects", "objects the collector tracks"),
    ):
        means = [sum(r[key] for r in rows[name]) / len(rows[name]) for name, _ in trees]
        ratio = f"{means[0] / means[1]:10.2f}×" if len(means) > 1 and means[1] else ""
        print(f"  {label:<42}" + "".join(f"{m:>12.2f}" for m in means) + ratio)


if __name__ == "__main__":
    main()
