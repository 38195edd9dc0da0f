"""The real nginx driven by NginxController, in front of tiny aiohttp backends on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import core.lb.nginx as nginx_module
from core.errors import ConfigRejected
from core.lb.nginx import NginxController, _worker_pids
from core.lb.nginx_procs import _child_pids, _listening, retire_orphans, running_master
from core.lb.render import AppRoute, Upstream
from core.metrics import instruments
from core.net.connections import established_connections, wait_drained
from testkit.harness import free_port
from tests.conftest import unique_name

DOMAIN = "apps.test"


class Backend:
    """An HTTP server that says who it is and what it received."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.port = 0
        self.received = 0
        self._runner: web.AppRunner | None = None

    @property
    def upstream(self) -> Upstream:
        return Upstream("127.0.0.1", self.port)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        self.received += 1
        # 2 ms: long enough for requests to overlap a reload; ?delay= for a request still in flight
        # across several reloads.
        await asyncio.sleep(float(request.query.get("delay", 0.002)))
        return web.json_response(
            {
                "backend": self.label,
                "path": request.path_qs,
                "host": request.headers.get("Host"),
                "prefix": request.headers.get("X-Forwarded-Prefix"),
                "forwarded_for": request.headers.get("X-Forwarded-For"),
            }
        )


BackendFactory = Callable[[str], Awaitable[Backend]]


@pytest.fixture
async def backends() -> AsyncIterator[BackendFactory]:
    started: list[Backend] = []

    async def make(label: str) -> Backend:
        backend = Backend(label)
        await backend.start()
        started.append(backend)
        return backend

    yield make
    for backend in started:
        await backend.stop()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, dict[str, Any]]] = []

    async def __call__(self, category: str, kind: str, message: str, details: dict[str, Any]) -> None:
        self.events.append((category, kind, message, details))

    def kinds(self) -> list[str]:
        return [kind for _category, kind, _message, _details in self.events]


@pytest.fixture
def events() -> Recorder:
    return Recorder()


ControllerFactory = Callable[..., Awaitable[NginxController]]


@pytest.fixture
async def make_controller(tmp_path: Path, events: Recorder) -> AsyncIterator[ControllerFactory]:
    """Controllers sharing one prefix and port; every nginx they started is stopped afterwards."""
    port = free_port()
    prefix = tmp_path / "nginx"
    made: list[NginxController] = []

    async def make(**overrides: Any) -> NginxController:
        options: dict[str, Any] = {"domain": DOMAIN, "on_event": events, **overrides}
        controller = NginxController(prefix, "127.0.0.1", port, **options)
        await controller.start()
        made.append(controller)
        return controller

    yield make
    for controller in reversed(made):
        with contextlib.suppress(Exception):
            await controller.stop(keep_serving=False)
    for pid in _our_nginx_pids(prefix):  # anything a failed test left behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _our_nginx_pids(prefix: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if not (entry / "cmdline").read_bytes().startswith(b"nginx:"):
                continue
            if (entry / "stat").read_text().split(") ")[1].startswith("Z"):
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if Path(os.readlink(fd)).is_relative_to(prefix):
                        pids.append(int(entry.name))
                        break
    return pids


def _masters_of(prefix: Path) -> list[int]:
    """The nginx masters serving ``prefix``.  A master's child still starting carries the master's title
    until its setup ends (a relaunch's new worker, while the test already looks): it is no master."""
    return [
        pid
        for pid in _our_nginx_pids(prefix)
        if _title(pid).startswith("nginx: master process")
        and not _title(_parent_of(pid)).startswith("nginx: master process")
    ]


def _title(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    return ""


def _parent_of(pid: int) -> int:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    return 0


def base_url(controller: NginxController) -> str:
    return f"http://{controller.listen_host}:{controller.listen_port}"


async def get_json(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any] | None]:
    """GET with one retry when a reused keep-alive connection was closed by an old worker (NOTES.md)."""
    for attempt in range(3):
        try:
            async with session.get(url, allow_redirects=False, **kwargs) as response:
                body = await response.json(content_type=None) if response.status != 301 else None
                return response.status, body
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if isinstance(exc, aiohttp.ClientConnectorError) or attempt == 2:
                raise
    raise AssertionError("unreachable")


