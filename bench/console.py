"""Console cost with 100 real replicas: first-frame time and idle CPU of the console and its engine.

An Engine in this process manages 10 apps × 10 idle demo replicas (manual mode, production intervals);
the console attaches to it (headless, 200×50, every pane of its default layout shown) and the script
measures:

- first frame: from the console's start to its first screen (header, empty panes) and to its first
  data frame (apps, replicas, charts drawn; the cluster overview read when that pane shows);
- import: a fresh interpreter importing the console module (what `orchestry` pays before any frame);
- idle CPU: utime + stime of this process (engine, console, the Docker executor: every thread) over
  ``--seconds`` once the console has settled, as % of one core.

Run it against another checkout with ``PYTHONPATH=/path/to/old/tree`` for a side-by-side figure (the
script only uses APIs both have).  Prints figures; asserts nothing.

    .venv/bin/python bench/console.py [--seconds 60] [--apps 10] [--replicas 10] [--hide cluster,logs]

Two consoles in turn on the same engine and replicas, printed side by side: every pane shown, then
``--hide`` panes hidden (what those panes cost).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from core.engine import Engine
from core.settings import load_settings
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend

SIZE = (200, 50)
OLD_FIGURES = {"first frame s": 1.1, "idle CPU % (incl. engine)": 2.0}


def cpu_seconds() -> float:
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        "scaling": {"mode": "manual", "minReplicas": 1, "maxReplicas": max(10, replicas)},
        "healthCheck": {"path": "/health", "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3},
    }


def import_seconds() -> float:
    """A fresh interpreter importing the console, as `orchestry` does before its first frame."""
    code = (
        "import time; t = time.perf_counter(); import orchestry_tui.console.app; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def console(engine: Engine, settings: Any, hidden: list[str], tmp: Path) -> OrchestryConsole:
    backend = EngineBackend(settings, engine=engine, serve_api=False)
    if "preferences_path" in inspect.signature(OrchestryConsole).parameters:
        prefs = tmp / "config.toml"
        if hidden:
            prefs.write_text(f"[console.layout]\nhidden = {hidden!r}\n".replace("'", '"'))
        return OrchestryConsole(backend, poll_seconds=2.0, preferences_path=prefs)
    return OrchestryConsole(backend, poll_seconds=2.0)


async def measure(
    engine: Engine, settings: Any, hidden: list[str], base: Path, seconds: float
) -> dict[str, float]:
    """One console (every pane, or ``hidden`` ones hidden): its first screen and first data frame, then
    the idle CPU of console + engine over ``seconds``."""
    folder = base / ("-".join(hidden) or "all")  # each console its own preferences file
    folder.mkdir()
    app = console(engine, settings, hidden, folder)
    started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()  # the first screen has been composed, mounted and painted
        screen_up = time.perf_counter() - started
        while app.frames_applied < 1:  # noqa: ASYNC110 - a counter the console increments
            await asyncio.sleep(0.005)
        data_frame = time.perf_counter() - started
        await asyncio.sleep(15)  # every pane has drawn its data and the log tails have arrived
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (cpu_seconds() - cpu_before) / (time.monotonic() - wall_before) * 100
        frames = app.frames_applied
    return {"screen": screen_up, "data": data_frame, "cpu": cpu, "frames": frames}


async def run(seconds: float, apps: int, replicas: int, hidden: list[str]) -> None:
    layouts = [[], hidden] if hidden else [[]]
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="orchestry-bench-console-") as tmp:
        base = Path(tmp)
        settings = load_settings(
            state_dir=base / "state",
            lb_listen=f"127.0.0.1:{free_port()}",
            port=free_port(),
            node_id=f"bench-console-{uuid.uuid4().hex[:4]}",
        )
        engine = Engine(settings)
        await engine.start()
        names = [f"cbench-{uuid.uuid4().hex[:4]}-{i}" for i in range(apps)]
        try:
            for name in names:
                await engine.register(app_document(name, replicas))
                await engine.up(name)
                await engine.scale(name, replicas)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                views = await asyncio.gather(*(engine.get_app(n) for n in names))
                if all(v.ready_replicas == replicas for v in views):
                    break
                await asyncio.sleep(1.0)
            else:
                raise SystemExit("the replicas did not all get ready within 300 s")
            await asyncio.sleep(10)  # the engine settles (first samples, probes) before the console starts

            for layout in layouts:  # one console after the other on the same engine and replicas
                results.append(await measure(engine, settings, layout, base, seconds))
            idle_engine = await engine_alone(seconds / 2)
        finally:
            for name in names:
                try:
                    await engine.delete(name)
                except Exception as exc:  # a bench reports and goes on cleaning up
                    print(f"delete {name}: {exc}", file=sys.stderr)
            await engine.stop(stop_apps=True)
    print(f"console under test: {Path(sys.modules['orchestry_tui.console.app'].__file__ or '?').parents[2]}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{apps} apps × {replicas} replicas, {SIZE[0]}×{SIZE[1]}; {os.cpu_count()} CPUs, load {load}")
    print(f"import of the console module (fresh interpreter): {import_seconds():.2f} s")
    names = ["every pane", *(f"hidden: {','.join(layout)}" for layout in layouts[1:])]
    print(f"{'':<40}" + "".join(f"{name:>24}" for name in names))
    for label, key, unit in (
        ("first screen", "screen", "s"),
        ("first data frame", "data", "s"),
        (f"idle CPU over {seconds:.0f} s, console + engine", "cpu", "%"),
        ("frames applied", "frames", ""),
    ):
        print(f"{label:<40}" + "".join(f"{r[key]:>22.2f}{unit:>2}" for r in results))
    if len(results) == 2:
        print(f"what the hidden panes add: {results[0]['cpu'] - results[1]['cpu']:.2f} points of idle CPU")
    print(f"idle CPU of the engine alone (console closed), over {seconds / 2:.0f} s: {idle_engine:.2f} %")
    print(f"old figures (README of the previous console): {OLD_FIGURES}")


async def engine_alone(seconds: float) -> float:
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds() - cpu_before) / (time.monotonic() - wall_before) * 100


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument(
        "--hide",
        default="cluster,logs",
        help="panes hidden in the second console, measured beside every pane shown ('' for one console)",
    )
    args = parser.parse_args()
    hidden = [p for p in args.hide.split(",") if p]
    asyncio.run(run(args.seconds, args.apps, args.replicas, hidden))
    return 0


if __name__ == "__main__":
    sys.exit(main())
