"""Capture the console against a real engine and the demo app: SVGs plus PNGs in screenshots/.

    .venv/bin/python scripts/screenshots.py [OUT_DIR]

Needs Docker, nginx and the orchestry/demo image (scripts/build_demo_image.sh), and PostgreSQL for the
HA shots.  Uses a throwaway state dir and free loopback ports, sends traffic through nginx so the charts
have data, captures each layout (200x50 and the 80x24 tabs), then three daemons on a throwaway
PostgreSQL database behind a controller LB, attached, before and after a kill -9 of the leader; it stops
and removes everything at the end.
"""

from __future__ import annotations

import asyncio
import html
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from core.engine import Engine
from core.settings import load_settings
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
from orchestry_tui.console.http_backend import HttpBackend
from orchestry_tui.console.widgets.cluster_pane import ClusterPane
from orchestry_tui.console.widgets.keyed_table import KeyedTable

SIZE = (160, 45)
APP = "web"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_spec(name: str) -> dict[str, object]:
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
        "scaling": {"mode": "manual", "minReplicas": 1, "maxReplicas": 10, "maxP95LatencyMs": 250},
        "healthCheck": {"path": "/health", "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
    }


_TEXT = re.compile(r'<text ([^>]*?)x="([\d.]+)"([^>]*?)textLength="([\d.]+)"([^>]*)>([^<]*)</text>')


def _one_cell_per_glyph(match: re.Match[str]) -> str:
    """rsvg-convert ignores textLength: glyphs from a fallback font (braille, box drawing) come out
    wider than a cell and a chart's points ran past its frame.  Place each such glyph in its own cell."""
    before, x, middle, length, after, content = match.groups()
    glyphs = html.unescape(content)
    if not glyphs or all(ord(c) < 0x2500 for c in glyphs):
        return match.group(0)
    cell = float(length) / len(glyphs)
    return "".join(
        f'<text {before}x="{float(x) + i * cell:.1f}"{middle}textLength="{cell:.1f}"{after}>'
        f"{html.escape(glyph)}</text>"
        for i, glyph in enumerate(glyphs)
    )


def to_png(svg: Path) -> Path:
    """rsvg-convert drops leading non-breaking spaces and text with '%' + NBSP: use plain spaces."""
    text = svg.read_text()
    text = text.replace("<svg ", '<svg xml:space="preserve" ', 1)
    text = _TEXT.sub(_one_cell_per_glyph, text)
    fixed = svg.with_suffix(".png.svg")
    fixed.write_text(re.sub("&#160;", "&#32;", text))
    png = svg.with_suffix(".png")
    subprocess.run(["rsvg-convert", str(fixed), "-o", str(png)], check=True)
    fixed.unlink()
    return png


async def traffic(url: str, seconds: float) -> int:
    sent = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    await response.read()
                    sent += 1
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
    return sent


async def until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def throwaway_preferences() -> Path:
    """A config file of its own: the default layout, and the user's own file never rewritten."""
    return Path(tempfile.mkdtemp(prefix="orchestry-shots-prefs-")) / "config.toml"


async def capture(out: Path) -> list[Path]:
    state = Path(tempfile.mkdtemp(prefix="orchestry-shots-"))
    name = f"{APP}-{uuid.uuid4().hex[:4]}"
    settings = load_settings(
        state_dir=state,
        lb_listen=f"127.0.0.1:{free_port()}",
        port=free_port(),
        node_id="console-a",
        scaler_interval=1.0,
        metrics_interval=1.0,
        drain_timeout=5.0,
    )
    engine = Engine(settings)
    await engine.start()
    shots: list[Path] = []
    try:
        await engine.register(demo_spec(name))
        await engine.up(name)
        backend = EngineBackend(settings, engine=engine)
        app = OrchestryConsole(backend, poll_seconds=1.0, preferences_path=throwaway_preferences())
        async with app.run_test(size=SIZE) as pilot:

            def ready() -> str:
                try:
                    return str(app.query_one("#apps", KeyedTable).get_cell(name, "ready"))
                except Exception:
                    return ""

            await until(lambda: ready() == "1/1", 60, "1/1 ready")

            def save(file: str) -> None:
                path = out / f"{file}.svg"
                app.save_screenshot(filename=path.name, path=str(out))
                shots.append(path)

            await pilot.press("s")
            await pilot.pause(0.3)
            await pilot.press("3")
            await pilot.pause(0.3)
            save("scale-dialog")
            await pilot.press("enter")
            await until(lambda: ready() == "3/3", 60, "3/3 ready")
            await traffic(f"http://{settings.lb_listen}/{name}/", 20)
            await pilot.pause(2.5)
            save("apps")
            await pilot.press("l")
            await pilot.pause(2.0)
            save("logs")
            await pilot.press("escape", "d")
            await pilot.pause(1.0)
            save("describe")
            await pilot.press("escape")
        shots += await capture_layouts(out, settings, engine, name)
    finally:
        await engine.stop(stop_apps=True)
    return shots