class LoadClient:
    """Sends GET and POST in turn, back to back, until stopped; never retries: every request has a
    connection of its own and any error is recorded (-1). nginx resends a failed GET to the next
    upstream but never a POST, so a POST shows what a client really saw."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: list[int] = []
        self.methods: list[str] = []
        self.backends: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoadClient:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task
        print(f"\n{self.figures()}")

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while not self._stop.is_set():
                method = "POST" if len(self.statuses) % 2 else "GET"
                status, body = -1, None
                try:
                    async with session.request(
                        method, self.url, data=b"x" if method == "POST" else None
                    ) as resp:
                        status, body = resp.status, await resp.json(content_type=None)
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    pass
                self.statuses.append(status)
                self.methods.append(method)
                if body and "backend" in body:
                    self.backends.append(body["backend"])

    def failures(self) -> list[tuple[str, int]]:
        return [(m, s) for m, s in zip(self.methods, self.statuses, strict=True) if not 200 <= s < 300]

    def figures(self) -> str:
        posts = self.methods.count("POST")
        return f"load: {len(self.statuses)} requests sent ({posts} POST), {len(self.failures())} failed"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


async def test_two_apps_on_one_listener_each_reach_their_own_backends(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    a1, a2, b1 = await backends("a1"), await backends("a2"), await backends("b1")
    shop, blog, empty = unique_name("shop"), unique_name("blog"), unique_name("empty")
    controller = await make_controller()
    await controller.set_route(AppRoute(shop, (a1.upstream, a2.upstream)))
    await controller.set_route(AppRoute(blog, (b1.upstream,), "round_robin"))
    await controller.set_route(AppRoute(empty, ()))
    assert await controller.flush() is True
    url = base_url(controller)

    seen = set()
    for _ in range(10):
        status, body = await get_json(session, f"{url}/{shop}/cart?item=1")
        assert status == 200 and body is not None
        assert body["path"] == "/cart?item=1"  # prefix stripped
        assert body["prefix"] == f"/{shop}"
        seen.add(body["backend"])
    assert seen == {"a1", "a2"}

    status, body = await get_json(session, f"{url}/{blog}/")
    assert (status, body and body["backend"], body and body["path"]) == (200, "b1", "/")

    status, _ = await get_json(session, f"{url}/{blog}")
    assert status == 301

    status, body = await get_json(session, f"{url}/{empty}/")
    assert status == 503
    assert body == {"detail": f"app '{empty}' has no ready replicas"}

    status, body = await get_json(session, f"{url}/nothing-here/")
    assert status == 404 and body is not None and "/<app>/" in body["detail"]

    await controller.remove_route(blog)
    assert await controller.flush() is True
    status, _ = await get_json(session, f"{url}/{blog}/")
    assert status == 404
    assert controller.status()["apps"] == sorted([shop, empty])


async def test_host_header_routes_to_the_app_with_the_full_path(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    backend = await backends("web1")
    name = unique_name("web")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (backend.upstream,)))
    assert await controller.flush()

    status, body = await get_json(
        session, f"{base_url(controller)}/orders/7", headers={"Host": f"{name}.{DOMAIN}"}
    )
    assert status == 200 and body is not None
    assert (body["backend"], body["path"], body["host"]) == ("web1", "/orders/7", f"{name}.{DOMAIN}")
    assert body["prefix"] is None

    status, _ = await get_json(
        session, f"{base_url(controller)}/orders/7", headers={"Host": f"other.{DOMAIN}"}
    )
    assert status == 404  # unknown hosts fall to the single default server


async def test_a_burst_of_twenty_changes_costs_one_or_two_reloads(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    pool = [await backends(f"p{i}") for i in range(4)]
    name = unique_name("burst")
    controller = await make_controller()
    before = controller.status()["reload_count"]
    counted_before = instruments.NGINX_RELOADS.value()
    for i in range(20):
        await controller.set_route(AppRoute(name, (pool[i % 4].upstream,)))
    assert await controller.flush() is True
    assert 1 <= controller.status()["reload_count"] - before <= 2
    assert instruments.NGINX_RELOADS.value() - counted_before == controller.status()["reload_count"] - before

    status, body = await get_json(session, f"{base_url(controller)}/{name}/")
    assert status == 200 and body is not None and body["backend"] == "p3"  # the last change won


async def test_an_urgent_change_ends_the_coalescing_pause_and_takes_the_changes_before_it(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    """The reconciler marks a change urgent when nothing else of the app is on its way (a scale-out's
    last replica turned ready): it is live without waiting out the window, in the same reload as the
    changes that were waiting in it.  The window here is a minute, so waiting it out fails the test."""
    one, two = await backends("u1"), await backends("u2")
    name = unique_name("urgent")
    controller = await make_controller(coalesce_seconds=60.0)
    before = controller.status()["reload_count"]
    await controller.set_route(AppRoute(name, (one.upstream,)))
    await controller.set_route(AppRoute(name, (one.upstream, two.upstream)), urgent=True)
    assert await asyncio.wait_for(controller.flush(), timeout=20) is True
    assert controller.status()["reload_count"] - before == 1
    seen = set()
    for _ in range(6):
        status, body = await get_json(session, f"{base_url(controller)}/{name}/")
        assert status == 200 and body is not None
        seen.add(body["backend"])
    assert seen == {"u1", "u2"}

    # The next change without urgency waits out its window again.
    await controller.set_route(AppRoute(name, (two.upstream,)))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(controller.flush()), timeout=1.0)
    await controller.set_route(AppRoute(name, (two.upstream,)), urgent=True)
    assert await asyncio.wait_for(controller.flush(), timeout=20) is True


async def test_a_server_taken_away_is_live_only_once_no_old_worker_accepts(
    make_controller: ControllerFactory, backends: BackendFactory
) -> None:
    leaving, staying = await backends("leaving"), await backends("staying")
    name = unique_name("away")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (leaving.upstream, staying.upstream)))
    assert await controller.flush()
    master = controller.status()["pid"]
    routing_to_leaving = set(_worker_pids(master))

    await controller.set_route(AppRoute(name, (staying.upstream,)))
    assert await controller.flush()
    # Once a removal is reported live, no worker that knew the removed server takes a connection.
    assert not routing_to_leaving & set(_worker_pids(master))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        for _ in range(10):
            status, body = await get_json(fresh, f"{base_url(controller)}/{name}/")
            assert status == 200 and body is not None and body["backend"] == "staying"


async def test_many_reloads_leave_exactly_the_configured_workers(
    make_controller: ControllerFactory, backends: BackendFactory
) -> None:
    """The controller stops a reload's old workers itself (not after the master's 100 ms pause): no
    worker is respawned for them, so the worker count stays what was configured."""
    pool = [await backends(f"w{i}") for i in range(3)]
    name = unique_name("workers")
    controller = await make_controller()
    for i in range(12):
        await controller.set_route(AppRoute(name, tuple(b.upstream for b in pool[: i % 3 + 1])))
        assert await controller.flush()
    master = controller.status()["pid"]
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        children = _child_pids(master)
        if len(children) == controller.worker_processes:
            break
        await asyncio.sleep(0.05)
    assert len(_child_pids(master)) == controller.worker_processes
    assert len(_worker_pids(master)) == controller.worker_processes


async def test_a_server_added_takes_new_connections_as_soon_as_it_is_live(
    make_controller: ControllerFactory, backends: BackendFactory
) -> None:
    """A replica reported routed gets traffic: no old worker (which only knows the servers before) may
    still take the next connections; a bridge-mode test saw six new connections all go to the old one."""
    first, added = await backends("first"), await backends("added")
    name = unique_name("add")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (first.upstream,), "round_robin"))
    assert await controller.flush()
    master = controller.status()["pid"]
    knew_only_first = set(_worker_pids(master))

    await controller.set_route(AppRoute(name, (first.upstream, added.upstream), "round_robin"))
    assert await controller.flush()
    assert not knew_only_first & set(_worker_pids(master))
    seen = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        for _ in range(6):
            status, body = await get_json(fresh, f"{base_url(controller)}/{name}/")
            assert status == 200 and body is not None
            seen.append(body["backend"])
    assert set(seen) == {"first", "added"}, seen


async def test_a_config_nginx_rejects_is_never_applied(
    make_controller: ControllerFactory,
    backends: BackendFactory,
    session: aiohttp.ClientSession,
    events: Recorder,
) -> None:
    backend = await backends("good")
    name = unique_name("keep")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (backend.upstream,)))
    assert await controller.flush()
    reloads = controller.status()["reload_count"]
    refused_before = instruments.NGINX_RELOAD_FAILURES.value(stage="test")

    assert await controller.apply_raw({"broken.conf": "this is not nginx;\n"}) is False
    assert instruments.NGINX_RELOAD_FAILURES.value(stage="test") == refused_before + 1  # on /metrics

    status = controller.status()
    assert status["reload_count"] == reloads
    assert "unknown directive" in status["last_error"]
    assert not (controller.conf_dir / "broken.conf").exists()
    rejected = [e for e in events.events if e[1] == "nginx_config_rejected"]
    assert len(rejected) == 1 and rejected[0][0] == "error"
    assert "unknown directive" in rejected[0][2] and rejected[0][3]["files"] == ["broken.conf"]

    code, body = await get_json(session, f"{base_url(controller)}/{name}/")
    assert code == 200 and body is not None and body["backend"] == "good"

    # The rejected file does not poison later changes.
    other = unique_name("next")
    await controller.set_route(AppRoute(other, (backend.upstream,)))
    assert await controller.flush(raise_on_reject=True) is True
    code, _ = await get_json(session, f"{base_url(controller)}/{other}/")
    assert code == 200

    await controller.apply_raw({"also-broken.locations": "location {\n"})
    with pytest.raises(ConfigRejected, match="nginx"):
        await controller.flush(raise_on_reject=True)


def count_config_tests(controller: NginxController, monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every `nginx -t` the controller runs from now on, by its outcome (None: the files passed)."""
    tests: list[str | None] = []
    test_config = controller._test_config

    async def counted() -> str | None:
        tests.append(await test_config())
        return tests[-1]

    monkeypatch.setattr(controller, "_test_config", counted)
    return tests


async def test_a_change_of_servers_alone_is_live_without_an_nginx_t(
    make_controller: ControllerFactory, backends: BackendFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scale-out's reloads only change an upstream's servers: no `nginx -t` process before them (the
    reload itself parses the files), and the replica added takes requests once the change is live."""
    first, added = await backends("first"), await backends("added")
    name = unique_name("servers")
    controller = await make_controller()
    tests = count_config_tests(controller, monkeypatch)
    await controller.set_route(AppRoute(name, (first.upstream,), "round_robin"))
    assert await controller.flush()
    assert tests == [None]  # a new app's files are tested
    reloads = controller.status()["reload_count"]

    await controller.set_route(AppRoute(name, (added.upstream, first.upstream), "round_robin"))
    assert await controller.flush()
    assert tests == [None] and controller.status()["reload_count"] == reloads + 1
    seen = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        for _ in range(4):
            status, body = await get_json(fresh, f"{base_url(controller)}/{name}/")
            assert status == 200 and body is not None
            seen.add(body["backend"])
    assert seen == {"first", "added"}

    await controller.set_route(AppRoute(name, (added.upstream, first.upstream), "least_conn"))
    assert await controller.flush()
    assert tests == [None, None]  # anything more than the servers is tested again


async def test_an_apps_first_and_last_servers_are_live_without_an_nginx_t(
    make_controller: ControllerFactory,
    backends: BackendFactory,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scale from zero: the upstream block and the proxy_pass appear with the first replica (and give
    way to the 503 with the last one), which is still only a change of servers, so no `nginx -t`
    process runs before those reloads either; each answer is the one of the servers live."""
    first = await backends("first")
    name = unique_name("fromzero")
    controller = await make_controller()  # with a domain: its server block changes too
    tests = count_config_tests(controller, monkeypatch)
    await controller.set_route(AppRoute(name, ()))
    assert await controller.flush()
    assert tests == [None]  # a new app's files are tested
    url = f"{base_url(controller)}/{name}/"
    assert await get_json(session, url) == (503, {"detail": f"app '{name}' has no ready replicas"})

    await controller.set_route(AppRoute(name, (first.upstream,)))
    assert await controller.flush()
    code, body = await get_json(session, url)
    assert code == 200 and body is not None and body["backend"] == "first"
    await controller.set_route(AppRoute(name, ()))
    assert await controller.flush()
    assert await get_json(session, url) == (503, {"detail": f"app '{name}' has no ready replicas"})
    assert tests == [None]

    # A server nginx would have to look up is tested, from zero as from any other list.
    await controller.set_route(AppRoute(name, (Upstream("localhost", first.port),)))
    assert await controller.flush()
    assert tests == [None, None]


async def test_a_reload_nginx_refuses_is_reported_at_once_and_the_old_config_keeps_serving(
    make_controller: ControllerFactory,
    backends: BackendFactory,
    session: aiohttp.ClientSession,
    events: Recorder,
) -> None:
    """A change without `nginx -t` that the reload refuses (here the main config was broken by hand
    meanwhile, which only the reload reads): nginx's own refusal is reported as it is logged, not after
    waiting out new workers that never come, and the previous files are back on disk."""
    kept, added = await backends("kept"), await backends("added")
    name = unique_name("refused")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (kept.upstream,)))
    assert await controller.flush()
    conf_file = controller.conf_dir / f"{name}.conf"
    live = conf_file.read_text()
    main = controller.config_path.read_text()
    controller.config_path.write_text(main + "this is not nginx;\n")
    try:
        await controller.set_route(AppRoute(name, (kept.upstream, added.upstream)))
        assert await controller.flush() is False
    finally:
        controller.config_path.write_text(main)
    error = controller.status()["last_error"]
    assert "refused the reload" in error and "unknown directive" in error, error
    assert conf_file.read_text() == live
    rejected = [e for e in events.events if e[1] == "nginx_config_rejected"]
    assert len(rejected) == 1 and "unknown directive" in rejected[0][2]
    for _ in range(4):
        code, body = await get_json(session, f"{base_url(controller)}/{name}/")
        assert code == 200 and body is not None and body["backend"] == "kept"


