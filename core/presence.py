"""Which controller processes (consoles, daemons) run on a state dir right now.

Each engine announces itself with one small file, ``<state dir>/controllers/<pid>.json``, and removes it
when it stops.  Tools that act without a daemon (``orchestry stop``, ``orchestry down --all``) and an
nginx that cannot bind its port read them to name the process in the way, by pid.  A file whose process
is gone (kill -9) or whose pid was reused by another process (the start time differs) is ignored and
removed, so a stale file never blocks anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DIRECTORY = "controllers"


@dataclass(frozen=True)
class Controller:
    pid: int
    node_id: str
    api_url: str
    lb_listen: str
    state_dir: str
    started_at: float
    process_start: str  # /proc/<pid>/stat start time: a reused pid is not this controller

    def describe(self) -> str:
        api = f"API {self.api_url}" if self.api_url else "no API: its port was taken"
        return f"{process_kind(self.pid)} pid {self.pid} (node {self.node_id}, {api})"

    def how_to_stop(self) -> str:
        if process_kind(self.pid) == "an orchestry console":
            return f"quit console pid {self.pid} with Q (quit and stop every app)"
        return f"stop pid {self.pid} (kill -TERM {self.pid})"

    def how_to_quit(self) -> str:
        """For a command that stops the apps itself once this controller is gone (`orchestry stop`):
        quitting is enough, and Q on a console that follows another stops nothing anyway."""
        if process_kind(self.pid) == "an orchestry console":
            return f"quit console pid {self.pid} (q)"
        return self.how_to_stop()


def _process_start(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text[text.rindex(")") + 2 :].split()[19]  # field 22: start time in clock ticks


def process_kind(pid: int) -> str:
    """Which kind of process ``pid`` is (an orchestry daemon or console, ...), by its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "a process"
    words = [a.decode(errors="replace") for a in argv]
    if "daemon" in words:
        return "an orchestry daemon"
    if any(Path(w).name == "orchestry" for w in words):
        return "an orchestry console"
    return "a process embedding the engine"


def announce(state_dir: Path, node_id: str, api_url: str, lb_listen: str) -> Path:
    """Write this process's presence file; returns its path for ``withdraw``."""
    pid = os.getpid()
    directory = state_dir / DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    entry = Controller(
        pid, node_id, api_url, lb_listen, str(state_dir.resolve()), time.time(), _process_start(pid)
    )
    path = directory / f"{pid}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(entry)))
    os.replace(temporary, path)
    return path


def withdraw(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def live_controllers(state_dir: Path) -> list[Controller]:
    """Controllers whose process still runs, oldest first; stale files are removed."""
    found: list[Controller] = []
    for path in sorted((state_dir / DIRECTORY).glob("*.json")):
        try:
            entry = Controller(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        alive = entry.pid == os.getpid() or (
            bool(entry.process_start) and _process_start(entry.pid) == entry.process_start
        )
        if alive:
            found.append(entry)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(found, key=lambda c: c.started_at)


def state_dir_of_nginx(cmdline: str) -> Path | None:
    """``nginx: master process nginx -p <state dir>/nginx -c ...`` → the state dir."""
    words = cmdline.split()
    if "-p" in words[:-1]:
        return Path(words[words.index("-p") + 1]).parent
    return None
