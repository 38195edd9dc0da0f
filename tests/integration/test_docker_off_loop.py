"""No Docker SDK request is sent from the event loop's thread (DESIGN.md §4: nothing blocks the loop).

Every HTTP request the SDK makes goes through its client's ``send``; here each one records the thread
it ran on while the runtime goes through a replica's whole life (create, start, inspect, list, logs,
stats, events, stop, remove) and the node and version queries. A call made on the loop would hold
every probe, API answer and lease renewal of the node for a Docker round trip, seconds on a busy
daemon.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest
from docker.api.client import APIClient
from requests import Session

from core.runtime.base import LABEL_APP
from core.runtime.docker import DockerRuntime
from tests.conftest import DEMO_IMAGE, unique_name
from tests.integration.test_runtime import replica

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sent_from() -> Iterator[list[tuple[str, str]]]:
    """(thread name, request path) of every SDK request from now on; the loop's thread is 'loop'."""
    loop_thread = threading.get_ident()
    seen: list[tuple[str, str]] = []
    real_send = Session.send

    def send(self: APIClient, request: Any, **kwargs: Any) -> Any:
        here = threading.current_thread()
        seen.append(("loop" if here.ident == loop_thread else here.name, str(request.path_url)))
        return real_send(self, request, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(APIClient, "send", send)
        yield seen


@pytest.fixture
async def runtime() -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime()
    yield rt
    await rt.close()


@pytest.fixture
def app() -> Iterator[str]:
    name = unique_name("offloop")
    yield name
    client = docker.DockerClient(version="auto")
    try:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_APP}={name}"}):
            container.remove(force=True)
    finally:
        client.close()


async def test_no_docker_request_runs_on_the_event_loop(
    sent_from: list[tuple[str, str]], runtime: DockerRuntime, app: str
) -> None:
    events = runtime.events()
    first_event = asyncio.ensure_future(anext(events))
    await runtime.ping()
    await runtime.version()
    assert await runtime.image_exists(DEMO_IMAGE)
    info = await runtime.create_and_start(replica(app))
    assert await runtime.inspect(info.id) is not None
    assert [c.id for c in await runtime.list_managed(app)] == [info.id]
    await runtime.logs(info.id, tail=10, since=None, until=None)
    await runtime.stats([info.id])
    await runtime.nodes()
    await asyncio.wait_for(first_event, 30)  # the stream is open and delivering
    await runtime.stop(info.id, timeout=5)
    await runtime.remove(info.id, force=True)
    await events.aclose()

    paths = {path.split("?")[0].rsplit("/", 1)[-1] for _thread, path in sent_from}
    assert {"_ping", "json", "start", "logs", "stats", "stop", "events", "info"} <= paths, paths
    on_loop = [path for thread, path in sent_from if thread == "loop"]
    assert on_loop == [], f"Docker requests sent from the event loop's thread: {on_loop}"
