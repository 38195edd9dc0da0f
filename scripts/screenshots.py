"""Capture the console against a real engine and the demo app: SVGs plus PNGs in screenshots/.

    .venv/bin/python scripts/screenshots.py [OUT_DIR]

Needs Docker, nginx and the orchestry/demo image (scripts/build_demo_image.sh).  Uses a throwaway state
dir and free loopback ports, sends a little traffic through nginx so the charts have data, and stops
and removes its app at the end.
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

import aiohttp

from core.engine import Engine
from core.settings import load_settings
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.engine_backend import EngineBackend
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
        app = OrchestryConsole(EngineBackend(settings, engine=engine), poll_seconds=1.0)
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
    finally:
        await engine.stop(stop_apps=True)
    return shots


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots").absolute()
    out.mkdir(parents=True, exist_ok=True)
    for svg in asyncio.run(capture(out)):
        print(f"{svg}  {to_png(svg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
