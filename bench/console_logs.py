"""CPU the console spends per log line its logs pane follows: the main screen at 200×50 (fixed sample
data, no Docker), the pane full of lines, then one new line every ``--every`` seconds.

Prints the console's CPU per line (process time while lines arrive, minus the same span idle) and the
compositor passes it took.  Run it with ``PYTHONPATH=/path/to/other/tree`` for a side-by-side figure
(only APIs both trees have are used).  Asserts nothing.

    .venv/bin/python bench/console_logs.py [--lines 200] [--every 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from core.runtime.base import LogLine
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import sample_backend

SIZE = (200, 50)
TAIL = 300  # more than the pane shows: its scrollbar is up, as in a console that has run a while


class TricklingBackend:
    """The sample backend, whose followed app writes a tail and then a line whenever the bench says."""

    def __init__(self) -> None:
        self._inner = sample_backend()
        self.lines: asyncio.Queue[LogLine] = asyncio.Queue()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def follow_logs(self, name: str) -> AsyncIterator[LogLine]:
        for i in range(TAIL):
            yield LogLine(time.time(), "c1", f"{name}-1", f"GET /health 200 (tail {i})", "stderr")
        while True:
            yield await self.lines.get()


async def run(lines: int, every: float) -> tuple[float, float, int]:
    """CPU seconds per line above idle, the idle CPU rate, and the compositor passes the lines took."""
    backend = TricklingBackend()
    app = OrchestryConsole(backend, poll_seconds=3600)  # type: ignore[arg-type]
    passes = 0
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(2.0)  # first frames drawn, the tail written
        compositor = app.screen._compositor
        render = compositor.render_partial_update

        def counted() -> object:
            nonlocal passes
            passes += 1
            return render()

        compositor.render_partial_update = counted  # type: ignore[method-assign]
        idle_cpu, idle_wall = time.process_time(), time.monotonic()
        for _ in range(lines):
            await asyncio.sleep(every)
        idle_rate = (time.process_time() - idle_cpu) / (time.monotonic() - idle_wall)
        passes = 0
        busy_cpu, busy_wall = time.process_time(), time.monotonic()
        for i in range(lines):
            backend.lines.put_nowait(LogLine(time.time(), "c2", "web-2", f"GET /health 200 ({i})", "stderr"))
            await asyncio.sleep(every)
        await pilot.pause(1.0)  # the last batch written
        busy = (time.process_time() - busy_cpu) - idle_rate * (time.monotonic() - busy_wall)
    return busy / lines, idle_rate, passes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--every", type=float, default=0.05)
    args = parser.parse_args()
    per_line, idle_rate, passes = asyncio.run(run(args.lines, args.every))
    tree = Path(sys.modules["orchestry_tui.console.app"].__file__ or "?").parents[2]
    print(f"console under test: {tree}")
    print(f"{args.lines} lines, one every {args.every:g} s, {SIZE[0]}×{SIZE[1]}, every pane shown")
    print(f"idle: {idle_rate * 100:.2f} % of one core")
    print(
        f"per line, above idle: {per_line * 1000:.2f} ms CPU; "
        f"{passes} compositor passes for {args.lines} lines"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
