"""Talking to a real ``orchestry daemon`` process from async tests: its REST API and the real CLI."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from tests.cli.conftest import Daemon


def call(daemon: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        daemon.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


async def api(daemon: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The daemon's JSON answer to one REST call, without blocking the loop (an error status raises)."""
    return await asyncio.to_thread(call, daemon, method, path, body)


async def cli(daemon: Daemon, *args: str, **env: str) -> str:
    """The real CLI against the daemon (``env``: variables added to its environment); its stdout."""
    result = await asyncio.to_thread(daemon.cli, *args, env=daemon.env(**env) if env else None)
    assert result.returncode == 0, f"orchestry {' '.join(args)} → {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout
