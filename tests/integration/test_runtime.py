"""DockerRuntime against the real Docker engine, with the demo image on host networking."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import docker
import pytest

from core.errors import Conflict, ContainerStartError, ImageNotFound, RuntimeUnavailable
from core.runtime.base import (
    LABEL_APP,
    LABEL_MANAGED,
    LABEL_PORT,
    LABEL_SLOT,
    LABEL_SPEC_HASH,
    LABEL_WARM,
    ContainerInfo,
    ContainerRequest,
)
from core.runtime.docker import DockerRuntime
from core.runtime.ports import PortAllocator
from tests.conftest import DEMO_IMAGE, unique_name

pytestmark = pytest.mark.timeout(120)

ports = PortAllocator()


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(version="auto")
    yield client
    client.close()


@pytest.fixture
async def runtime() -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime()
    yield rt
    await rt.close()


@pytest.fixture
def app(docker_client: docker.DockerClient) -> Iterator[str]:
    """A unique app name; every container of that app is removed after the test."""
    name = unique_name("rt")
    yield name
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_APP}={name}"}):
        container.remove(force=True)


def replica(app: str, slot: int = 1, **overrides: object) -> ContainerRequest:
    fields: dict[str, object] = {
        "app": app,
        "slot": slot,
        "name": f"{app}-{slot}",
        "image": DEMO_IMAGE,
        "command": ["/bin/serve"],
        "environment": {"ORCHESTRY_REPLICA": f"{app}-{slot}"},
        "labels": {
            LABEL_MANAGED: "true",
            LABEL_APP: app,
            LABEL_SLOT: str(slot),
            LABEL_SPEC_HASH: "abc123",
        },
        "host_port": ports.allocate(set()),
        "stop_grace_seconds": 10,
    }
    fields.update(overrides)
    return ContainerRequest(**fields)  # type: ignore[arg-type]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def wait_until_serving(info: ContainerInfo, deadline: float = 5.0) -> None:
    give_up = time.monotonic() + deadline
    while True:
        try:
            status, body = await asyncio.to_thread(http_get, info.port, "/health", 1.0)
            if status == 200 and body == "ok":
                return
        except OSError:
            pass
        if time.monotonic() > give_up:
            raise AssertionError(f"{info.name} did not answer /health on port {info.port}")
        await asyncio.sleep(0.05)


async def test_started_replica_answers_on_its_port_and_carries_labels(
    runtime: DockerRuntime, app: str
) -> None:
    request = replica(app)
    info = await runtime.create_and_start(request)

    assert info.running
    assert (info.name, info.app, info.slot, info.spec_hash) == (f"{app}-1", app, 1, "abc123")
    assert (info.host, info.port) == ("127.0.0.1", request.host_port)
    assert info.labels[LABEL_PORT] == str(request.host_port)
    assert info.labels[LABEL_MANAGED] == "true"
    assert info.started_at is not None and abs(info.started_at - time.time()) < 30

    await wait_until_serving(info)
    status, body = await asyncio.to_thread(http_get, info.port, "/")
    assert status == 200
    assert f"replica={app}-1" in body and f"port={request.host_port}" in body


async def test_list_managed_finds_replicas_but_never_unmanaged_containers(
    runtime: DockerRuntime, app: str, docker_client: docker.DockerClient
) -> None:
    first = await runtime.create_and_start(replica(app, 1))
    second = await runtime.create_and_start(replica(app, 2))
    # Same app label, but not managed: Orchestry must never see (or touch) it.
    docker_client.containers.create(DEMO_IMAGE, ["/bin/serve"], name=f"{app}-stray", labels={LABEL_APP: app})

    mine = await runtime.list_managed(app)
    assert [(c.id, c.slot) for c in mine] == [(first.id, 1), (second.id, 2)]
    assert all(c.port > 0 for c in mine)
    everything = await runtime.list_managed()
    assert {first.id, second.id} <= {c.id for c in everything}
    assert f"{app}-stray" not in {c.name for c in everything}


async def test_the_node_counts_running_replicas_without_inspecting_the_others(
    runtime: DockerRuntime, app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node poll (every few seconds) reads one container list: a container not running is not
    inspected, since one Docker is starting waits out its start before it answers an inspect (0.2-0.3 s
    each in a scale's burst, threads of the pool and the daemon's work while it starts replicas)."""
    await runtime.create_and_start(replica(app, 1))
    stopped = await runtime.create_and_start(replica(app, 2))
    await runtime.stop(stopped.id, timeout=5)
    inspected: list[str] = []

    async def counted(container_id: str) -> ContainerInfo | None:
        inspected.append(container_id)
        return None

    monkeypatch.setattr(runtime, "inspect", counted)
    [node] = await runtime.nodes()
    assert node.state == "ready" and node.tasks >= 1
    assert inspected == []


