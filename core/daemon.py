"""``orchestry daemon``: the engine and the REST API in one process, without a screen.

Prints one readiness line on stdout once the API is serving (scripts and tests wait for it), logs to
stderr as text or JSON through the secrets filter, and on SIGTERM/SIGINT stops serving, stops the
engine's background tasks and releases the lease; apps keep running and nginx keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.api.app import start_site
from core.api.auth import required_token
from core.api.bind_failure import bind_failure
from core.errors import OrchestryError, SettingsError, SpecError
from core.redaction import RedactingFilter, default_redactor

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger("orchestry.daemon")

READY_PREFIX = "orchestry daemon ready:"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    # On the handler too: the support bundle's in-memory log (core.recent_log) lowers Orchestry's own
    # loggers to INFO, and --log-level must still decide what reaches stderr.
    handler.setLevel(level.upper())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log is one line per request: noise at info level for a control API.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def ready_line(api_url: str, lb_listen: str, node_id: str) -> str:
    return f"{READY_PREFIX} api={api_url} lb=http://{lb_listen} node={node_id}"


def _bound_port(site: web.TCPSite, fallback: int) -> int:
    server = site._server  # aiohttp exposes the listening sockets only here
    sockets = getattr(server, "sockets", None) or []
    return sockets[0].getsockname()[1] if sockets else fallback


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def _apply(engine: Any, path: Path) -> None:
    """Register and start the app described by ``path`` (``orchestry --apply FILE``)."""
    try:
        text = await asyncio.to_thread(path.read_text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(f"--apply {path}: cannot read the file ({reason}): check the path") from None
    try:
        view, _created = await engine.register(text)
    except SpecError as exc:
        # The daemon exits on it: say which file, as the console and `orchestry apply` do.
        raise SpecError(f"--apply {path}: {exc.message}", field=exc.field, errors=exc.errors) from None
    result = await engine.up(view.name)
    log.info("applied %s: app %s up with %d replicas", path, view.name, result.replicas)


async def serve(
    settings: Settings,
    apply_file: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when no event is given)."""
    from core.engine import Engine  # the engine pulls in docker and sqlalchemy: only when serving

    token = required_token(settings.host, _secret(settings.api_token))
    if token:
        default_redactor.add(token)
    if stop is None:
        stop = asyncio.Event()
        _stop_on_signals(stop)

    # Before the engine starts: a daemon that cannot serve its API must not first take the lease,
    # launch nginx on the LB address and start replicas, then exit leaving them behind.
    try:
        await asyncio.to_thread(_probe_listen, settings.host, settings.port)
    except OSError as exc:
        raise _cannot_listen(settings, bind_failure(settings.host, settings.port, exc)) from None
    engine = Engine(settings)
    await engine.start()
    runner: web.AppRunner | None = None
    try:
        try:
            runner, site = await start_site(engine, settings.host, settings.port, settings.node_id, token)
        except OSError as exc:  # taken between the probe and now
            raise _cannot_listen(settings, exc) from None
        api_url = f"http://{settings.host}:{_bound_port(site, settings.port)}"
        if apply_file is not None:
            await _apply(engine, apply_file)
        line = ready_line(api_url, settings.lb_listen, settings.node_id)
        (on_ready or _print_ready)(line)
        log.info("serving the API at %s", api_url)
        await stop.wait()
        log.info("shutting down: apps keep running, nginx keeps serving")
    finally:
        started = time.monotonic()
        if runner is not None:
            # Refuse new connections at once, but do not let requests in flight hold the lease: a log
            # follow streams for as long as its client stays, and the runner waits for it up to its
            # shutdown timeout (60 s) while no peer may take writes. The engine stops acting and
            # releases the lease first; those requests then get the runner's grace period.
            for site in list(runner.sites):
                await site.stop()
        await engine.stop()
        if runner is not None:
            await runner.cleanup()
        log.info("stopped in %.2f s", time.monotonic() - started)


def _probe_listen(host: str, port: int) -> None:
    """Bind ``host:port`` as the API's server will (SO_REUSEADDR) and let go; OSError if it cannot."""
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)


def _cannot_listen(settings: Settings, exc: OSError) -> SettingsError:
    return SettingsError(
        f"cannot listen on {settings.host}:{settings.port} ({exc.strerror}): "
        "stop the other process or set ORCHESTRY_PORT / --port"
    )


def _print_ready(line: str) -> None:
    print(line, flush=True)


def run_daemon(settings: Settings, apply_file: Path | None = None) -> int:
    """Blocking entry point; returns the process exit code."""
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings, apply_file))
    except OrchestryError as exc:
        # Said once: the log handler writes to stderr too, so JSON logs get a record and people a line.
        if settings.log_format == "json":
            log.error("%s", exc.message)
        else:
            print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0