async def test_watchdog_restarts_nginx_killed_with_sigkill(
    make_controller: ControllerFactory,
    backends: BackendFactory,
    session: aiohttp.ClientSession,
    events: Recorder,
) -> None:
    backend = await backends("survivor")
    name = unique_name("phoenix")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (backend.upstream,)))
    assert await controller.flush()
    watchdog = asyncio.create_task(controller.watch(interval=0.1))
    try:
        old_pid = controller.status()["pid"]
        os.kill(old_pid, signal.SIGKILL)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if "nginx_restarted" in events.kinds():
                break
        assert "nginx_restarted" in events.kinds()
        new_pid = controller.status()["pid"]
        assert new_pid != old_pid and controller.status()["running"]
        assert _masters_of(controller.prefix) == [new_pid]

        code, body = await get_json(session, f"{base_url(controller)}/{name}/")
        assert code == 200 and body is not None and body["backend"] == "survivor"

        # Routes changed after the restart reach the new master.
        await controller.remove_route(name)
        assert await controller.flush()
        code, _ = await get_json(session, f"{base_url(controller)}/{name}/")
        assert code == 404
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog


# Stands in for a child nginx forked just before its master was SIGKILLed (a start or a reload): until
# its setup ends it still carries its master's title, then it serves on as a worker of no master, with
# the listening socket it inherited.  Here it holds the port and the prefix's error log like one, and
# ends on SIGQUIT as a worker does once its setup is done.
_STARTING_CHILD = """
import signal, socket, sys
signal.signal(signal.SIGQUIT, lambda *_: sys.exit(0))
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen()
print("listening", flush=True)
signal.pause()
"""


