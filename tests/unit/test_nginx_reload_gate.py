"""Changes asked for while nginx's master still pauses after a reload (it takes no signal for 100 ms
after starting new workers) go out together in one reload once that pause ends, not one reload for the
first of them and another for the rest."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core.lb.nginx import NginxController
from core.lb.render import AppRoute, Upstream


class Applies:
    """Stands in for writing, testing and reloading: records which generations each apply covered."""

    def __init__(self, controller: NginxController) -> None:
        self.controller = controller
        self.generations: list[int] = []
        self.at: list[float] = []

    async def __call__(self) -> None:
        generation = self.controller._requested
        self.generations.append(generation)
        self.at.append(time.monotonic())
        await self.controller._finish_generation(generation, True, None)


def controller_without_nginx(tmp_path: Path) -> tuple[NginxController, Applies]:
    controller = NginxController(tmp_path, "127.0.0.1", 8080)
    controller._started = True
    controller._active = True
    applies = Applies(controller)
    controller._apply_pending = applies  # type: ignore[method-assign]
    return controller, applies


def route(port: int) -> AppRoute:
    return AppRoute("web", (Upstream("127.0.0.1", port),))


async def test_changes_during_the_masters_pause_share_one_reload_after_it(tmp_path: Path) -> None:
    controller, applies = controller_without_nginx(tmp_path)
    # A reload has just started its workers: the master takes signals again in a second (a long pause,
    # so that the two changes below surely fall into it however slow this host is).
    controller._master_free_at = time.monotonic() + 1.0
    await controller.set_route(route(20001))
    await asyncio.sleep(0.1)  # the first change is waiting for the pause to end
    await controller.set_route(route(20002))
    assert await controller.flush() is True

    assert applies.generations == [2]  # one apply, covering both changes
    assert applies.at[0] >= controller._master_free_at
