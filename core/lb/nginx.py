"""NginxController: owns one nginx (or drives an external one) and keeps its routes in step with the engine.

Process model (decided, see DESIGN.md §1 "the next start adopts them"): nginx runs detached
(``daemon on``) from a prefix directory. It outlives the controller, so apps stay reachable while the
console restarts; the next controller finds it through ``<prefix>/nginx.pid`` and adopts it (no second
master, no gap in service). Because the master is not our child, the watchdog polls that pid.

Changes are coalesced: a burst of ``set_route`` calls within ``coalesce_seconds`` becomes one
``nginx -t`` and one reload (an ``urgent`` one, that no other change is expected to follow, ends the
pause at once). A configuration that fails ``nginx -t`` is never applied: the previous
files are restored, so the last good config keeps serving (DESIGN.md §4).

A reload is done when its new workers serve and the old workers no longer accept: until then an old
worker may take a new connection and route it by the old list, so a replica just added would get none of
it (and one just removed could still get some).

A reload usually starts a fresh master (SIGUSR2, nginx's binary upgrade with the same binary: it takes
over the listening socket, and the one before stops): a master reloaded with SIGHUP takes no signal for
100 ms after forking its new workers, and during a scale-out the next replica passing its health check
waited out that pause.  SIGHUP is still used for a change nothing is expected to follow (urgent), where
it is the quicker of the two, and where a fresh master cannot be started (the one before still finishes
requests in flight, or the master was started by a bare command name).  So the master's pid changes with
reloads; the pid file always names the one serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConfigRejected, OrchestryError
from core.lb.conf_files import (
    GENERATED_MARKER,
    _read_or_none,
    _write_atomic,
    clear_conf_dir,
    load_generated_files,
    write_files,
)
from core.lb.nginx_procs import (
    MAX_OUTPUT,
    _child_pids,
    _is_master_of,
    _may_start_successor,
    _predecessor,
    _read_master_pid,
    _run,
    _starting_master,
    _successor_of,
    _worker_pids,
    retire_orphans,
    running_master,
)
from core.lb.port_holder import describe_holder
from core.lb.render import (
    CONF_SUFFIX,
    AppRoute,
    app_file_names,
    check_app_name,
    only_servers_changed,
    only_servers_differ,
    render_app_config,
    render_main_config,
)
from core.metrics import instruments

T = TypeVar("T")

# Names tests and core.teardown import from here.
__all__ = ["GENERATED_MARKER", "NginxController", "_is_master_of", "_worker_pids", "running_master"]

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str, str, dict[str, Any]], Awaitable[None] | None]

_RAW_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*\.(conf|locations)$")
_READY_TIMEOUT = 10.0  # new master/workers serving
_POLL = 0.01
# After starting a reload's new workers the master sleeps 100 ms with every signal blocked
# (ngx_master_process_cycle: ``ngx_msleep(100)``), so a reload signalled meanwhile only begins once that
# pause is over.  Changes that come in during the pause wait until just before its end and then go
# out together in one reload, instead of the first of them taking a reload of its own and the rest
# waiting for it and then for another.  The new workers show up to one poll after their fork: signal
# that much before the pause ends, so the signal is pending as the master takes signals again.
_MASTER_PAUSE = 0.1
_SIGNAL_LEAD = 0.01
# How long a SIGUSR2 may go without a new master appearing before the master is deemed to ignore it.
_SUCCESSOR_WAIT = 0.5
# A master started by SIGUSR2 ignores the next SIGUSR2 while the master it replaced is alive, which
# finishes its workers' requests in flight and exits, usually within a few ms of the reload.  A reload
# meanwhile waits this long for it rather than reload in place: SIGHUP leaves the master deaf for
# _MASTER_PAUSE, and in a scale-out the next replica to pass its check waited that out (the last one's
# route came ~85 ms after its check in 2 of 5 rounds of bench/route_trace.py).  A predecessor held
# longer (a slow request in flight) gets the SIGHUP.
_PREDECESSOR_WAIT = 0.05
# The watchdog re-checks this often even when no exit was signalled (e.g. a master replaced by hand).
_WATCHDOG_SAFETY_NET = 5.0


# Whether this kernel lists a process's children in procfs (CONFIG_PROC_CHILDREN); without it finding
# nginx's workers scans every process, which belongs in a thread.
_PROC_CHILDREN = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()
# A reload's workers are polled this often: a few tiny procfs reads (where the kernel lists children),
# and each poll's wait is time a replica waits to be reported routed (twice: new workers up, then the
# old ones stopped).  Without that list a poll scans every process: then as seldom as other polls.
_RELOAD_POLL = 0.003 if _PROC_CHILDREN else _POLL


async def _workers_of(master_pid: int) -> set[int]:
    """The master's workers that accept connections.  Read inline where procfs lists children (a few
    tiny reads, polled every 10 ms during a reload: a hop to the default thread pool could queue behind
    the store writes a burst of ready replicas makes), in a thread otherwise."""
    if _PROC_CHILDREN:
        return set(_worker_pids(master_pid))
    return set(await _in_files_thread(_worker_pids, master_pid))


def _full_path(binary: str) -> str:
    return os.path.abspath(shutil.which(binary) or binary)


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _names(pid_file: Path, pid: int) -> bool:
    """Whether ``pid_file`` names ``pid`` (a master that started a new one on SIGUSR2 renames its
    file away until that one has exited or it has itself)."""
    try:
        return int(pid_file.read_text().strip()) == pid
    except (OSError, ValueError):
        return False


def _refusal_since(error_log: Path, offset: int) -> str | None:
    """What nginx logged at [emerg] after ``offset`` of its error log (a reload it refused: the master
    keeps its old configuration and starts no workers), or None.  A stat per poll; read only if it grew."""
    size = _size_of(error_log)
    if size <= offset:
        return None
    try:
        with error_log.open("rb") as handle:
            handle.seek(max(offset, size - MAX_OUTPUT * 4))  # its last lines: the refusal comes last
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    refusals = [line.strip() for line in text.splitlines() if "[emerg]" in line]
    return " | ".join(refusals)[-MAX_OUTPUT:] if refusals else None


def _stop_old_workers(pids: set[int]) -> None:
    """Gracefully stop the old workers of a reload as soon as its new workers exist.

    The master would do the same itself, but only after a fixed 100 ms pause (``ngx_msleep(100)``
    after starting the new workers), and until then the old workers accept connections and route
    them by the old list: that pause was most of the time between a replica passing its health check
    and the reload that routes it being live.  SIGQUIT is what the master sends (graceful: in-flight
    requests finish, the listening socket is shared, so no connection is refused meanwhile).  It is
    safe against respawn: the master blocks signals outside sigsuspend, so it only reaps an old
    worker after it has itself told it to stop, and a worker told to stop is never respawned.
    """
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)


# nginx's files and processes are read and written on threads of their own, never asyncio's default
# pool. The route files of a reload queued there behind the store writes a scale-out makes (events,
# status, instances), up to 25 ms per reload; and a takeover (this node wins the lease and adopts or
# starts nginx) waited for every call ahead of it, however long other work held the pool. Not inline,
# though the hop costs 1-7 ms under load: on a disk under heavy I/O a write and rename of the few small
# files took up to 40 ms, which would hold the event loop. Two threads: each controller's calls run one
# at a time under its _apply_lock, so a second lets another controller of this process (an in-process
# cluster in tests and bench/) go on beside it.
_FILES_THREAD = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nginx-files")


async def _in_files_thread(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_FILES_THREAD, call, *args)


class NginxController:
    """One nginx serving every app on ``listen_host:listen_port``; see the module docstring."""

    def __init__(
        self,
        prefix: Path,
        listen_host: str,
        listen_port: int,
        domain: str | None = None,
        nginx_binary: str = "nginx",
        external_conf_dir: Path | None = None,
        reload_command: str | None = None,
        on_event: EventCallback | None = None,
        coalesce_seconds: float = 0.015,
        worker_processes: int = 1,
        test_command: str | None = None,
        may_act: Callable[[], bool] | None = None,
    ) -> None:
        self.prefix = Path(prefix).resolve()
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.domain = domain
        self.nginx_binary = nginx_binary
        self.external = external_conf_dir is not None
        self.conf_dir = Path(external_conf_dir).resolve() if external_conf_dir else self.prefix / "conf.d"
        self.reload_command = reload_command or f"{nginx_binary} -s reload"
        # External mode only: how to test the operator's config (default: `nginx -t` on its default file).
        self.test_command = test_command
        self.on_event = on_event
        self.coalesce_seconds = coalesce_seconds
        self.worker_processes = worker_processes
        self.config_path = self.prefix / "nginx.conf"
        self.error_log_path = self.prefix / "error.log"

        self._desired: dict[str, str] = {}  # conf-dir file name → content we want live
        self._live: dict[str, str] = {}  # what nginx serves now (the last good set)
        self._raw_names: set[str] = set()  # files from apply_raw, kept by set_routes
        # Content of each app file this controller rendered → the route it came from (those desired or
        # live only): tells a change of servers alone from any other, even where the template writes
        # an app without servers in another shape (an app going from none to its first replica).
        self._rendered: dict[str, AppRoute] = {}
        self._requested = 0  # generation of the newest requested change
        self._applied = 0  # newest generation that has been tried
        self._outcomes: list[tuple[int, bool]] = []  # (generation, accepted) per apply
        self._changed = asyncio.Condition()
        self._apply_lock = asyncio.Lock()  # one writer of files and of the nginx process at a time
        self._apply_task: asyncio.Task[None] | None = None
        self._urgent = asyncio.Event()  # ends the coalescing pause of the apply under way
        self._master_pid: int | None = None
        # Every master this controller started or adopted, kept while it stands by: stop(keep_serving=
        # False) ends each one still alive, not only the one it drives at that moment.
        self._masters: set[int] = set()
        # A launch goes on in a task of its own (see _launch); stop() waits for one under way.
        self._launching: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        # Standby (a cluster follower): nginx is another node's to drive; nothing here writes a file,
        # signals nginx or starts one until activate(). ``may_act`` is the lease check made right
        # before each of those, for a leader that lost its lease without noticing yet (fencing).
        self._active = False
        self._may_act_check = may_act
        self.reload_count = 0
        self.last_reload_at: float | None = None
        self.last_error: str | None = None
        # When the master takes signals again after the last reload (monotonic; see _MASTER_PAUSE),
        # and how long the last `nginx -t` took (a tested change starts that much earlier).
        self._master_free_at = 0.0
        self._test_seconds = 0.0
        # Masters that started no new master on SIGUSR2 (see _replace_master): reloaded with SIGHUP.
        self._reloads_in_place: set[int] = set()

    # ------------------------------------------------------------------ public API

    @property
    def access_log_path(self) -> Path | None:
        """The JSON access log the metrics code tails; None in external mode (the operator's nginx)."""
        return None if self.external else self.prefix / "access.log"

    async def start(self, active: bool = True) -> None:
        """Prepare the prefix, then adopt the nginx a previous controller left running, or start one.

        ``active=False`` starts in standby: the routes on disk are read, nothing is written or started.
        """
        async with self._apply_lock:
            # Set first: an activation that fails to adopt or launch leaves the watchdog retrying.
            self._active = active
            if self.external:
                if active:
                    make_dir = functools.partial(self.conf_dir.mkdir, parents=True, exist_ok=True)
                    await _in_files_thread(make_dir)
                self._live = await _in_files_thread(load_generated_files, self.conf_dir)
            elif active:
                await self._start_owned()
            else:
                self._live = await _in_files_thread(load_generated_files, self.conf_dir)
            self._desired = dict(self._live)
            self._started = True
            self._stopped = False

    async def activate(self) -> None:
        """Take over nginx (this node now leads): adopt the master the pid file names, or start one.

        The files on disk are what the previous driver left live, whoever it was; they become ours.
        """
        await self.start(active=True)

    async def stand_by(self) -> None:
        """Stop driving nginx (this node no longer leads); it keeps serving for whoever leads next.

        The master is still remembered as one this controller started: if nobody takes it over, the
        caller's ``stop(keep_serving=False)`` ends it."""
        async with self._apply_lock:  # an apply under way finishes first
            self._active = False
            self._master_pid = None

    @property
    def active(self) -> bool:
        return self._active

    def _may_act(self) -> bool:
        return self._active and (self._may_act_check is None or self._may_act_check())

    async def set_routes(self, routes: dict[str, AppRoute]) -> None:
        """Replace the whole routing table (files from ``apply_raw`` stay)."""
        files: dict[str, str] = {}
        for name, route in routes.items():
            if name != route.name:
                raise ValueError(
                    f"route registered as {name!r} is named {route.name!r}: the names must match"
                )
            files.update(self._render(route))
        self._require_started()
        self._desired = {n: c for n, c in self._desired.items() if n in self._raw_names} | files
        self._request_apply()

    async def set_route(self, route: AppRoute, urgent: bool = False) -> None:
        """Add or replace one app's routing.  ``urgent``: the caller expects no other change to follow
        (the last replica of a scale-out turned ready), so waiting ``coalesce_seconds`` for more would
        only delay it."""
        files = self._render(route)
        self._require_started()
        self._desired.update(files)
        self._request_apply(urgent)

    async def remove_route(self, name: str) -> None:
        """Stop routing app ``name`` (its path then answers the default 404)."""
        self._require_started()
        for file_name in app_file_names(check_app_name(name)):
            self._desired.pop(file_name, None)
        self._request_apply()

    async def apply_raw(self, files: dict[str, str]) -> bool:
        """Write extra conf-dir files verbatim, test, reload; False (and the old config live) if rejected.

        ``*.conf`` files sit at http level, ``*.locations`` inside the main server.
        """
        for name in files:
            if not _RAW_FILE_RE.fullmatch(name):
                raise ValueError(
                    f"raw nginx file name {name!r} must be a plain name ending in .conf or .locations"
                )
        self._require_started()
        self._desired.update(files)
        self._raw_names.update(files)
        self._request_apply()
        return await self.flush()

    async def flush(self, raise_on_reject: bool = False) -> bool:
        """Wait until every change requested so far is live; False if nginx rejected it.

        With ``raise_on_reject`` a rejection raises ConfigRejected carrying nginx's error text.
        """
        target = self._requested
        async with self._changed:
            await self._changed.wait_for(lambda: self._applied >= target)
        accepted = next((ok for generation, ok in self._outcomes if generation >= target), True)
        if not accepted and raise_on_reject:
            raise ConfigRejected(self.last_error or "nginx rejected the new configuration")
        return accepted

    async def watch(self, interval: float = 0.2) -> None:
        """Restart nginx whenever it dies (with backoff); runs until cancelled. No-op in external mode."""
        backoff = 0.5
        while True:
            await self._until_master_may_have_died(interval)
            if self.external or not self._started or self._stopped or not self._may_act():
                continue
            async with self._apply_lock:
                # Two tiny procfs reads: done inline, cheaper than a thread hop.
                if self._stopped or not self._may_act() or self._master_alive():
                    backoff = 0.5
                    continue
                dead_pid = self._master_pid
                try:
                    await self._launch()
                except OrchestryError as exc:
                    self.last_error = exc.message
                    failure: str | None = exc.message
                else:
                    failure = None
            if failure is None:
                backoff = 0.5
                await self._emit(
                    "error",
                    "nginx_restarted",
                    f"nginx (pid {dead_pid}) was not running; restarted it as pid {self._master_pid} "
                    "with the last good configuration",
                    {"old_pid": dead_pid, "pid": self._master_pid},
                )
                continue
            await self._emit(
                "error",
                "nginx_restart_failed",
                f"nginx (pid {dead_pid}) is not running and could not be restarted; "
                f"retrying in {backoff:.1f} s: {failure}",
                {"old_pid": dead_pid, "retry_in_seconds": backoff},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _until_master_may_have_died(self, poll_interval: float) -> None:
        """Return when the master exits (a pidfd turns readable), or after a safety-net period.

        Polling procfs five times a second was a visible share of the engine's idle CPU; a pidfd costs
        nothing until the process exits, and a restart starts as soon as it does.  Without pidfd
        support (old kernel, seccomp) this falls back to polling every ``poll_interval``.
        """
        pid = self._master_pid
        if pid is None or self.external or not self._started or self._stopped:
            await asyncio.sleep(poll_interval)
            return
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # already gone: check at once
        except OSError:
            await asyncio.sleep(poll_interval)
            return
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
        try:  # not wait_for: on Python 3.11 it swallows a cancel (the engine stopping) as nginx exits
            async with asyncio.timeout(_WATCHDOG_SAFETY_NET):
                await exited
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    async def stop(self, keep_serving: bool = True) -> None:
        """Apply pending changes and let go. nginx keeps serving unless ``keep_serving`` is False.

        ``keep_serving=False`` ends every master this controller started or adopted (and the workers a
        killed one left behind), also after it stood by (a leader that released its lease and was not
        taken over) and one whose launch was still under way (a watchdog relaunch or a takeover
        cancelled by the engine stopping).  The caller decides whether another node drives that master
        now (nodes on one host share the prefix): then it must keep serving.
        """
        if self._started and self._applied < self._requested:
            await self.flush()
        self._stopped = True
        if keep_serving or self.external:
            return
        async with self._apply_lock:
            launch = self._launching
            if launch is not None and not launch.done():
                await asyncio.wait([launch])  # its master is recorded when it comes up; failed: none
            self._stopped = True  # a takeover that ran while we waited for the lock set it back
            candidates = self._masters | ({self._master_pid} if self._master_pid is not None else set())
            alive = [pid for pid in sorted(candidates) if await _in_files_thread(self._is_ours, pid)]
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)  # graceful: in-flight requests finish
            deadline = time.monotonic() + 35.0  # worker_shutdown_timeout is 30 s
            while alive and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                alive = [pid for pid in alive if await _in_files_thread(self._is_ours, pid)]
            if alive:
                log.warning("nginx master(s) %s of %s still running after stop", alive, self.prefix)
            # A master killed and not relaunched yet (the watchdog cancelled as the engine stops) left
            # its workers serving its routes on the port, with no master to end them.
            await _in_files_thread(retire_orphans, self.prefix)
            self._master_pid = None
            self._masters.clear()

    def status(self) -> dict[str, Any]:
        apps = sorted(
            name.removesuffix(CONF_SUFFIX)
            for name, content in self._live.items()
            if name.endswith(CONF_SUFFIX) and content.startswith(GENERATED_MARKER)
        )
        pid = self._master_pid
        if not self._active and not self.external:
            # A standby node shows the nginx the leader drives (the prefix is shared on one host).
            pid = _read_master_pid(self.prefix / "nginx.pid", self.config_path)
        return {
            "mode": "external" if self.external else "owned",
            "pid": pid,
            "running": (not self.external and pid is not None and _is_master_of(pid, self.config_path))
            or (self.external and self._started),
            "active": self._active,
            "listen": f"{self.listen_host}:{self.listen_port}",
            "last_reload_at": self.last_reload_at,
            "reload_count": self.reload_count,
            "last_error": self.last_error,
            "apps": apps,
            "pending_changes": self._requested - self._applied,
        }

    # ------------------------------------------------------------------ change pipeline

    def _render(self, route: AppRoute) -> dict[str, str]:
        files = render_app_config(
            route, self.domain, listen_host=self.listen_host, listen_port=self.listen_port
        )
        for content in files.values():
            self._rendered[content] = route
        return files

    def _forget_renders(self) -> None:
        """Keep ``_rendered`` to the files desired or live (every scale renders new ones)."""
        kept = set(self._desired.values()) | set(self._live.values())
        self._rendered = {content: route for content, route in self._rendered.items() if content in kept}

    def _require_started(self) -> None:
        if not self._started:
            raise OrchestryError("NginxController.start() must complete before routes are changed")

    def _request_apply(self, urgent: bool = False) -> None:
        self._requested += 1
        if urgent:
            self._urgent.set()
        if self._apply_task is None or self._apply_task.done():
            self._apply_task = asyncio.create_task(self._apply_soon(), name="nginx-apply")

    async def _apply_soon(self) -> None:
        # The pause is the coalescing window: calls arriving in it join this reload, until an urgent one.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.coalesce_seconds):
                await self._urgent.wait()
        try:
            while self._applied < self._requested:
                try:
                    await self._until_master_takes_signals()
                    await self._apply_pending()
                except Exception as exc:  # a bug here must not leave flush() waiting forever
                    log.exception("applying nginx changes failed")
                    await self._finish_generation(
                        self._requested, False, f"applying nginx changes failed: {exc}"
                    )
        finally:
            # Every change asked for so far, urgent ones included, was applied (no await since the
            # loop's last check): the next apply's window starts unhurried.
            self._urgent.clear()

    async def _until_master_takes_signals(self) -> None:
        """Wait while the master could not act on a reload yet (its pause after the last one), less
        the time the coming `nginx -t` takes: changes requested meanwhile join the next reload."""
        lead = 0.0 if self._needs_no_test(self._desired, self._live) else self._test_seconds
        wait = self._master_free_at - lead - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _needs_no_test(self, desired: dict[str, str], previous: dict[str, str]) -> bool:
        """Whether going from ``previous`` to ``desired`` only changes the servers of our apps' upstreams
        (owned nginx): then `nginx -t` is skipped.  Such a change holds nothing nginx could refuse (IP
        addresses and ports, the rest of each file as it was live or as the template writes an app with
        servers), and the reload parses the files anyway and keeps the old configuration if it fails
        (``_reload`` then says why at once).  The test is a process parsing every file: 10-30 ms before
        each of a scale-out's reloads on a busy host (a scale from zero's first one included), and CPU
        that Docker is starting replicas with."""
        if self.external:
            return False
        for name in desired.keys() | previous.keys():
            after, before = desired.get(name), previous.get(name)
            if after == before:
                continue
            if after is None or before is None or name in self._raw_names:
                return False
            if name.endswith(CONF_SUFFIX) and only_servers_differ(before, after):
                continue
            # Both rendered here from routes that differ in their servers alone: the app's first
            # replica (or its last one going), where the upstream block and the locations' proxy_pass
            # appear (or give way to the 503), is a change of servers like any other.
            was, now = self._rendered.get(before), self._rendered.get(after)
            if was is None or now is None or not only_servers_changed(was, now):
                return False
        return True

    async def _apply_pending(self) -> None:
        async with self._apply_lock:
            generation = self._requested
            desired = dict(self._desired)
            previous = dict(self._live)
            if not self._may_act():
                # Not ours to change: the routes stay as the leader left them (not an nginx error).
                self._desired = previous
                await self._finish_generation(generation, False, None)
                return
            if desired == previous:
                await self._finish_generation(generation, True, None)
                return
            untested = self._needs_no_test(desired, previous)
            # Asked for with nothing else of its app on the way (urgent): no change is expected within
            # the pause a SIGHUP leaves the master in, and SIGHUP forks the new workers sooner than a
            # fresh master (SIGUSR2) execs and starts.
            in_place = self._urgent.is_set()
            await self._write_files(desired, previous)
            error = None if untested else await self._test_config()
            if error is not None:
                instruments.NGINX_RELOAD_FAILURES.inc(stage="test")
            else:
                error = await self._reload(in_place)
                if error is not None:
                    instruments.NGINX_RELOAD_FAILURES.inc(stage="reload")
            if error is None:
                self._live = desired
                await self._finish_generation(generation, True, None)
                return
            await self._write_files(previous, desired)
            self._revert_batch(desired, previous)
        await self._emit(
            "error",
            "nginx_config_rejected",
            f"nginx rejected the new configuration; the previous one stays live: {error}",
            {"files": sorted(n for n in set(desired) | set(previous) if desired.get(n) != previous.get(n))},
        )
        await self._finish_generation(generation, False, error)

    async def _write_files(self, files: dict[str, str], replacing: dict[str, str]) -> None:
        await _in_files_thread(write_files, self.conf_dir, files, replacing)

    def _revert_batch(self, rejected: dict[str, str], previous: dict[str, str]) -> None:
        """Undo the rejected batch in the desired state, keeping changes requested while it was tested."""
        for name in set(rejected) | set(previous):
            if rejected.get(name) == previous.get(name) or self._desired.get(name) != rejected.get(name):
                continue
            if name in previous:
                self._desired[name] = previous[name]
            else:
                self._desired.pop(name, None)
                self._raw_names.discard(name)

    async def _finish_generation(self, generation: int, accepted: bool, error: str | None) -> None:
        if error is not None:
            self.last_error = error
        self._forget_renders()
        async with self._changed:
            self._applied = max(self._applied, generation)
            self._outcomes = [*self._outcomes[-50:], (generation, accepted)]
            self._changed.notify_all()

    # ------------------------------------------------------------------ files

    def _prepare_owned_layout(self, main_config: str) -> bool:
        """Create the prefix layout and write nginx.conf; True if the main config changed."""
        for directory in (self.prefix, self.conf_dir, self.prefix / "temp"):
            directory.mkdir(parents=True, exist_ok=True)
        try:
            changed = self.config_path.read_text() != main_config
        except FileNotFoundError:
            changed = True
        if changed:
            _write_atomic(self.config_path, main_config)
        return changed

    # ------------------------------------------------------------------ nginx process

    async def _start_owned(self) -> None:
        main_config = render_main_config(
            self.prefix,
            self.listen_host,
            self.listen_port,
            self.domain,
            self.conf_dir,
            self.prefix / "access.log",
            self.worker_processes,
        )
        previous_main = await _in_files_thread(_read_or_none, self.config_path)
        main_changed = await _in_files_thread(self._prepare_owned_layout, main_config)
        running = await _in_files_thread(_read_master_pid, self.prefix / "nginx.pid", self.config_path)
        if running is None:
            await _in_files_thread(clear_conf_dir, self.conf_dir)
        else:
            # Ours from here on: a takeover cancelled during the test below (the engine stopping right
            # after it won the lease) must not leave a master that stop(keep_serving=False) cannot end.
            self._remember(running)
        self._live = await _in_files_thread(load_generated_files, self.conf_dir)
        error = await self._test_config()
        if error is not None:
            if previous_main is not None and main_changed:
                await _in_files_thread(_write_atomic, self.config_path, previous_main)
            self.last_error = error
            raise ConfigRejected(f"nginx rejected the configuration in {self.config_path}: {error}")
        if running is None:
            await self._launch()
            return
        self._master_pid = running
        log.info("adopted nginx master pid %s serving %s", running, self.prefix)
        if main_changed:
            error = await self._reload()
            if error is not None:
                self.last_error = error
                # The master kept its old config: the file on disk says so too, for the next start.
                if previous_main is not None:
                    await _in_files_thread(_write_atomic, self.config_path, previous_main)
                # A changed ORCHESTRY_LB_LISTEN that another process holds: name it, as a launch does.
                held = await _in_files_thread(self._port_taken, error)
                raise ConfigRejected(
                    f"the adopted nginx (pid {running}) keeps serving its previous address: {held}"
                    if held
                    else f"the adopted nginx (pid {running}) did not take the new config: {error}"
                )

    async def _test_config(self) -> str | None:
        """nginx's error text if the files on disk fail ``nginx -t``, else None."""
        if self.external:
            if self.test_command is not None:
                argv = ["/bin/sh", "-c", self.test_command]
            elif shutil.which(self.nginx_binary) is None:
                return None  # nothing to test with; the reload command still reports failure
            else:
                argv = [self.nginx_binary, "-t", "-q"]
        else:
            argv = [self.nginx_binary, "-t", "-q", *self._location_args()]
        started = time.monotonic()
        code, output = await _run(argv)
        self._test_seconds = time.monotonic() - started
        return None if code == 0 else (output or f"nginx -t exited with status {code}")

    async def diagnose(self) -> dict[str, Any]:
        """For the support bundle: nginx's version and the full ``nginx -t`` report on the files on disk."""
        _code, version = await _run([self.nginx_binary, "-v"])
        if self.external:
            argv = ["/bin/sh", "-c", self.test_command] if self.test_command else [self.nginx_binary, "-t"]
        else:
            argv = [self.nginx_binary, "-t", *self._location_args()]
        code, output = await _run(argv)
        return {
            "version": version,
            "test_command": " ".join(argv),
            "test_exit_code": code,
            "test_output": output,
        }

    def _location_args(self) -> list[str]:
        return ["-p", str(self.prefix), "-c", str(self.config_path), "-e", str(self.error_log_path)]

    async def _launch(self) -> None:
        """Start a detached nginx on the files on disk and wait until it accepts connections.

        The launch runs in a task of its own that a cancelled caller does not stop: the launch command
        runs in a thread, so nginx comes up even if the caller (the watchdog, a takeover) is cancelled
        as the engine stops, and its master must be known for stop() to end it."""
        launch = asyncio.create_task(self._launch_now(), name="nginx-launch")
        # A failure nobody awaits any more (its caller was cancelled) is not reported as unretrieved.
        launch.add_done_callback(lambda task: task.cancelled() or task.exception())
        self._launching = launch
        await asyncio.shield(launch)

    async def _launch_now(self) -> None:
        pid_file = self.prefix / "nginx.pid"
        await _in_files_thread(retire_orphans, self.prefix)
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        # By its full path: a SIGUSR2 reload (_replace_master) makes the master execute its own argv[0]
        # without searching PATH.
        binary = await _in_files_thread(_full_path, self.nginx_binary)
        code, output = await _run([binary, *self._location_args()])
        if code != 0:
            raise OrchestryError(await _in_files_thread(self._launch_failure, output))
        deadline = time.monotonic() + _READY_TIMEOUT
        pid = None
        while pid is None:
            pid = await _in_files_thread(_read_master_pid, pid_file, self.config_path)
            if pid is None:
                if time.monotonic() > deadline:
                    raise OrchestryError(
                        f"nginx started but wrote no pid to {pid_file}: {self._error_log_tail()}"
                    )
                await asyncio.sleep(_POLL)
        self._master_pid = pid
        self._remember(pid)
        await self._wait_listening(deadline)

    def _launch_failure(self, output: str) -> str:
        """One sentence: nginx retries bind() five times and says so each time, and "address in use"
        is only useful with the name of the process (and state dir) that holds the port."""
        lines = list(dict.fromkeys(line.strip() for line in output.splitlines() if line.strip()))
        reason = " | ".join(line for line in lines if "still could not bind" not in line) or output
        where = f"{self.listen_host}:{self.listen_port}"
        held = self._port_taken(output)
        if held:
            return held
        return (
            f"nginx could not start on {where} from {self.config_path}: {reason}. "
            "If the port is taken, free it or choose another with ORCHESTRY_LB_LISTEN."
        )

    def _port_taken(self, output: str) -> str | None:
        """When nginx's ``output`` says the LB address is in use: who holds it and how to free it."""
        if "Address already in use" not in output:
            return None
        holder = describe_holder(self.listen_port)
        if not holder:
            return None
        where = f"{self.listen_host}:{self.listen_port}"
        return f"nginx could not listen on {where}: {holder}; or choose another ORCHESTRY_LB_LISTEN"

    def _master_alive(self) -> bool:
        return self._master_pid is not None and self._is_ours(self._master_pid)

    def _remember(self, pid: int) -> None:
        """Note a master this controller started or adopted; those that exited since are forgotten
        (a watchdog relaunching a crashing nginx would otherwise keep every pid)."""
        self._masters = {known for known in self._masters if self._is_ours(known)} | {pid}

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is a live nginx master serving this prefix's config."""
        return _is_master_of(pid, self.config_path)

    async def _reload(self, in_place: bool = False) -> str | None:
        """Apply the files on disk; None once new workers serve and the old ones no longer accept, else
        the reason it failed.  By a fresh master (see _replace_master) unless ``in_place``."""
        if self.external:
            code, output = await _run(["/bin/sh", "-c", self.reload_command])
            if code != 0:
                return f"reload command {self.reload_command!r} exited with status {code}: {output}"
            self._count_reload()
            return None
        pid = self._master_pid
        if pid is None or not self._master_alive():  # two tiny procfs reads: inline
            # The watchdog restarts it on these files; nothing to signal meanwhile.
            return None
        if not in_place and pid not in self._reloads_in_place:
            await self._until_predecessor_gone(pid)
            if _may_start_successor(pid):
                return await self._replace_master(pid)
        return await self._reload_in_place(pid)

    async def _until_predecessor_gone(self, pid: int) -> None:
        """Wait up to _PREDECESSOR_WAIT for the master that started ``pid`` to exit."""
        deadline = time.monotonic() + _PREDECESSOR_WAIT
        while time.monotonic() < deadline:
            if _predecessor(pid) is None:
                return
            await asyncio.sleep(_RELOAD_POLL)

    async def _replace_master(self, pid: int) -> str | None:
        """Reload by starting a fresh master on the files on disk (SIGUSR2, nginx's binary upgrade, with
        the same binary): it takes the listening socket over from ``pid`` and forks its workers, then
        ``pid`` and its workers are told to stop.  A SIGHUP instead leaves the master blocking every
        signal for 100 ms after it forked the new workers, so the next change (the next replica of a
        scale-out passing its check) waited out that pause; a fresh master has none, and the one it
        replaces takes no further signal.  A configuration the new master refuses ([emerg]) leaves
        ``pid`` serving as it was, as a refused SIGHUP does."""
        old_workers = await _workers_of(pid)
        logged = _size_of(self.error_log_path)
        pid_file = self.prefix / "nginx.pid"
        try:
            os.kill(pid, signal.SIGUSR2)
        except ProcessLookupError:
            return None  # died just now: the watchdog starts a new master on these files
        signalled = time.monotonic()
        deadline = signalled + _READY_TIMEOUT
        successor = None
        while time.monotonic() < deadline:
            refused = _refusal_since(self.error_log_path, logged)
            if refused is not None:
                # Once the old master has seen the new one exit, it names itself in the pid file again
                # and takes the next SIGUSR2 (until then it would ignore it, and take a SIGHUP for a
                # restart of its workers without reading the files).
                await self._until_named(pid, pid_file, deadline)
                return f"nginx refused the reload and keeps the previous configuration: {refused}"
            if successor is None:
                successor = _successor_of(pid, pid_file, self.config_path)
            if successor is not None and len(await _workers_of(successor)) >= self.worker_processes:
                break
            if (
                successor is None
                and time.monotonic() - signalled > _SUCCESSOR_WAIT
                and not any(_starting_master(child) for child in _child_pids(pid))
                and _names(pid_file, pid)
            ):
                # It ignored the signal (nginx does while the master that started it still runs) or
                # could not start its binary, and has no new master starting: reload it in place.
                log.info("nginx master %s started no new master on SIGUSR2; reloading it with SIGHUP", pid)
                self._reloads_in_place.add(pid)
                return await self._reload_in_place(pid)
            await asyncio.sleep(_RELOAD_POLL)
        else:
            return f"nginx (pid {pid}) started no new master after SIGUSR2: {self._error_log_tail()}"
        assert successor is not None
        self._master_pid = successor
        self._remember(successor)
        # The old master stops its workers gracefully and exits once they have (in-flight requests
        # finish); told directly as well, they stop accepting without waiting for it to relay.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        _stop_old_workers(old_workers)
        while time.monotonic() < deadline:
            if not old_workers & await _workers_of(pid):
                self._count_reload()
                return None
            await asyncio.sleep(_RELOAD_POLL)
        return f"the old nginx workers of pid {pid} still accept connections: {self._error_log_tail()}"

    async def _until_named(self, pid: int, pid_file: Path, deadline: float) -> None:
        while time.monotonic() < deadline:
            if _names(pid_file, pid) or not self._is_ours(pid):
                return
            await asyncio.sleep(_RELOAD_POLL)

    async def _reload_in_place(self, pid: int) -> str | None:
        """Reload ``pid`` with SIGHUP: it re-reads the files and forks new workers."""
        old_workers = await _workers_of(pid)
        logged = _size_of(self.error_log_path)
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return None  # died just now: the watchdog starts a new master on these files
        deadline = time.monotonic() + _READY_TIMEOUT
        told_to_stop = False
        while time.monotonic() < deadline:
            refused = _refusal_since(self.error_log_path, logged)
            if refused is not None:
                return f"nginx refused the reload and keeps the previous configuration: {refused}"
            workers = await _workers_of(pid)
            new_workers = workers - old_workers
            still_accepting = old_workers & workers
            # Old workers drop out of the list once they stop accepting; until then they route new
            # connections by the old list.
            if len(new_workers) >= self.worker_processes:
                if not told_to_stop and still_accepting:
                    # The master has just forked them and sleeps out its pause (_MASTER_PAUSE) before
                    # it stops the old workers itself.
                    self._master_free_at = time.monotonic() + _MASTER_PAUSE - _SIGNAL_LEAD
                if not still_accepting:
                    self._count_reload()
                    return None
                if not told_to_stop:
                    _stop_old_workers(still_accepting)
                    told_to_stop = True
            await asyncio.sleep(_RELOAD_POLL)
        return f"nginx (pid {pid}) did not start new workers after reload: {self._error_log_tail()}"

    def _count_reload(self) -> None:
        instruments.NGINX_RELOADS.inc()
        self.reload_count += 1
        self.last_reload_at = time.time()

    async def _wait_listening(self, deadline: float) -> None:
        while True:
            try:
                _reader, writer = await asyncio.open_connection(self.listen_host, self.listen_port)
            except OSError:
                if time.monotonic() > deadline:
                    raise OrchestryError(
                        f"nginx does not accept connections on {self.listen_host}:{self.listen_port}: "
                        f"{self._error_log_tail()}"
                    ) from None
                await asyncio.sleep(_POLL)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    def _error_log_tail(self) -> str:
        try:
            with self.error_log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - MAX_OUTPUT))
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no error log)"
        return " | ".join(lines[-3:]) or "(error log is empty)"

    async def _emit(self, category: str, kind: str, message: str, details: dict[str, Any]) -> None:
        log.log(logging.WARNING if category == "error" else logging.INFO, "%s: %s", kind, message)
        if self.on_event is None:
            return
        try:
            result = self.on_event(category, kind, message, details)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a broken listener must not break routing
            log.exception("on_event callback failed for %s", kind)
