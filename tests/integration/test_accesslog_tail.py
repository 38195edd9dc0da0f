"""The real nginx writes the orchestry log format; the tailer and the windows read it back.

nginx runs from a temporary prefix with the exact ``log_format`` of the contract, in front of two tiny
aiohttp backends, a dead port (to force retries) and a second app.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from core.metrics.accesslog import AccessLogTailer
from core.metrics.window import RollingMetrics
from testkit.harness import free_port

pytestmark = pytest.mark.timeout(60)

NGINX = "/usr/sbin/nginx"
LOG_FORMAT = (
    """log_format orchestry escape=json '{"t":$msec,"app":"$orchestry_app","status":$status,"""
    """"rt":$request_time,"ua":"$upstream_addr","us":"$upstream_status","urt":"$upstream_response_time","""
    """"m":"$request_method","bytes":$body_bytes_sent}';"""
)


@dataclass
class Proxy:
    prefix: Path
    port: int
    web_ports: tuple[int, int]
    dead_port: int
    other_port: int

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def signal(self, name: str | None) -> None:
        """``nginx -s name``; None starts nginx."""
        conf = self.prefix / "nginx.conf"
        command = [NGINX, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log")]
        subprocess.run([*command, "-s", name] if name else command, check=True, capture_output=True)


async def start_backend(delay: float = 0.0) -> tuple[web.AppRunner, int]:
    async def answer(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        status = 500 if request.path.endswith("/fail") else 200
        return web.Response(text="ok", status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[Proxy]:
    runners = []
    ports = []
    for delay in (0.0, 0.0, 0.05):
        runner, port = await start_backend(delay)
        runners.append(runner)
        ports.append(port)
    web_a, web_b, other = ports
    dead = free_port()  # nothing listens: nginx gets "connection refused" and tries the next server
    listen = free_port()
    prefix = tmp_path / "nginx"
    (prefix / "temp").mkdir(parents=True)
    conf = f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    {LOG_FORMAT}
    access_log {prefix}/access.log orchestry;
    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    upstream web {{ server 127.0.0.1:{web_a}; server 127.0.0.1:{web_b}; }}
    upstream retry {{ server 127.0.0.1:{dead} max_fails=0; server 127.0.0.1:{web_a} max_fails=0; }}
    upstream other {{ server 127.0.0.1:{other}; }}
    server {{
        listen 127.0.0.1:{listen};
        set $orchestry_app "";
        location / {{ return 404; }}
        location /web/ {{ set $orchestry_app web; proxy_pass http://web/; }}
        location /retry/ {{ set $orchestry_app web; proxy_pass http://retry/; }}
        location /other/ {{ set $orchestry_app other; proxy_pass http://other/; }}
    }}
}}
"""
    (prefix / "nginx.conf").write_text(conf)
    nginx = Proxy(prefix, listen, (web_a, web_b), dead, other)
    await asyncio.to_thread(nginx.signal, None)
    try:
        yield nginx
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            await asyncio.to_thread(nginx.signal, "stop")
        for runner in runners:
            await runner.cleanup()


async def get(proxy: Proxy, path: str, times: int = 1) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(times):
            async with session.get(f"http://127.0.0.1:{proxy.port}{path}") as answer:
                await answer.read()


async def read_until(tailer: AccessLogTailer, count: int, within: float = 5.0) -> list:
    """nginx writes each line when the request ends; poll until ``count`` records arrived."""
    records: list = []
    deadline = time.monotonic() + within
    while len(records) < count and time.monotonic() < deadline:
        records += await asyncio.to_thread(tailer.read_new)
        if len(records) < count:
            await asyncio.sleep(0.05)
    return records


async def test_records_name_the_app_and_the_replica_that_answered(proxy: Proxy) -> None:
    tailer = AccessLogTailer(proxy.access_log)
    await get(proxy, "/web/", times=10)
    await get(proxy, "/nothing-here")
    await get(proxy, "/other/fail")
    records = await read_until(tailer, 12)
    assert len(records) == 12

    web_records = [r for r in records if r.app == "web"]
    assert len(web_records) == 10
    answered_by = {r.upstream for r in web_records}
    assert answered_by == {f"127.0.0.1:{p}" for p in proxy.web_ports}  # round-robin over both
    assert all(r.status == 200 and r.upstream_status == 200 for r in web_records)

    (unmatched,) = [r for r in records if r.app == ""]
    assert unmatched.status == 404 and unmatched.upstream is None and unmatched.upstream_time_ms is None

    (other,) = [r for r in records if r.app == "other"]
    assert other.status == 500 and other.upstream == f"127.0.0.1:{proxy.other_port}"
    assert other.request_time_ms >= 40  # the "other" backend sleeps 50 ms; nginx logs whole ms


async def test_a_retried_request_is_attributed_to_the_replica_that_answered(proxy: Proxy) -> None:
    tailer = AccessLogTailer(proxy.access_log)
    await get(proxy, "/retry/", times=4)
    records = await read_until(tailer, 4)
    retried = [r for r in records if r.upstream_status == 200]
    assert len(retried) == 4
    assert all(r.upstream == f"127.0.0.1:{proxy.web_ports[0]}" for r in retried)
    assert all(r.status == 200 for r in retried)

    # The windows count it once, for the answering replica only.
    metrics = RollingMetrics()
    slots = {f"127.0.0.1:{proxy.web_ports[0]}": 1, f"127.0.0.1:{proxy.dead_port}": 2}
    metrics.mark_traffic_observed("web", min(r.timestamp for r in records))
    for r in records:
        metrics.add_request("web", r.timestamp, r.status, r.request_time_ms, slot=slots.get(r.upstream or ""))
    replicas = metrics.replica_summary("web", 60)
    assert 2 not in replicas or not replicas[2].rps
    assert metrics.summary("web", 60).error_rate == 0.0


async def test_tailing_survives_rotation_with_reopen(proxy: Proxy) -> None:
    tailer = AccessLogTailer(proxy.access_log)
    await get(proxy, "/web/", times=3)
    assert len(await read_until(tailer, 3)) == 3

    os.rename(proxy.access_log, proxy.prefix / "access.log.1")
    await asyncio.to_thread(proxy.signal, "reopen")  # what logrotate's postrotate does
    # Workers reopen a moment after the master: these land in the old file, the new one, or both.
    await get(proxy, "/web/", times=5)
    records = await read_until(tailer, 5)
    assert len(records) == 5 and all(r.app == "web" for r in records)


async def test_tailing_survives_truncation(proxy: Proxy) -> None:
    tailer = AccessLogTailer(proxy.access_log)
    await get(proxy, "/web/", times=20)
    assert len(await read_until(tailer, 20)) == 20
    os.truncate(proxy.access_log, 0)  # logrotate's copytruncate; nginx keeps appending (O_APPEND)
    await get(proxy, "/other/", times=2)
    records = await read_until(tailer, 2)
    assert [r.app for r in records] == ["other", "other"]
