"""A load balancer that only remembers what it was told to route: the in-memory runtime's nginx.

It has the methods of ``NginxController`` that the engine and ``NginxRouter`` call, applies every change
at once, and serves nothing.  With ``core/runtime/memory.py`` it lets the whole engine run without
Docker or nginx (fast tests, bench/).  ``journal`` (a list it appends to, shareable with the runtime's)
records each routing change in order: ("route", app, "host:port,...") or ("unroute", app, "").
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.lb.render import AppRoute


class MemoryNginx:
    def __init__(self, journal: list[tuple[str, ...]] | None = None) -> None:
        self.routes: dict[str, AppRoute] = {}
        self.journal: list[tuple[str, ...]] = journal if journal is not None else []
        self._outcome = True
        self.reload_count = 0
        self.active = False
        self.rejecting = ""  # set to a reason: every change is refused, the last good routes stay
        # The routing changes the engine marked urgent (nothing else of the app on its way), as
        # (app, "host:port,..."): nginx's would go without its coalescing pause.
        self.urgent: list[tuple[str, str]] = []

    @property
    def access_log_path(self) -> Path | None:
        return None

    async def start(self, active: bool = True) -> None:
        self.active = active

    async def activate(self) -> None:
        self.active = True

    async def stand_by(self) -> None:
        self.active = False

    async def set_route(self, route: AppRoute, urgent: bool = False) -> None:
        if self.rejecting:
            self._outcome = False
            return
        self._outcome = True
        self.routes[route.name] = route
        self.reload_count += 1
        servers = ",".join(f"{u.host}:{u.port}" for u in route.servers)
        self.journal.append(("route", route.name, servers))
        if urgent:
            self.urgent.append((route.name, servers))

    async def remove_route(self, name: str) -> None:
        self._outcome = True
        if self.routes.pop(name, None) is not None:
            self.reload_count += 1
            self.journal.append(("unroute", name, ""))

    async def flush(self, raise_on_reject: bool = False) -> bool:
        await asyncio.sleep(0)
        return self._outcome

    def servers(self, app: str) -> list[int]:
        """The ports ``app`` is routed to now."""
        route = self.routes.get(app)
        return sorted(u.port for u in route.servers) if route else []

    async def watch(self, interval: float = 0.2) -> None:
        await asyncio.Event().wait()  # nothing to watch: no process

    async def stop(self, keep_serving: bool = True) -> None:
        self.active = False

    def status(self) -> dict[str, Any]:
        return {
            "mode": "memory",
            "pid": None,
            "running": True,
            "active": self.active,
            "listen": "memory",
            "last_reload_at": None,
            "reload_count": self.reload_count,
            "last_error": self.rejecting or None,
            "apps": sorted(self.routes),
            "pending_changes": 0,
        }
