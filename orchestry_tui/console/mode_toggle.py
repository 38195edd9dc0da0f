"""What `m` toggles from: the mode last asked for an app until a frame can show it, not the last frame's.

The console's frame lags a press by a refresh: toggling the frame's mode, a second press before the
refresh asked for the mode the first already asked for, and two presses toggled once.  Requests of one
app are sent one at a time in press order, so the last one asked is the one that stays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.models import AppView


@dataclass
class _Asked:
    mode: str | None  # None: a request failed, the frame's mode is the one to toggle
    in_flight: int = 0
    settled_at: float = 0.0  # monotonic time the last request of the app ended
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def toggled(mode: str) -> str:
    return "manual" if mode == "auto" else "auto"


class ModeToggles:
    def __init__(self) -> None:
        self._asked: dict[str, _Asked] = {}

    def ask(self, app: AppView) -> str:
        """The mode a press of `m` asks for: the toggle of what was last asked, else of the frame's."""
        asked = self._asked.get(app.name)
        if asked is None:
            asked = self._asked[app.name] = _Asked(None)
        mode = toggled(asked.mode or app.mode)
        asked.mode = mode
        asked.in_flight += 1
        return mode

    async def send(self, name: str, mode: str, set_mode: Callable[[str, str], Awaitable[None]]) -> None:
        """Ask the backend, after the app's earlier presses (concurrent requests may land out of order)."""
        asked = self._asked[name]
        async with asked.lock:
            try:
                await set_mode(name, mode)
            except BaseException:
                # The mode is unknown again: the next press toggles what the frame shows.
                asked.mode = None
                raise
            finally:
                asked.in_flight -= 1
                asked.settled_at = time.monotonic()

    def seen(self, apps: list[AppView], fetch_started: float) -> None:
        """A frame arrived: it tells each app's mode once no request is under way and either it shows
        the mode asked or it was read after the last request ended (someone else may have changed it)."""
        for app in apps:
            asked = self._asked.get(app.name)
            if asked is None or asked.in_flight:
                continue
            if asked.mode in (None, app.mode) or fetch_started > asked.settled_at:
                del self._asked[app.name]
