"""The reconciler's view of the load balancer: publish an app's ready servers, or take it away."""

from __future__ import annotations

import logging

from core.errors import ConfigRejected
from core.lb.memory import MemoryNginx
from core.lb.nginx import NginxController
from core.lb.render import AppRoute, Upstream

log = logging.getLogger(__name__)


class NginxRouter:
    def __init__(self, nginx: NginxController | MemoryNginx) -> None:
        self.nginx = nginx

    async def publish(
        self, app: str, servers: list[tuple[str, int]], load_balancing: str, urgent: bool = False
    ) -> bool:
        """Route ``app`` to exactly ``servers`` and wait until nginx serves that config (``urgent``: no
        other change of it is expected soon, so nginx need not wait for more to join the reload).

        Returns False when nginx rejected the config (the previous one stays live and the controller has
        already emitted the error event).
        """
        route = AppRoute(
            name=app, servers=tuple(Upstream(h, p) for h, p in servers), load_balancing=load_balancing
        )
        await self.nginx.set_route(route, urgent)
        try:
            return bool(await self.nginx.flush())
        except ConfigRejected as exc:
            log.error("nginx rejected the routes of %s: %s", app, exc)
            return False

    async def unpublish(self, app: str) -> None:
        await self.nginx.remove_route(app)
        try:
            await self.nginx.flush()
        except ConfigRejected as exc:
            log.error("nginx rejected the removal of %s: %s", app, exc)
