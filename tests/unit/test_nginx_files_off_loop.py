"""The route files of a reload are written off the event loop: a disk slow under other I/O (a write and
rename took up to 40 ms on a loaded host) must not hold the engine's probes, API and other apps."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import core.lb.nginx as nginx_module
from core.lb.nginx import NginxController
from core.lb.render import AppRoute, Upstream


async def test_a_slow_route_file_write_leaves_the_event_loop_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = NginxController(tmp_path, "127.0.0.1", 8080)
    controller._started = True
    controller._active = True

    async def reloaded(in_place: bool = False) -> None:
        return None

    async def tested() -> None:
        return None

    monkeypatch.setattr(controller, "_reload", reloaded)
    monkeypatch.setattr(controller, "_test_config", tested)
    loop_ran = threading.Event()
    writing = threading.Event()
    ran_during_write: list[bool] = []
    real_write = nginx_module.write_files

    def slow_write(*args: Any) -> None:
        writing.set()
        # A slow disk: the write ends once the event loop has shown it still runs meanwhile (or, if the
        # write holds the loop, after the bound, with the loop not having run).
        ran_during_write.append(loop_ran.wait(timeout=5))
        real_write(*args)

    monkeypatch.setattr(nginx_module, "write_files", slow_write)

    async def while_writing() -> None:
        await asyncio.to_thread(writing.wait, 10)
        loop_ran.set()

    watcher = asyncio.create_task(while_writing())
    await controller.set_route(AppRoute("web", (Upstream("127.0.0.1", 20001),)))
    assert await controller.flush() is True
    await watcher
    assert ran_during_write == [True]
    assert (tmp_path / "conf.d" / "web.conf").exists()