async def test_watchdog_relaunch_ends_the_child_a_killed_master_was_still_starting(
    make_controller: ControllerFactory, session: aiohttp.ClientSession, events: Recorder
) -> None:
    """A master killed while its worker was still starting leaves that child holding the port under its
    master's title.  The relaunch must end it and come back serving at its first try: it took the child
    for a master, left it alone, and every launch failed (bind(): Address already in use)."""
    controller = await make_controller()
    os.kill(controller.status()["pid"], signal.SIGKILL)
    for _ in range(500):  # then its workers (one may still be starting): the port is free
        left = await asyncio.to_thread(_our_nginx_pids, controller.prefix)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.01)
    title = f"nginx: master process nginx -p {controller.prefix} -c {controller.config_path}"
    child = await asyncio.create_subprocess_exec(
        "/bin/bash",
        "-c",
        'exec 3>>"$1"; exec -a "$2" "$3" -c "$4" "$5"',
        "-",
        str(controller.error_log_path),
        title,
        sys.executable,
        _STARTING_CHILD,
        str(controller.listen_port),
        stdout=asyncio.subprocess.PIPE,
    )
    watchdog = None
    try:
        assert child.stdout is not None
        assert await child.stdout.readline() == b"listening\n"
        watchdog = asyncio.create_task(controller.watch(interval=0.05))
        for _ in range(600):
            if {"nginx_restarted", "nginx_restart_failed"} & set(events.kinds()):
                break
            await asyncio.sleep(0.05)
        assert "nginx_restart_failed" not in events.kinds(), events.events[-1][2]
        assert await asyncio.wait_for(child.wait(), 5) == 0  # ended by its SIGQUIT, not killed
        assert _masters_of(controller.prefix) == [controller.status()["pid"]]
        code, _ = await get_json(session, f"{base_url(controller)}/{unique_name('none')}/")
        assert code == 404  # nginx answers, with the routes it was relaunched on
    finally:
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()


async def test_a_new_controller_adopts_the_running_nginx_without_interruption(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    backend = await backends("steady")
    name = unique_name("adopt")
    first = await make_controller()
    await first.set_route(AppRoute(name, (backend.upstream,)))
    assert await first.flush()
    pid = first.status()["pid"]

    async with LoadClient(f"{base_url(first)}/{name}/") as load:
        await asyncio.sleep(0.1)
        await first.stop()  # keep_serving by default
        await asyncio.sleep(0.1)
        second = await make_controller()
        await asyncio.sleep(0.1)
        served_before = len(load.statuses)
        await asyncio.sleep(0.1)
    assert second.status()["pid"] == pid
    assert second.status()["apps"] == [name]
    assert _masters_of(second.prefix) == [pid]
    assert load.statuses and not load.failures()
    assert len(load.statuses) > served_before  # kept serving after the adoption

    # The adopter manages the inherited routes: replacing the table drops the old app.
    other = unique_name("after")
    await second.set_routes({other: AppRoute(other, (backend.upstream,))})
    assert await second.flush()
    assert (await get_json(session, f"{base_url(second)}/{name}/"))[0] == 404
    assert (await get_json(session, f"{base_url(second)}/{other}/"))[0] == 200


async def test_access_log_lines_parse_as_json_with_app_and_upstream(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    backend = await backends("logged")
    name = unique_name("logs")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (backend.upstream,)))
    assert await controller.flush()
    for _ in range(3):
        await get_json(session, f"{base_url(controller)}/{name}/x")
    await get_json(session, f"{base_url(controller)}/unrouted/")

    log_path = controller.access_log_path
    assert log_path is not None
    # nginx writes the line after sending the response: give the last one a moment.
    for _ in range(100):
        records = [json.loads(line) for line in log_path.read_text().splitlines()]
        if any(r["app"] == "" for r in records):
            break
        await asyncio.sleep(0.02)
    ours = [r for r in records if r["app"] == name]
    assert len(ours) == 3
    for record in ours:
        assert record["status"] == 200 and record["m"] == "GET"
        assert record["ua"] == f"127.0.0.1:{backend.port}" and record["us"] == "200"
        assert isinstance(record["rt"], float) and float(record["urt"]) >= 0
    assert any(r["app"] == "" and r["status"] == 404 for r in records)


