"""Render nginx configuration from routes: pure functions, no I/O beyond reading the templates.

Layout (every app shares the one listener and its single default server):

- ``nginx.conf``            main config; its default server includes ``<conf_dir>/*.locations``
- ``<conf_dir>/<app>.conf``      http level: ``upstream orchestry_<app>`` and, with a domain, a
                                 ``server_name <app>.<domain>`` server (never default_server)
- ``<conf_dir>/<app>.locations`` inside the default server: ``/<app>/`` routed with the prefix stripped
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
LOAD_BALANCING_METHODS = ("least_conn", "ip_hash", "round_robin")
CONF_SUFFIX = ".conf"
LOCATIONS_SUFFIX = ".locations"

# Names end up in file paths and nginx config: only DNS-label characters may pass.
_NAME_RE = re.compile(r"^[a-z0-9-]+$")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int


@dataclass(frozen=True)
class AppRoute:
    name: str
    servers: tuple[Upstream, ...]
    load_balancing: str = "least_conn"


def check_app_name(name: str) -> str:
    """Return ``name`` if it is safe in a file name and in nginx config, else raise ValueError."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > 63:
        raise ValueError(f"app name {name!r} is not a DNS label: use lowercase letters, digits and '-'")
    return name


# One upstream server line as app.conf.j2 writes it.
_SERVER_LINE = re.compile(r"^ +server (\S+) max_fails=0;\n", re.MULTILINE)


def only_servers_differ(before: str, after: str) -> bool:
    """Whether the app file ``after`` is ``before`` with other upstream servers, at least one and each
    an IP address and port: nothing else changed, and there is no name for nginx to resolve, so nothing
    in the change can make nginx refuse it."""
    servers = _SERVER_LINE.findall(after)
    if not servers or _SERVER_LINE.sub("", before) != _SERVER_LINE.sub("", after):
        return False
    return all(_is_ip_and_port(server) for server in servers)


def only_servers_changed(before: AppRoute, after: AppRoute) -> bool:
    """Whether ``after`` is ``before`` with other upstream servers (none at all on either side
    included), each an IP address: the files rendered from the two differ only where the template
    says whether there are servers and which, so nginx has nothing in the change to refuse or to
    resolve."""
    if replace(before, servers=after.servers) != after:
        return False
    return all(_is_ip(server.host) for server in after.servers)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_ip_and_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return port.isdigit() and 1 <= int(port) <= 65535


def _check_host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"upstream host {host!r} is neither an IP address nor a hostname")
    return host


def _check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port {port!r} is outside 1..65535")
    return port


def _check_domain(domain: str | None) -> str | None:
    if domain is not None and not _DOMAIN_RE.fullmatch(domain):
        raise ValueError(f"domain {domain!r} is not a lowercase DNS name such as 'apps.example.com'")
    return domain


def format_hostport(host: str, port: int) -> str:
    """``host:port`` with IPv6 addresses bracketed, as nginx's listen/server directives expect."""
    _check_host(host)
    _check_port(port)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _quote_path(path: Path | str) -> str:
    text = str(path)
    if any(ch in text for ch in '"\\\n\r') or "$" in text:
        raise ValueError(f"path {text!r} cannot be written into nginx config: it holds a quote, '\\' or '$'")
    return f'"{text}"'


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The jinja2 environment of every nginx template in templates/ (``q`` quotes a path safely)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=False,  # nginx config, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["q"] = _quote_path
    env.filters["hostport"] = lambda server: format_hostport(server.host, server.port)
    return env


def render_main_config(
    prefix: Path,
    listen_host: str,
    listen_port: int,
    domain: str | None,
    conf_dir: Path,
    access_log: Path,
    worker_processes: int = 1,
) -> str:
    """A complete nginx.conf for an nginx run with ``-p prefix``: pid, temp paths and logs live there."""
    _check_domain(domain)
    if worker_processes < 1:
        raise ValueError(f"worker_processes must be at least 1, got {worker_processes}")
    return (
        template_environment()
        .get_template("nginx.conf.j2")
        .render(
            prefix=Path(prefix),
            conf_dir=Path(conf_dir),
            access_log=Path(access_log),
            listen=format_hostport(listen_host, listen_port),
            worker_processes=worker_processes,
        )
    )


def app_file_names(name: str) -> tuple[str, str]:
    """The two conf-dir file names that belong to app ``name``."""
    check_app_name(name)
    return f"{name}{CONF_SUFFIX}", f"{name}{LOCATIONS_SUFFIX}"


def render_app_config(
    route: AppRoute,
    domain: str | None,
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
) -> dict[str, str]:
    """File name → content for one app. ``listen_*`` must match the main server (used with a domain)."""
    check_app_name(route.name)
    _check_domain(domain)
    if route.load_balancing not in LOAD_BALANCING_METHODS:
        raise ValueError(
            f"load balancing {route.load_balancing!r} of app {route.name!r} is unknown: "
            f"use one of {', '.join(LOAD_BALANCING_METHODS)}"
        )
    for server in route.servers:
        format_hostport(server.host, server.port)
    # nginx accepts a repeated server line and silently doubles its share of traffic: keep each once.
    servers = tuple(dict.fromkeys(route.servers))
    route = AppRoute(route.name, servers, route.load_balancing)
    template = template_environment().get_template("app.conf.j2")
    listen = format_hostport(listen_host, listen_port)
    conf_name, locations_name = app_file_names(route.name)
    return {
        conf_name: template.render(part="conf", route=route, domain=domain, listen=listen),
        locations_name: template.render(part="locations", route=route, domain=domain, listen=listen),
    }
