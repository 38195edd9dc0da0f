"""nginx load balancer: render routes (render), own and reload nginx (nginx)."""

from core.lb.nginx import NginxController
from core.lb.render import AppRoute, Upstream, render_app_config, render_main_config

__all__ = [
    "AppRoute",
    "NginxController",
    "Upstream",
    "render_app_config",
    "render_main_config",
]
