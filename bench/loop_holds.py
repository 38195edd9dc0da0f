"""What holds the engine's event loop while one app scales 1↔10 among many: the callbacks that run
longer than 5 ms (a request arriving then waits for all of it), by what ran, and the loop's busy time.

The engine's own work during a scale is measured two ways, in alternating rounds of one run: "before"
(bench/api.py's ``EngineWork``: store reads in a thread each reconciler pass and after each write,
``nginx -t`` started on the loop, a metrics sample in one go) and "now" (the daemon as it runs).  Each
callback the loop runs is timed (``asyncio.Handle._run`` wrapped: a few µs each), so the figures are
wall time: on a shared host a callback also counts the time its thread waited for the GIL or a CPU.

    .venv/bin/python bench/loop_holds.py [--apps 500] [--seconds 10] [--rounds 2]

Needs Docker, nginx and the demo image.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import EngineWork  # bench/api.py

from core.engine import Engine
from testkit.harness import demo_app, engine_settings, wait_for

HOLD_SECONDS = 0.005


class LoopTimer:
    """Every callback's run time; the ones past HOLD_SECONDS by the coroutine or function they ran."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.holds: collections.Counter[str] = collections.Counter()
        self.held: collections.Counter[str] = collections.Counter()
        self._run = asyncio.events.Handle._run
        timer = self

        def timed(handle: asyncio.Handle) -> None:
            started = time.perf_counter()
            timer._run(handle)
            took = time.perf_counter() - started
            timer.times.append(took)
            if took > HOLD_SECONDS:
                what = _what(handle)
                timer.holds[what] += 1
                timer.held[what] += took

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.times, self.holds, self.held = [], collections.Counter(), collections.Counter()

    def close(self) -> None:
        asyncio.events.Handle._run = self._run  # type: ignore[method-assign]


def _what(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        return getattr(task.get_coro(), "__qualname__", task.get_name())
    return getattr(callback, "__qualname__", type(callback).__name__)


async def scaling(engine: Engine, name: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    target = 10
    while time.monotonic() < deadline:
        await engine.scale(name, target)
        await asyncio.sleep(0.5)  # the replicas start and stop meanwhile
        target = 1 if target == 10 else 10


async def main(apps: int, seconds: float, rounds: int) -> None:
    timer = LoopTimer()
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state"))
        await engine.start()
        names = [f"holds-{uuid.uuid4().hex[:4]}-{i:03d}" for i in range(apps)]
        try:
            await wait_for(lambda: engine.cluster.is_leader(), timeout=20, what="leadership")
            for name in names:
                await engine.register(demo_app(name))
            await engine.up(names[0])
            work = EngineWork(engine)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{apps} apps, one scaling 1↔10; {rounds} × {seconds:g} s per way; load average {load}")
            for _round in range(rounds):
                for way in ("before", "now"):
                    work.now(way == "now")
                    await scaling(engine, names[0], 1.0)  # settle on this way first
                    timer.reset()
                    await scaling(engine, names[0], seconds)
                    report(way, timer, seconds)
            work.now(True)
        finally:
            timer.close()
            for name in names:
                try:
                    await engine.delete(name)
                except Exception as exc:  # keep cleaning up the rest
                    print(f"cleanup of {name} failed: {exc}", file=sys.stderr)
            await engine.stop(stop_apps=True)


def report(way: str, timer: LoopTimer, seconds: float) -> None:
    ordered = sorted(timer.times)
    p999 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.999))] if ordered else 0.0
    top = ", ".join(f"{what} {n}× {timer.held[what] * 1e3:.0f} ms" for what, n in timer.holds.most_common(5))
    print(
        f"{way:<7} loop busy {sum(ordered) / seconds * 100:4.1f} %  callbacks {len(ordered) / seconds:5.0f}/s"
        f"  p99.9 {p999 * 1e3:5.2f} ms  max {(ordered[-1] if ordered else 0) * 1e3:6.1f} ms"
        f"  over 5 ms: {sum(timer.holds.values()) / seconds:4.1f}/s ({top})",
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    asyncio.run(main(options.apps, options.seconds, options.rounds))
