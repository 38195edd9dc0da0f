"""Who listens on a TCP port: named when nginx cannot bind the LB address, so the operator knows which
process and which state dir to stop instead of reading nginx's ``bind() failed`` five times.

Reads /proc (Linux): the LISTEN socket's inode from /proc/net/tcp{,6}, then the process holding it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from core.presence import live_controllers, state_dir_of_nginx

TCP_LISTEN = "0A"


def listening_inodes(port: int | None = None) -> set[str]:
    """Inodes of the TCP sockets in LISTEN on ``port`` (on any port if None), in this network namespace."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == TCP_LISTEN and (port is None or int(local.rsplit(":", 1)[1], 16) == port):
                    inodes.add(inode)
    return inodes


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(text[text.rindex(")") + 2 :].split()[1])


def listening_pids(port: int) -> list[int]:
    """Processes holding a LISTEN socket on ``port`` (any address), lowest pid first."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not wanted:
        return []
    holders: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for descriptor in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(descriptor) in wanted:
                        holders.append(int(entry.name))
                        break
    return sorted(holders)


def describe_holder(port: int) -> str | None:
    """One sentence naming what holds ``port`` and how to free it, or None when nothing is found."""
    pids = listening_pids(port)
    if not pids:
        return None
    pid = pids[0]
    cmdline = _cmdline(pid)
    if cmdline.startswith("nginx: worker process"):
        parent = _parent(pid)
        if _cmdline(parent).startswith("nginx: master process"):
            pid, cmdline = parent, _cmdline(parent)
    state_dir = state_dir_of_nginx(cmdline) if cmdline.startswith("nginx: master process") else None
    if state_dir is None:
        return f"port {port} is held by pid {pid} ({cmdline or 'unknown command'})"
    controllers = live_controllers(state_dir)
    if controllers:
        who = ", ".join(c.describe() for c in controllers)
        how = " and ".join(c.how_to_stop() for c in controllers)
        return (
            f"port {port} is held by nginx (pid {pid}) of the state dir {state_dir}, driven by {who}: "
            f"{how}, then `orchestry stop --state-dir {state_dir}` if nginx still serves"
        )
    return (
        f"port {port} is held by nginx (pid {pid}) of the state dir {state_dir}, left serving by a console "
        f"or daemon that quit: `orchestry stop --state-dir {state_dir}` stops it and its apps"
    )
