"""Why the API could not listen, in words an operator acts on: who holds the port, and a free one.

asyncio's own error ("error while attempting to bind on address ('127.0.0.1', 8000): address already in
use") names neither, so a console beside a daemon on the same port said only that the port was taken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket

from core.lb.port_holder import listening_pids
from core.presence import process_kind

# How far above a taken port to look for a free one to suggest.
FREE_PORT_SEARCH = 50


def _holder(port: int) -> str:
    pids = listening_pids(port)
    if not pids:
        return "address already in use (by a process not visible here)"
    pid = pids[0]
    kind = process_kind(pid)
    if kind.startswith("an orchestry"):
        return f"held by {kind}, pid {pid}"
    return f"held by pid {pid} ({_command(pid)})"


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return "unknown command"
    text = b" ".join(w for w in words if w).decode(errors="replace")
    return text if len(text) <= 80 else text[:77] + "..."


def free_port_near(host: str, port: int) -> int | None:
    """The first port above ``port`` on ``host`` that nothing listens on now (a suggestion, not a claim)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(port + 1, min(port + 1 + FREE_PORT_SEARCH, 65536)):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, candidate))
            return candidate
    return None


def bind_failure(host: str, port: int, exc: OSError) -> OSError:
    """``exc`` with a ``strerror`` naming who holds ``host:port`` and a free port, when it is taken."""
    if exc.errno != errno.EADDRINUSE:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        return OSError(exc.errno, reason)
    reason = _holder(port)
    free = free_port_near(host, port)
    if free is not None:
        reason += f"; port {free} is free"
    return OSError(exc.errno, reason)