async def test_stop_with_init_is_fast_and_remove_tolerates_gone_containers(
    runtime: DockerRuntime, app: str
) -> None:
    info = await runtime.create_and_start(replica(app))
    await wait_until_serving(info)

    await runtime.stop(info.id, timeout=30)
    stopped = await runtime.inspect(info.id)
    assert stopped is not None and stopped.state == "exited" and stopped.exit_code is not None
    assert stopped.exit_code != 137, "SIGKILL after the timeout: SIGTERM did not reach httpd"
    assert stopped.finished_at is not None

    await runtime.remove(info.id)
    assert await runtime.inspect(info.id) is None
    await runtime.remove(info.id)  # already gone: still success
    await runtime.stop(info.id, timeout=1)


async def test_logs_have_timestamps_and_follow_logs_yields_new_lines(
    runtime: DockerRuntime, app: str
) -> None:
    info = await runtime.create_and_start(replica(app))
    await wait_until_serving(info)

    lines = await runtime.logs(info.id, tail=100, since=None, until=None)
    assert lines, "expected the startup line and a request line"
    assert all(abs(line.timestamp - time.time()) < 60 for line in lines)
    assert any(f"replica={app}-1" in line.message for line in lines)
    assert all(line.replica == f"{app}-1" and line.container_id == info.id for line in lines)
    assert [line.timestamp for line in lines] == sorted(line.timestamp for line in lines)
    assert len(await runtime.logs(info.id, tail=1, since=None, until=None)) == 1

    before_follow = time.time()
    follower = runtime.follow_logs(info.id, since=before_follow)

    async def next_line() -> str:
        async for line in follower:
            if line.timestamp >= before_follow:
                return line.message
        raise AssertionError("log stream ended")

    waiter = asyncio.create_task(next_line())
    await asyncio.sleep(0.3)
    await asyncio.to_thread(http_get, info.port, "/health")
    message = await asyncio.wait_for(waiter, 10)
    assert "response:200" in message
    await follower.aclose()  # type: ignore[attr-defined]


async def test_follow_logs_ends_when_the_container_goes_away(runtime: DockerRuntime, app: str) -> None:
    info = await runtime.create_and_start(replica(app))

    async def drain() -> int:
        return len([line async for line in runtime.follow_logs(info.id, since=None)])

    reader = asyncio.create_task(drain())
    await asyncio.sleep(0.5)
    await runtime.remove(info.id, force=True)
    assert await asyncio.wait_for(reader, 10) >= 1


