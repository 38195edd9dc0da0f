"""nginx processes as this host shows them: short nginx commands (``nginx -t``, reload), the master
serving a prefix (found through its pid file and /proc), its workers, and orphaned workers of a master
that died.  Blocking /proc reads: call them off the event loop where it matters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.lb.port_holder import listening_inodes

CHILD_TIMEOUT = 30.0  # nginx -t and the reload command
MAX_OUTPUT = 2000  # characters of nginx's error text kept in events and status
# How long the workers of a killed master may take to close their listening socket when told to stop
# gracefully, before they are killed (see retire_orphans).
ORPHAN_QUIT_SECONDS = 2.0
_ORPHAN_POLL = 0.01


# Short nginx commands run from their own threads: starting a child on the event loop (fork, its pipes
# and asyncio's child watcher, which starts and waits for a thread per child) held the loop 10-20 ms on
# a busy host each time, and a scale reloads nginx a few times a second.  Their own pool: the default
# one queues behind the store writes a burst of ready replicas makes.
_COMMANDS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nginx-cmd")


async def _run(argv: list[str]) -> tuple[int, str]:
    """Run a short command; (exit status, its output trimmed)."""
    return await asyncio.get_running_loop().run_in_executor(_COMMANDS, _run_blocking, argv)


def _run_blocking(argv: list[str]) -> tuple[int, str]:
    try:
        # A daemonising nginx hands its stdout to /dev/null, so EOF arrives when the launcher exits.
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # terminal signals (Ctrl-C) must not reach a detached nginx
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        return 127, f"{argv[0]!r} was not found: install nginx or set the nginx binary path"
    except subprocess.TimeoutExpired:  # run() has killed and reaped it
        return -1, f"{argv[0]} did not finish within {CHILD_TIMEOUT:.0f} s"
    text = done.stdout.decode(errors="replace").strip()
    return done.returncode or 0, text[-MAX_OUTPUT:]


def _proc_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _is_master_of(pid: int, config_path: Path) -> bool:
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):  # a killed master may linger as a zombie
        return False
    cmdline = f" {_proc_cmdline(pid)} "
    return cmdline.startswith(" nginx: master process") and f" -c {config_path} " in cmdline


def running_master(prefix: Path) -> int | None:
    """The nginx master serving the prefix ``prefix`` (as the engine starts it), or None."""
    prefix = Path(prefix).resolve()
    return _read_master_pid(prefix / "nginx.pid", prefix / "nginx.conf")


def _read_master_pid(pid_file: Path, config_path: Path) -> int | None:
    """The master ``pid_file`` names; during a SIGUSR2 reload (the old master renamed the file to
    ``.oldbin`` and the new one has not written its own yet) the old master, which still serves."""
    for path in (pid_file, pid_file.with_name(f"{pid_file.name}.oldbin")):
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
        if _is_master_of(pid, config_path):
            return pid
    return None


def _may_start_successor(pid: int) -> bool:
    """Whether master ``pid`` can start a new master on SIGUSR2: it executes its argv[0] as given (no
    PATH search), and it ignores the signal while the process that started it still is its parent (a
    master started by SIGUSR2 whose old master has not exited yet: in-flight requests keep that one)."""
    title = _proc_cmdline(pid).removeprefix("nginx: master process ").split(" ", 1)[0]
    if not os.path.isabs(title) or not os.access(title, os.X_OK):
        return False
    stat = _proc_stat(pid)
    if stat is None or stat[1] == os.getpid():  # we would be the one that started it
        return False
    return _predecessor(pid) is None


def _predecessor(pid: int) -> int | None:
    """The master that started master ``pid`` on SIGUSR2, while it is still alive (it finishes the
    requests its workers have in flight, then exits); None once ``pid`` answers to no other master."""
    stat = _proc_stat(pid)
    if stat is None:
        return None
    return stat[1] if _proc_cmdline(stat[1]).startswith("nginx: master process") else None


def _starting_master(pid: int) -> bool:
    """Whether a master's child ``pid`` may be the new master a SIGUSR2 forked (titled as its parent
    until it executes the binary, then by its command line): anything but a worker or cache process."""
    cmdline = _proc_cmdline(pid)
    return bool(cmdline) and not cmdline.startswith(("nginx: worker process", "nginx: cache "))


def _successor_of(pid: int, pid_file: Path, config_path: Path) -> int | None:
    """The master that master ``pid`` started on SIGUSR2, once it has written its pid file."""
    try:
        successor = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if successor == pid or not _is_master_of(successor, config_path):
        return None
    stat = _proc_stat(successor)
    return successor if stat is not None and stat[1] == pid else None


def _child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    children = []  # kernels without CONFIG_PROC_CHILDREN: scan every process's parent
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[1] == pid:
                children.append(int(entry.name))
    return children


def _worker_pids(master_pid: int) -> list[int]:
    """Workers accepting connections now (not the old ones shutting down after a reload)."""
    return [pid for pid in _child_pids(master_pid) if _proc_cmdline(pid) == "nginx: worker process"]


def _session_of(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[3])


def _orphan_workers(prefix: Path) -> list[int]:
    """Children of an nginx master that died (workers, cache processes) that still hold a file under
    ``prefix`` open.

    A child still setting itself up when its master was killed has no title of its own yet: it shows
    its master's ("nginx: master process nginx -p ...") until its setup ends, then serves on as a
    worker holding the listening socket.  It is told from a master by not leading its session: a
    daemonised master (``daemon on``, as the engine renders it) calls setsid(), its children never do.
    A live master's children, starting or not, are its own; a launch command not yet daemonised is not
    titled "nginx: " at all.
    """
    orphans = []
    # A master started by SIGUSR2 (a reload) does not lead its session either; once the old master
    # has exited it has no master above it.  It is the one the pid file names.
    serving = _read_master_pid(prefix / "nginx.pid", prefix / "nginx.conf")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == serving or not _proc_cmdline(pid).startswith("nginx: "):
            continue
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X") or _session_of(pid) in (pid, None):
            continue
        if _proc_cmdline(stat[1]).startswith("nginx: master process"):
            continue
        if _holds_file_under(pid, prefix):
            orphans.append(pid)
    return orphans


def retire_orphans(prefix: Path) -> list[int]:
    """Stop the processes a killed master of ``prefix`` left behind, and wait until none of them
    listens; the pids it signalled.

    A worker outlives a SIGKILLed master and keeps the listening socket (so a new master cannot bind,
    and it would serve the old routes) until told to stop; SIGQUIT makes it close the socket and
    finish its in-flight requests.  A relaunch waits for that (nginx retries a refused bind() only
    every 500 ms, five times), and so do the controller's stop and ``orchestry stop``: the port is
    free once this returns.  The signal is repeated while one still listens (one still starting takes
    it once its setup is done), and one that keeps the socket past ORPHAN_QUIT_SECONDS is killed.
    Only processes holding a file under ``prefix`` open are touched (``_orphan_workers``).
    """
    prefix = Path(prefix).resolve()
    deadline = time.monotonic() + ORPHAN_QUIT_SECONDS
    orphans = _orphan_workers(prefix)
    signalled = set(orphans)
    while orphans:
        late = time.monotonic() > deadline
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if late else signal.SIGQUIT)
        if late:
            break
        time.sleep(_ORPHAN_POLL)
        orphans = _listening(_orphan_workers(prefix))
        signalled.update(orphans)
    return sorted(signalled)


def _listening(pids: list[int]) -> list[int]:
    """Those of ``pids`` that hold a TCP socket in LISTEN (any address or port)."""
    if not pids:
        return []
    sockets = {f"socket:[{inode}]" for inode in listening_inodes()}
    holders = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in sockets for fd in Path(f"/proc/{pid}/fd").iterdir()):
                holders.append(pid)
    return holders


def _holds_file_under(pid: int, prefix: Path) -> bool:
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            if Path(os.readlink(descriptor)).is_relative_to(prefix):
                return True
    return False
