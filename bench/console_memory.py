"""What keeps growing in the console at fleet size once the metric windows are full.

The same process as ``console_fleet.py`` (real engine on the in-memory runtime, APPS × REPLICAS whose
CPU and memory move every second, the console attached headless at 200×50) sits idle.  Every 30 s:
RSS, the windows' buckets, Python's allocated blocks, glibc's heap (``mallinfo2``: in use, free inside
the heap, mmapped) and what SQLite has allocated (its page caches).  ``tracemalloc`` starts at
``--trace-from`` minutes; at each of ``--marks`` minutes the probe takes a snapshot, counts gc-tracked
objects by type (frozen ones too) and measures every dict, list, set, deque, Textual/Rich cache and
``functools.lru_cache`` reachable from a tracked object.  At the end it prints, between the first and
the last mark: traced memory grouped by traceback and by file, type counts, and the containers that
grew, with what holds them.

tracemalloc slows every allocation: at 1,000 replicas on a loaded 2-core host the engine fell behind
(fewer window buckets) and the first mark's census held the loop past the 30 s lease.  Trace a smaller
fleet (``--sizes 20x10 --trace-from 0``: from the start, so buckets that roll out of a window count as
freed), and sample the large one untraced (``--marks "" --minutes 30``).

Prints figures; asserts nothing.

    .venv/bin/python bench/console_memory.py [--sizes 100x10] [--trace-from 15] [--marks 16,26]
                                             [--minutes 0] [--frames 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import functools
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _children import enter_tree
from console_fleet import SIZE, rss_mb, start_fleet, wander_load, window_buckets

MIN_LEN = 20  # smaller containers are not followed (there are hundreds of thousands)


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def glibc_heap_mb() -> tuple[float, float, float]:
    """glibc's main arena + mmapped: (in use, free inside the heap, mmapped) in MB."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return info.uordblks / 2**20, info.fordblks / 2**20, info.hblkhd / 2**20