async def capture_layouts(out: Path, settings: Any, engine: Engine, name: str) -> list[Path]:
    """Each layout under load, a replica's log pane beside its charts, and the 80x24 tabs."""
    shots: list[Path] = []
    load = asyncio.create_task(traffic(f"http://{settings.lb_listen}/{name}/", 120))
    try:
        for size, keys, file in (
            ((200, 50), ("replica", "down"), "layout-replica-logs-under-load"),
            ((200, 50), ("6", "5"), "layout-without-cluster-and-logs"),
            ((200, 50), ("2", "6"), "layout-charts-events-logs"),
            ((200, 50), ("plus", "plus", "greater_than_sign"), "layout-resized"),
            ((80, 24), ("3",), "layout-80x24-charts-tab"),
            ((80, 24), ("5",), "layout-80x24-logs-tab"),
            ((80, 24), ("6",), "layout-80x24-cluster-tab"),
        ):
            backend = EngineBackend(settings, engine=engine)
            app = OrchestryConsole(backend, poll_seconds=1.0, preferences_path=throwaway_preferences())
            async with app.run_test(size=size) as pilot:
                await until(lambda app=app: app.frames_applied >= 2, 30, "first frames")
                if keys[0] == "replica":  # the second replica's lines only, beside the app's charts
                    app.query_one("#replicas", KeyedTable).focus()
                    keys = keys[1:]
                for key in keys:
                    await pilot.press(key)
                    await pilot.pause(0.2)
                await pilot.pause(6.0)  # charts, cluster overview and the log tail fill in
                path = out / f"{file}.svg"
                app.save_screenshot(filename=path.name, path=str(out))
                shots.append(path)
    finally:
        load.cancel()
    return shots


async def capture_cluster(out: Path) -> list[Path]:
    """The console attached through the controller LB of three daemons on PostgreSQL, around a kill -9."""
    import signal

    from testkit.daemon_cluster import DaemonCluster, call
    from tests.conftest import _pg_admin_url, run_as_admin

    database = f"orchestry_shots_{uuid.uuid4().hex[:8]}"
    run_as_admin(_pg_admin_url(), f'CREATE DATABASE "{database}"')
    base = Path(tempfile.mkdtemp(prefix="orchestry-shots-ha-"))
    database_url = _pg_admin_url().set(database=database).render_as_string(False)
    cluster = DaemonCluster(base, database_url, lease_ttl=10)
    shots: list[Path] = []
    try:
        await cluster.start()
        url = await cluster.start_controller_lb()
        leader = await cluster.wait_leader()
        name = f"{APP}-{uuid.uuid4().hex[:4]}"
        cluster.apps.add(name)
        for method, path, body in (
            ("POST", "/api/v1/apps", demo_spec(name)),
            ("POST", f"/api/v1/apps/{name}/up", None),
            ("POST", f"/api/v1/apps/{name}/scale", {"replicas": 2}),
        ):
            answer = await call(f"{url}{path}", method, body, timeout=120)
            if answer.status not in (200, 201):
                raise SystemExit(f"{method} {path}: {answer.status} {answer.body}")
        load = asyncio.create_task(traffic(f"http://{cluster.apps_lb}/{name}/", 120))
        backend = HttpBackend(url, None, base)
        app = OrchestryConsole(backend, poll_seconds=1.0, preferences_path=throwaway_preferences())
        async with app.run_test(size=(200, 50)) as pilot:
            pane = app.query_one(ClusterPane)
            await until(lambda: pane.view is not None and len(pane.view.nodes) == 3, 30, "three nodes")
            await pilot.pause(2.0)

            def save(file: str) -> None:
                path = out / f"{file}.svg"
                app.save_screenshot(filename=path.name, path=str(out))
                shots.append(path)

            await pilot.pause(8.0)  # the charts and the log tail fill in
            save("cluster-attached")
            term = pane.view.term if pane.view else None
            leader.send(signal.SIGKILL)
            await pilot.pause(5.0)  # half the lease TTL: the leader no longer answers, its lease runs out
            save("cluster-leader-killed")
            await until(
                lambda: pane.view is not None and pane.view.term != term and pane.view.leader_id is not None,
                60,
                "the new leader",
            )
            await pilot.pause(2.0)
            save("cluster-new-leader")
        load.cancel()
    finally:
        await cluster.close()
        run_as_admin(_pg_admin_url(), f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return shots


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots").absolute()
    out.mkdir(parents=True, exist_ok=True)
    for svg in asyncio.run(capture(out)) + asyncio.run(capture_cluster(out)):
        print(f"{svg}  {to_png(svg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