async def test_removing_a_replica_under_load_fails_no_request_and_drains_it(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    keep, leave = await backends("keep"), await backends("leave")
    name = unique_name("drain")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (keep.upstream, leave.upstream)))
    assert await controller.flush()

    async with LoadClient(f"{base_url(controller)}/{name}/") as load:
        await asyncio.sleep(0.3)
        assert established_connections([leave.port])[leave.port] >= 1  # keepalive to the replica
        await controller.set_route(AppRoute(name, (keep.upstream,)))
        assert await controller.flush()
        removed_at = len(load.backends) + 1  # one request may still finish on an old worker
        assert await wait_drained(leave.port, timeout=10) is True
        await asyncio.sleep(0.3)
    assert "leave" in load.backends[:removed_at]
    assert "leave" not in load.backends[removed_at:]
    assert len(load.backends[removed_at:]) >= 5  # traffic kept flowing after the removal
    assert load.failures() == []


async def test_stop_without_keep_serving_shuts_nginx_down(make_controller: ControllerFactory) -> None:
    controller = await make_controller()
    pid = controller.status()["pid"]
    await controller.stop(keep_serving=False)
    assert not controller.status()["running"]
    assert pid not in _masters_of(controller.prefix)
    with pytest.raises(OSError):
        await asyncio.open_connection(controller.listen_host, controller.listen_port)


def _nginx_of(config_path: Path) -> list[int]:
    """Every live nginx process started on ``config_path``: a master, or one just forked by its launcher
    and not yet titled "nginx: master process" (its argv then is the launch command's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
            if state not in "ZX" and cmdline.startswith("nginx") and f" -c {config_path} " in f"{cmdline} ":
                pids.append(int(entry.name))
    return pids


async def _assert_nothing_serves(controller: NginxController) -> None:
    """What a user notices after nginx was stopped: no nginx of this prefix left, its pid file gone,
    and the load-balancer port refuses connections."""
    assert _nginx_of(controller.config_path) == []
    assert not (controller.prefix / "nginx.pid").exists()
    with pytest.raises(OSError):
        await asyncio.open_connection(controller.listen_host, controller.listen_port)


async def test_stop_ends_the_master_it_drove_after_standing_by(make_controller: ControllerFactory) -> None:
    """A leader that released its lease stands by (nobody else took nginx over): stopping it with
    ``keep_serving=False`` still ends the master it started (the fuzzer's last operation releases the
    lease, then the test stops the engine with stop_apps)."""
    controller = await make_controller()
    pid = controller.status()["pid"]
    await controller.stand_by()
    await controller.stop(keep_serving=False)
    assert pid not in _masters_of(controller.prefix)
    await _assert_nothing_serves(controller)


async def test_stop_ends_the_workers_a_killed_master_left_serving(make_controller: ControllerFactory) -> None:
    """The master was killed and the engine stops before the watchdog relaunched it: its worker still
    holds the port and serves the old routes; stop with ``keep_serving=False`` must end it too."""
    controller = await make_controller()
    master = controller.status()["pid"]
    for _ in range(500):  # a worker that has finished starting
        if _worker_pids(master):
            break
        await asyncio.sleep(0.01)
    os.kill(master, signal.SIGKILL)
    for _ in range(500):
        if not await asyncio.to_thread(_masters_of, controller.prefix):
            break
        await asyncio.sleep(0.01)
    await controller.stop(keep_serving=False)
    assert await asyncio.to_thread(_listening_of, controller.prefix) == []
    with pytest.raises(OSError):  # the killed master's pid file stays: it names no nginx
        await asyncio.open_connection(controller.listen_host, controller.listen_port)


def _listening_of(prefix: Path) -> list[int]:
    """Processes of ``prefix`` that still accept connections (a worker told to stop may finish its
    requests after it closed the listening socket)."""
    return _listening(_our_nginx_pids(prefix))


async def test_stop_ends_a_master_whose_relaunch_was_cancelled_midway(
    make_controller: ControllerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watchdog relaunching a dead master is cancelled (the engine stopping) while the launch command
    runs: nginx still comes up, and stop must end it rather than only the dead master it knew."""
    import core.lb.nginx as nginx_module
    from core.lb.nginx_procs import _COMMANDS, _run_blocking

    controller = await make_controller()
    launching = threading.Event()  # set once the launch command runs in its thread
    launches: list[Future[tuple[int, str]]] = []
    real_run = nginx_module._run

    def launch(argv: list[str]) -> tuple[int, str]:
        launching.set()
        return _run_blocking(argv)

    async def tracked_run(argv: list[str]) -> tuple[int, str]:
        if argv[1:2] != ["-p"]:  # nginx -t, -v: not a launch
            return await real_run(argv)
        launches.append(_COMMANDS.submit(launch, argv))  # what _run does, with the thread's future kept
        return await asyncio.wrap_future(launches[-1])

    monkeypatch.setattr(nginx_module, "_run", tracked_run)
    watchdog = asyncio.create_task(controller.watch(interval=0.05))
    os.kill(controller.status()["pid"], signal.SIGKILL)
    assert await asyncio.to_thread(launching.wait, 30), "the watchdog never relaunched nginx"
    watchdog.cancel()  # as Engine.stop cancels its background tasks, mid-launch
    with contextlib.suppress(asyncio.CancelledError):
        await watchdog
    await controller.stop(keep_serving=False)
    code, output = await asyncio.to_thread(launches[0].result, 60)  # the launch command has returned
    assert code == 0, output
    await _assert_nothing_serves(controller)