def sqlite_mb() -> float:
    """What SQLite has malloc'd (its page caches, one per pooled connection, up to ~2 MB each), in MB;
    NaN when Python's sqlite3 is not the system's shared library."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return float("nan")
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return lib.sqlite3_memory_used() / 2**20


def all_tracked() -> list[Any]:
    """Every gc-tracked object, frozen ones too (``gc.get_objects`` skips the permanent generation)."""
    frozen = gc.get_freeze_count() > 0
    if frozen:
        gc.unfreeze()
    try:
        return gc.get_objects()
    finally:
        if frozen:
            gc.freeze()


def size_of(obj: Any) -> int | None:
    if isinstance(obj, (dict, list, set, frozenset, collections.deque)):
        return len(obj)
    if isinstance(obj, functools._lru_cache_wrapper):
        return obj.cache_info().currsize
    if "cache" in type(obj).__name__.lower() and hasattr(type(obj), "__len__"):
        try:
            return len(obj)
        except Exception:
            return None
    return None


def census() -> tuple[collections.Counter[str], dict[int, tuple[str, int]], dict[int, Any]]:
    """Type counts of tracked objects; containers of at least MIN_LEN items by id: (type, len), and the
    containers themselves by id.  Untracked dicts (only atomic values) are found as referents of
    tracked objects."""
    objects = all_tracked()
    types: collections.Counter[str] = collections.Counter(type(o).__qualname__ for o in objects)
    containers: dict[int, tuple[str, int]] = {}
    held: dict[int, Any] = {}
    for obj in objects:
        for candidate in (obj, *(r for r in gc.get_referents(obj) if type(r) in (dict, list, set))):
            if id(candidate) in containers:
                continue
            n = size_of(candidate)
            if n is not None and n >= MIN_LEN:
                containers[id(candidate)] = (type(candidate).__qualname__, n)
                held[id(candidate)] = candidate
    del objects
    IGNORED.add(id(held))
    return types, containers, held


IGNORED: set[int] = set()  # the probe's own bookkeeping, never a holder


def holder(obj: Any, depth: int = 4) -> str:
    """Who holds ``obj``: the referrer's type and the attribute or key under which, up ``depth`` levels.
    Plain loops only: a comprehension naming ``current`` would make it a cell, itself a referrer."""
    path: list[str] = []
    current = obj
    frame_type = type(sys._getframe())
    for _ in range(depth):
        named = None
        for r in gc.get_referrers(current):
            if id(r) in IGNORED or isinstance(r, frame_type):
                continue
            if isinstance(r, dict):
                key = None
                for k, v in r.items():
                    if v is current:
                        key = k
                        break
                if key is None:
                    continue
                owner = None
                for o in gc.get_referrers(r):
                    if getattr(o, "__dict__", None) is r:
                        owner = o
                        break
                if owner is not None:
                    label = owner.__name__ if isinstance(owner, type(sys)) else type(owner).__qualname__
                    named = (f"{label}.{key}", owner)
                else:
                    named = (f"dict[{str(key)[:40]!r}]", r)
                break
            named = (type(r).__qualname__, r)
            break
        if named is None:
            path.append("?")
            break
        path.append(named[0])
        current = named[1]
    return " ← ".join(path)


async def run(
    apps: int, replicas: int, trace_from: float, marks: list[float], frames: int, minutes_at_least: float
) -> None:
    from memory_fleet_engine import memory_fleet_engine

    from orchestry_tui.console.app import OrchestryConsole
    from orchestry_tui.console.engine_backend import EngineBackend

    with tempfile.TemporaryDirectory(prefix="orchestry-console-memory-") as tmp:
        # A census holds the loop for many seconds: with marks, a lease that outlasts it, or the engine
        # steps down and its windows refill, and the comparison shows the refill.
        overrides = {"lease_ttl": 3600} if marks else {}
        engine, runtime = memory_fleet_engine(Path(tmp) / "state", "cmem", **overrides)
        await engine.start()
        await start_fleet(engine, apps, replicas, ready_within=None)
        started = time.monotonic()  # the apps' windows fill from about here
        wander = asyncio.create_task(wander_load(runtime))
        backend = EngineBackend(engine.settings, engine=engine, serve_api=False)
        app = OrchestryConsole(backend, preferences_path=Path(tmp) / "config.toml")
        windows = engine.metrics.windows
        taken: list[Any] = []
        async with app.run_test(size=SIZE):
            pending = sorted(marks)
            tracing = False
            ends = time.monotonic() + minutes_at_least * 60
            cpu_then, wall_then = time.process_time(), time.monotonic()
            while pending or time.monotonic() < ends:
                await asyncio.sleep(30)
                minutes = (time.monotonic() - started) / 60
                used, free, mapped = glibc_heap_mb()
                cpu_now, wall_now = time.process_time(), time.monotonic()
                cpu = (cpu_now - cpu_then) / (wall_now - wall_then) * 100  # % of a core, console + engine
                cpu_then, wall_then = cpu_now, wall_now
                load = " ".join(Path("/proc/loadavg").read_text().split()[:3])  # noqa: ASYNC240
                print(
                    f"{minutes:5.1f} min RSS {rss_mb():6.1f} MB buckets {window_buckets(windows):6d}"
                    f" blocks {sys.getallocatedblocks() / 1000:6.0f}k glibc in use {used:6.1f} free"
                    f" {free:5.1f} mmapped {mapped:5.1f} sqlite {sqlite_mb():5.1f} MB traced"
                    f" {tracemalloc.get_traced_memory()[0] / 2**20 if tracing else 0:5.1f} MB"
                    f" cpu {cpu:4.1f} % (load {load})",
                    flush=True,
                )
                if not tracing and pending and minutes >= trace_from:
                    tracemalloc.start(frames)
                    tracing = True
                    print(f"{minutes:5.1f} min tracemalloc started", flush=True)
                if tracing and pending and minutes >= pending[0]:
                    pending.pop(0)
                    snapshot = tracemalloc.take_snapshot()
                    if not pending:
                        tracemalloc.stop()  # the last census need not be traced (and goes faster)
                    types, containers, held = census()
                    taken.append((minutes, snapshot, types, containers, held))
                    print(
                        f"{minutes:5.1f} min mark: {sum(types.values())} tracked objects,"
                        f" {len(containers)} containers ≥ {MIN_LEN}",
                        flush=True,
                    )
            tracemalloc.stop()
            if len(taken) >= 2:
                # gc.get_referrers, like gc.get_objects, does not look at frozen objects.
                frozen = gc.get_freeze_count() > 0
                gc.unfreeze()
                report(taken)
                if frozen:
                    gc.freeze()
        wander.cancel()
        await engine.stop(stop_apps=False)


def report(taken: list[Any]) -> None:
    (m0, snap0, types0, cont0, held0), (m1, snap1, types1, cont1, held1) = taken[0], taken[-1]
    filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    stats = snap1.filter_traces(filters).compare_to(snap0.filter_traces(filters), "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"\ntraced memory, minute {m0:.1f} → {m1:.1f}: {total / 2**20:+.2f} MB in all; by traceback:")
    for stat in stats[:12]:
        now = stat.size / 1024
        print(f"  {stat.size_diff / 1024:+9.1f} kB {stat.count_diff:+7d} blocks (now {now:.0f} kB)")
        for line in stat.traceback.format(limit=6, most_recent_first=True):
            print(f"      {line}")
    by_file = snap1.filter_traces(filters).compare_to(snap0.filter_traces(filters), "filename")
    print("by file:")
    for stat in by_file[:12]:
        where = stat.traceback[0].filename
        print(f"  {stat.size_diff / 1024:+9.1f} kB {stat.count_diff:+7d} blocks  {where}")
    print(f"\ntracked objects by type, minute {m0:.1f} → {m1:.1f} (largest changes):")
    changes = sorted(set(types0) | set(types1), key=lambda t: -abs(types1[t] - types0[t]))
    for name in changes[:20]:
        print(f"  {types1[name] - types0[name]:+8d}  {name} (now {types1[name]})")
    print(f"\ncontainers (≥ {MIN_LEN} items) that grew, minute {m0:.1f} → {m1:.1f}:")
    grown = sorted(
        (
            (n1 - cont0[key][1], key)
            for key, (_kind, n1) in cont1.items()
            if key in cont0 and held0[key] is held1[key] and n1 > cont0[key][1]
        ),
        reverse=True,
    )
    for growth, key in grown[:20]:
        kind, n1 = cont1[key]
        print(f"  {growth:+7d} → {n1:7d}  {kind}  held by {holder(held1[key])}")
    new = sorted(((n1, key) for key, (_kind, n1) in cont1.items() if key not in cont0), reverse=True)
    print(f"new since minute {m0:.1f} (largest): {len(new)} in all")
    for n1, key in new[:10]:
        print(f"  {n1:7d}  {cont1[key][0]}  held by {holder(held1[key])}")
    print("largest containers now:")
    for n1, key in sorted(((n1, key) for key, (_kind, n1) in cont1.items()), reverse=True)[:15]:
        print(f"  {n1:7d}  {cont1[key][0]}  held by {holder(held1[key])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100x10", help="APPSxREPLICAS per app")
    parser.add_argument("--trace-from", type=float, default=15.0, help="minutes; tracemalloc from then on")
    parser.add_argument("--marks", default="16,26", help="minutes of the snapshots, comma separated")
    parser.add_argument("--minutes", type=float, default=0.0, help="sample for at least this long")
    parser.add_argument("--frames", type=int, default=8, help="traceback frames tracemalloc keeps")
    parser.add_argument(
        "--malloc-threshold",
        type=int,
        default=0,
        help="bytes; fix glibc's mmap and trim thresholds at start (core.allocator), 0 leaves glibc's own",
    )
    args = parser.parse_args()
    enter_tree(Path(__file__).resolve().parents[1])  # this checkout's engine and console, not the venv's
    if args.malloc_threshold:
        from core.allocator import fix_malloc_thresholds

        print(f"malloc thresholds {args.malloc_threshold} B: {fix_malloc_thresholds(args.malloc_threshold)}")
    import logging

    logging.basicConfig(level=logging.WARNING)
    apps, replicas = (int(x) for x in args.sizes.split("x"))
    marks = [float(m) for m in args.marks.split(",") if m]
    asyncio.run(run(apps, replicas, args.trace_from, marks, args.frames, args.minutes))


if __name__ == "__main__":
    main()
