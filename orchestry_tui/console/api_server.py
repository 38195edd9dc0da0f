"""Serve the REST API beside the console, in the console's event loop, so the CLI works next to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from core.api.app import start_site
from core.api.auth import required_token
from core.redaction import default_redactor

if TYPE_CHECKING:
    from core.engine import Engine
    from core.settings import Settings


class ConsoleApiServer:
    """The same aiohttp app ``orchestry daemon`` serves, started and stopped with the console."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._runner: web.AppRunner | None = None
        self.address = ""

    async def start(self) -> str | None:
        """Start serving; returns a notice instead of raising when the API cannot be served."""
        settings = self.settings
        secret = settings.api_token.get_secret_value() if settings.api_token else None
        try:
            token = required_token(settings.host, secret)
        except Exception as exc:  # a SettingsError here only disables the API, never the console
            return f"API not served: {exc}"
        if token:
            default_redactor.add(token)
        try:
            runner, _site = await start_site(
                self.engine, settings.host, settings.port, settings.node_id, token
            )
        except OSError as exc:
            return (
                f"API not served: {settings.host}:{settings.port} is taken ({exc.strerror}); the console "
                "works without it, but CLI commands cannot reach this node (set ORCHESTRY_PORT)"
            )
        self._runner = runner
        self.address = f"{settings.host}:{settings.port}"
        return None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.address = ""
