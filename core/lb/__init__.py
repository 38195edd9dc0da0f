"""nginx load balancer: render routes (render), own and reload nginx (nginx), drain replicas (connections)."""

from core.lb.connections import established_connections, parse_proc_net_tcp, wait_drained
from core.lb.nginx import NginxController
from core.lb.render import AppRoute, Upstream, render_app_config, render_main_config

__all__ = [
    "AppRoute",
    "NginxController",
    "Upstream",
    "established_connections",
    "parse_proc_net_tcp",
    "render_app_config",
    "render_main_config",
    "wait_drained",
]