async def test_events_report_a_die_after_docker_kill(
    runtime: DockerRuntime, app: str, docker_client: docker.DockerClient
) -> None:
    seen: list[tuple[str, str]] = []
    started = asyncio.Event()
    died = asyncio.Event()
    exit_codes: list[int | None] = []

    async def watch() -> None:
        async for event in runtime.events():
            if event.app != app:
                continue
            seen.append((event.action, event.container_id))
            if event.action == "start":
                started.set()
            if event.action == "die":
                exit_codes.append(event.exit_code)
                assert event.slot == 1
                died.set()
                return

    watcher = asyncio.create_task(watch())
    try:
        # Docker only delivers events after the subscription: retry the start until it is seen.
        info = None
        for _ in range(20):
            if info is None:
                info = await runtime.create_and_start(replica(app))
            else:
                await asyncio.to_thread(docker_client.containers.get(info.id).restart, timeout=1)
            try:
                await asyncio.wait_for(started.wait(), 1)
                break
            except TimeoutError:
                continue
        assert info is not None and started.is_set()

        await asyncio.to_thread(docker_client.containers.get(info.id).kill)
        await asyncio.wait_for(died.wait(), 10)
        assert ("die", info.id) in seen
        assert exit_codes == [137]
    finally:
        watcher.cancel()


async def test_stats_sample_five_containers_in_parallel(runtime: DockerRuntime, app: str) -> None:
    infos = await asyncio.gather(*(runtime.create_and_start(replica(app, slot)) for slot in range(1, 6)))
    await asyncio.gather(*(wait_until_serving(info) for info in infos))

    started = time.monotonic()
    single = await runtime.stats([infos[0].id])
    single_time = time.monotonic() - started
    started = time.monotonic()
    stats = await runtime.stats([info.id for info in infos])
    all_time = time.monotonic() - started
    print(f"\nstats: one container {single_time:.2f}s, five in parallel {all_time:.2f}s")

    assert set(single) == {infos[0].id}
    assert set(stats) == {info.id for info in infos}
    for sample in stats.values():
        assert sample.memory_bytes > 0
        assert sample.cpu_percent_of_core >= 0
        assert sample.cpu_percent_of_limit is None  # no CPU limit set
        assert sample.memory_percent is None  # no memory limit set


async def test_stats_show_a_burning_replica_against_its_limits(runtime: DockerRuntime, app: str) -> None:
    info = await runtime.create_and_start(replica(app, cpu_millis=500, memory_bytes=64 * 1024 * 1024))
    await wait_until_serving(info)
    burn = asyncio.create_task(asyncio.to_thread(http_get, info.port, "/cgi-bin/burn?s=4", 10))
    await asyncio.sleep(1.0)
    # Samples through the burn: on a loaded host one sample may catch the burner between time slices.
    samples = []
    while not burn.done():
        samples.append((await runtime.stats([info.id]))[info.id])
        await asyncio.sleep(0.5)
    await burn
    sample = max(samples, key=lambda s: s.cpu_percent_of_core)
    # Half a core allowed: the burner uses about 50 % of one core, i.e. about 100 % of its limit.
    # The upper bounds are the limit at work; the lower ones (an idle replica reads about 0.05 %) leave
    # room for a shared host at a load of 30 on two cores, where every runnable task gets about 7 %.
    assert 5 < sample.cpu_percent_of_core < 65, samples
    assert all(s.cpu_percent_of_core < 65 for s in samples), samples
    assert sample.cpu_percent_of_limit is not None and 10 < sample.cpu_percent_of_limit < 130, sample
    assert sample.memory_limit_bytes == 64 * 1024 * 1024
    assert sample.memory_percent is not None and 0 < sample.memory_percent < 100


async def test_stats_skip_containers_that_are_gone(runtime: DockerRuntime) -> None:
    assert await runtime.stats(["0123456789ab-gone"]) == {}


async def test_missing_image_raises_image_not_found_naming_the_fix(runtime: DockerRuntime, app: str) -> None:
    # A registry on a closed loopback port: the single pull attempt fails at once, inside 127.0.0.0/8.
    image = "127.0.0.1:1/orchestry-missing/nothing:latest"
    assert not await runtime.image_exists(image)
    assert await runtime.image_exists(DEMO_IMAGE)
    with pytest.raises(ImageNotFound) as caught:
        await runtime.create_and_start(replica(app, image=image))
    assert str(caught.value) == (
        f"image '{image}' is not present on this Docker engine and could not be pulled: "
        "build or load it (docker build/import), or fix spec.image"
    )
    assert await runtime.list_managed(app) == []