async def test_stop_ends_a_master_whose_takeover_was_cancelled_midway(
    make_controller: ControllerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that just won the lease takes the running master over (``nginx -t`` first) and is stopped
    meanwhile, its takeover cancelled: the leader before it stood by, so the stop with
    ``keep_serving=False`` must end that master (it ended nothing, and nginx served on after both)."""
    first = await make_controller()
    master = first.status()["pid"]
    await first.stand_by()  # the first leader released its lease
    second = NginxController(first.prefix, first.listen_host, first.listen_port, domain=DOMAIN)
    await second.start(active=False)
    testing = asyncio.Event()

    async def slow_test() -> str | None:
        testing.set()
        await asyncio.Event().wait()  # nginx -t still running when the engine stops
        return None

    monkeypatch.setattr(second, "_test_config", slow_test)
    takeover = asyncio.create_task(second.activate())
    await testing.wait()
    takeover.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await takeover
    await second.stop(keep_serving=False)
    assert master not in _masters_of(second.prefix)
    await _assert_nothing_serves(second)


async def test_external_mode_writes_app_files_and_runs_the_reload_command(
    tmp_path: Path,
    make_controller: ControllerFactory,
    backends: BackendFactory,
    session: aiohttp.ClientSession,
) -> None:
    # The "operator's nginx" is one we start ourselves; the external controller only writes files
    # into its conf dir and runs the operator's test and reload commands.
    operator = await make_controller()
    location = f"-p {operator.prefix} -c {operator.config_path} -e {operator.error_log_path}"
    external = NginxController(
        tmp_path / "external-state",
        "127.0.0.1",
        operator.listen_port,
        domain=DOMAIN,
        external_conf_dir=operator.conf_dir,
        reload_command=f"nginx {location} -s reload",
        test_command=f"nginx -t -q {location}",
    )
    await external.start()
    backend = await backends("ext")
    name = unique_name("ext")
    await external.set_route(AppRoute(name, (backend.upstream,)))
    assert await external.flush() is True
    assert external.status()["reload_count"] == 1 and external.access_log_path is None
    assert (operator.conf_dir / f"{name}.conf").exists()
    for _ in range(100):  # the reload command returns before the operator's workers switch over
        code, body = await get_json(session, f"{base_url(operator)}/{name}/")
        if code == 200:
            break
        await asyncio.sleep(0.02)
    assert code == 200 and body is not None and body["backend"] == "ext"

    assert await external.apply_raw({"bad.conf": "nonsense;\n"}) is False
    assert external.status()["reload_count"] == 1
    assert (await get_json(session, f"{base_url(operator)}/{name}/"))[0] == 200


async def _one_master_left(controller: NginxController) -> int:
    """The one master serving the prefix once a replaced one has exited: the one status and the pid file
    name."""
    for _ in range(500):
        masters = await asyncio.to_thread(_masters_of, controller.prefix)
        if masters == [controller.status()["pid"]]:
            break
        await asyncio.sleep(0.01)
    assert masters == [controller.status()["pid"]]
    assert running_master(controller.prefix) == masters[0]
    return masters[0]


async def _in_flight(
    session: aiohttp.ClientSession, url: str, backend: Backend, seconds: str
) -> asyncio.Task[tuple[int, dict[str, Any] | None]]:
    """A request through nginx that ``backend`` holds for ``seconds``, once the backend has it."""
    request = asyncio.create_task(get_json(session, url, params={"delay": seconds}))
    for _ in range(500):
        if backend.received:
            break
        await asyncio.sleep(0.01)
    assert backend.received == 1
    return request


async def test_reloads_leave_one_master_that_a_refused_change_does_not_disturb(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    """Route changes go live one after another (a reload may start a fresh master: nginx's own takes no
    signal for 100 ms after each reload); afterwards one master serves, named by the pid file, which a
    sweep for a killed master's leftovers leaves alone; a change nginx refuses keeps it serving, and the
    change after that goes live."""
    pool = [await backends(f"r{i}") for i in range(3)]
    name = unique_name("fresh")
    controller = await make_controller()
    for count in (1, 2, 3, 1):
        await controller.set_route(AppRoute(name, tuple(b.upstream for b in pool[:count])))
        assert await controller.flush()
    master = await _one_master_left(controller)
    assert await asyncio.to_thread(retire_orphans, controller.prefix) == []
    code, body = await get_json(session, f"{base_url(controller)}/{name}/")
    assert code == 200 and body is not None and body["backend"] == "r0"

    main = controller.config_path.read_text()
    controller.config_path.write_text(main + "this is not nginx;\n")
    try:
        await controller.set_route(AppRoute(name, (pool[1].upstream,)))
        assert await controller.flush() is False
    finally:
        controller.config_path.write_text(main)
    assert await _one_master_left(controller) == master
    code, body = await get_json(session, f"{base_url(controller)}/{name}/")
    assert code == 200 and body is not None and body["backend"] == "r0"

    await controller.set_route(AppRoute(name, (pool[2].upstream,)))
    assert await controller.flush()
    await _one_master_left(controller)
    for _ in range(3):
        code, body = await get_json(session, f"{base_url(controller)}/{name}/")
        assert code == 200 and body is not None and body["backend"] == "r2"


async def test_a_change_while_the_replaced_master_finishes_a_request_starts_a_fresh_master(
    make_controller: ControllerFactory,
    backends: BackendFactory,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The master a reload replaced lives on until its requests in flight finish, and the master that
    replaced it takes no SIGUSR2 meanwhile.  A change then waits for it to exit (here as long as the
    request takes) and goes live by a fresh master, not by a reload in place (SIGHUP), which would
    leave nginx taking no signal for 100 ms: in a scale-out that held the next replica's route."""
    monkeypatch.setattr(nginx_module, "_PREDECESSOR_WAIT", 30.0)
    first, second, third = await backends("first"), await backends("second"), await backends("third")
    name = unique_name("exiting")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (first.upstream,)))
    assert await controller.flush()
    url = f"{base_url(controller)}/{name}/"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as own:
        in_flight = await _in_flight(own, url, first, "0.5")
        masters = [controller.status()["pid"]]
        for backend in (second, third):
            await controller.set_route(AppRoute(name, (backend.upstream,)))
            assert await controller.flush()
            masters.append(controller.status()["pid"])
        assert len(set(masters)) == 3, f"a reload reused its master (SIGHUP): {masters}"
        assert in_flight.done(), "the third master started before the first one had exited"
        code, body = await in_flight
    assert code == 200 and body is not None and body["backend"] == "first"
    code, body = await get_json(session, url)
    assert code == 200 and body is not None and body["backend"] == "third"
    await _one_master_left(controller)