async def test_bad_command_raises_container_start_error_and_leaves_nothing(
    runtime: DockerRuntime, app: str
) -> None:
    with pytest.raises(ContainerStartError) as caught:
        await runtime.create_and_start(replica(app, command=["/bin/nonexistent"]))
    message = str(caught.value)
    assert f"'{app}-1'" in message and "/bin/nonexistent" in message and "spec.command" in message
    assert await runtime.list_managed(app) == []


async def test_slot_name_conflicts(runtime: DockerRuntime, app: str) -> None:
    running = await runtime.create_and_start(replica(app))
    with pytest.raises(Conflict, match="already exists and is running"):
        await runtime.create_and_start(replica(app))

    await runtime.stop(running.id, timeout=5)
    # A stopped leftover in the slot is replaced, not reported.
    replacement = await runtime.create_and_start(replica(app))
    assert replacement.id != running.id and replacement.running
    assert await runtime.inspect(running.id) is None


async def test_bridge_mode_publishes_the_container_port_on_loopback(runtime: DockerRuntime, app: str) -> None:
    request = replica(app, network_mode="bridge", container_port=8080)
    info = await runtime.create_and_start(request)
    assert info.port == request.host_port
    await wait_until_serving(info, deadline=10)
    status, body = await asyncio.to_thread(http_get, info.port, "/")
    assert status == 200 and "port=8080" in body


async def test_a_bridge_network_removed_under_the_runtime_is_made_again_for_replicas_and_warm_ones(
    docker_client: docker.DockerClient, app: str
) -> None:
    """The runtime keeps the network's id; a network removed since (``docker network prune``) must not
    fail the next replica, nor leave a warm-pool container that cannot start."""
    network = f"orchestry-t{unique_name('net')}"
    runtime = DockerRuntime(bridge_network=network)

    def remove_network() -> None:
        for found in docker_client.networks.list(names=[network]):
            found.remove()

    async def serves_on_the_network(info: ContainerInfo) -> None:
        await wait_until_serving(info, deadline=10)
        status, body = await asyncio.to_thread(http_get, info.port, "/")
        assert status == 200 and "port=8080" in body
        attached = docker_client.containers.get(info.id).attrs["NetworkSettings"]["Networks"]
        assert list(attached) == [network]

    try:
        first = await runtime.create_and_start(replica(app, 1, network_mode="bridge", container_port=8080))
        await runtime.remove(first.id, force=True)
        await asyncio.to_thread(remove_network)
        # A pool member made after the network went cannot start: it is gone (None) and no longer
        # in Docker, so the reconciler starts its replica cold.
        cold = replica(app, 2, network_mode="bridge", container_port=8080)
        warm_request = replace(cold, labels={**cold.labels, LABEL_WARM: "true"})
        warm = await runtime.create_warm(warm_request)
        assert await runtime.start_warm(warm.id, warm_request) is None
        assert await runtime.inspect(warm.id) is None
        second = await runtime.create_and_start(cold)
        await serves_on_the_network(second)

        await runtime.remove(second.id, force=True)
        await asyncio.to_thread(remove_network)
        third = await runtime.create_and_start(replica(app, 3, network_mode="bridge", container_port=8080))
        await serves_on_the_network(third)
        warm = await runtime.create_warm(replace(warm_request, slot=4, name=f"{app}-4"))
        started = await runtime.start_warm(warm.id, replace(warm_request, slot=4, name=f"{app}-4"))
        assert started is not None
        await serves_on_the_network(started)
    finally:
        await runtime.close()
        for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_APP}={app}"}):
            container.remove(force=True)
        await asyncio.to_thread(remove_network)


async def test_unreachable_docker_raises_runtime_unavailable_naming_the_socket() -> None:
    runtime = DockerRuntime(docker_url="unix:///tmp/nope.sock")
    try:
        with pytest.raises(RuntimeUnavailable) as caught:
            await runtime.ping()
        message = str(caught.value)
        assert "unix:///tmp/nope.sock" in message
        assert "dockerd" in message and "ORCHESTRY_DOCKER_URL" in message
        with pytest.raises(RuntimeUnavailable):
            await runtime.list_managed()
    finally:
        await runtime.close()


async def test_constructing_the_runtime_does_not_touch_docker() -> None:
    runtime = DockerRuntime(docker_url="unix:///tmp/nope.sock")  # no socket there: touching it would raise
    await runtime.close()


class SocketProxy:
    """A unix socket in front of Docker's, whose open connections the test can cut."""

    def __init__(self, path: str, target: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.target = target
        self.connections = 0
        self.two_connections = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._handle, self.path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections >= 2:
            self.two_connections.set()
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.target)
        self._writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut_all(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut_all()
        if self._server is not None:
            self._server.close()


async def test_events_stream_reconnects_and_says_so(app: str) -> None:
    proxy = SocketProxy(f"/tmp/orchestry-proxy-{app}.sock")
    await proxy.start()
    runtime = DockerRuntime(docker_url=f"unix://{proxy.path}")
    events = runtime.events()
    try:
        first = asyncio.create_task(anext(events))  # type: ignore[arg-type]
        # Connected once the events request went through: the version probe and the stream.
        await asyncio.wait_for(proxy.two_connections.wait(), 10)
        await asyncio.sleep(0.3)
        proxy.cut_all()

        event = await asyncio.wait_for(first, 10)
        # Other test runs share this Docker engine: their containers' events may come first.
        while event.action != "reconnected":
            assert event.app != app, f"an event of this test's app before any container started: {event}"
            event = await asyncio.wait_for(anext(events), 10)  # type: ignore[arg-type]
        assert (event.action, event.container_id, event.app, event.slot) == ("reconnected", "", "", None)
        assert abs(event.time - time.time()) < 10

        # The reopened stream delivers events again.
        info = await runtime.create_and_start(replica(app))
        while True:
            event = await asyncio.wait_for(anext(events), 10)  # type: ignore[arg-type]
            if event.container_id == info.id and event.action == "start":
                break
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        await runtime.close()
        await proxy.stop()
        os.unlink(proxy.path)


async def test_the_node_poll_asks_docker_info_once_not_every_poll(
    runtime: DockerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node poll runs every 3 s on the leader, scales included: /info costs dockerd ~8 ms of CPU
    (a running-container list ~1 ms) and answers late while containers start.  Its facts (id, name,
    version, CPUs, memory) change only with a restarted daemon, so repeated polls count the running
    replicas each time and read /info once; a failed poll forgets it (the daemon may come back
    upgraded)."""
    asked: list[str] = []
    real_info = docker.APIClient.info

    def counted(api: docker.APIClient, *args: object, **kwargs: object) -> dict[str, object]:
        asked.append("info")
        return real_info(api, *args, **kwargs)

    monkeypatch.setattr(docker.APIClient, "info", counted)
    polls = [await runtime.nodes() for _ in range(3)]
    assert [node.state for [node] in polls] == ["ready"] * 3
    assert len({node.engine_version for [node] in polls}) == 1 and polls[0][0].engine_version
    assert polls[0][0].cpu_cores and polls[0][0].memory_bytes
    assert asked == ["info"]

    async def unreachable() -> int:
        raise RuntimeUnavailable("Docker engine does not answer (test)")

    monkeypatch.setattr(runtime, "_running_count", unreachable)
    [down] = await runtime.nodes()
    assert down.state == "down"
    monkeypatch.undo()
    monkeypatch.setattr(docker.APIClient, "info", counted)
    [back] = await runtime.nodes()
    assert back.state == "ready" and back.engine_version == polls[0][0].engine_version
    assert asked == ["info", "info"]