async def test_changes_while_a_slow_request_holds_the_old_nginx_go_live_and_it_completes(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    """A request still in flight keeps the workers (and master) that took it until it completes; route
    changes made meanwhile go live all the same, and the request gets its whole answer."""
    slow, second, third = await backends("slow"), await backends("second"), await backends("third")
    name = unique_name("slow")
    controller = await make_controller()
    await controller.set_route(AppRoute(name, (slow.upstream,)))
    assert await controller.flush()
    url = f"{base_url(controller)}/{name}/"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as own:
        in_flight = await _in_flight(own, url, slow, "3")
        for upstream in (second.upstream, third.upstream):
            await controller.set_route(AppRoute(name, (upstream,)))
            assert await controller.flush()
            label = "second" if upstream == second.upstream else "third"
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
                for _ in range(3):
                    code, body = await get_json(fresh, url)
                    assert code == 200 and body is not None and body["backend"] == label
        assert not in_flight.done()
        code, body = await in_flight
    assert code == 200 and body is not None and body["backend"] == "slow"
    await _one_master_left(controller)


async def test_a_master_started_by_a_bare_command_name_takes_route_changes(
    make_controller: ControllerFactory, backends: BackendFactory, session: aiohttp.ClientSession
) -> None:
    """A master started as ``nginx`` (found on PATH, as controllers before started it) cannot start a
    fresh master of itself (nginx runs its argv[0] as given): adopted, it still takes every change."""
    first, second = await backends("first"), await backends("second")
    name = unique_name("bare")
    controller = await make_controller()
    await controller.stop(keep_serving=False)
    launch = ["nginx", "-p", str(controller.prefix), "-c", str(controller.config_path)]
    launch += ["-e", str(controller.error_log_path)]
    done = await asyncio.create_subprocess_exec(*launch, start_new_session=True)
    assert await done.wait() == 0
    for _ in range(500):  # the daemon writes its pid file after the launch command has exited
        if running_master(controller.prefix) is not None:
            break
        await asyncio.sleep(0.01)
    adopting = await make_controller()
    bare = adopting.status()["pid"]
    assert bare is not None and _title(bare).startswith("nginx: master process nginx -p ")
    for backend in (first, second):
        await adopting.set_route(AppRoute(name, (backend.upstream,)))
        assert await adopting.flush()
        code, body = await get_json(session, f"{base_url(adopting)}/{name}/")
        assert code == 200 and body is not None and body["backend"] == backend.label
    assert await _one_master_left(adopting) == bare
