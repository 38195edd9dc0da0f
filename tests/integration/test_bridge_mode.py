"""The whole engine in bridge networking mode, against the real Docker engine, nginx and the stores.

In bridge mode every replica runs on Orchestry's own Docker network, listens on its container port on
0.0.0.0 inside its network namespace, and is reached from the host only through that port published on
127.0.0.1 (Docker's userland proxy answers there).  nginx, the health checks, the drain and the metrics
all use the published port; nothing is ever published on 0.0.0.0.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.engine import Engine
from core.errors import AppBlocked
from core.runtime.docker import BRIDGE_NETWORK, DockerRuntime
from core.runtime.ports import PortAllocator
from tests.conftest import unique_name
from tests.integration.harness import (
    TrafficClient,
    demo_app,
    docker,
    engine_settings,
    get_text,
    lb,
    ready_count,
    ready_is,
    wait_for,
)


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Engine]:
    """A whole Engine in bridge mode on SQLite; apps and nginx are stopped afterwards."""
    eng = Engine(engine_settings(tmp_path / "state", network_mode="bridge"))
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop(stop_apps=True)


async def inspect(container_id: str) -> dict[str, Any]:
    return json.loads(await docker("inspect", container_id))[0]


def published(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(container port, host ip, host port) of every port binding Docker set up."""
    ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
    return sorted(
        (container_port, binding["HostIp"], binding["HostPort"])
        for container_port, bindings in ports.items()
        for binding in bindings or []
    )


def environment(data: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in data["Config"]["Env"])


async def live_is(eng: Engine, name: str, n: int) -> bool:
    containers = [c for c in await eng.runtime.list_managed(name) if c.running]
    return len(containers) == n and await ready_count(eng, name) == n


def replica_of(body: str) -> str:
    return body.split("replica=")[1].split()[0]


async def replicas_answering(eng: Engine, name: str, expected: set[str], timeout: float = 15.0) -> bool:
    """True once every replica in ``expected`` has answered through nginx."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and seen != expected:
        status, body = await get_text(lb(eng, name))
        if status == 200:
            seen.add(replica_of(body))
    return seen == expected


# --- serving and scaling ---------------------------------------------------------------------------


async def test_bridge_app_listens_inside_and_is_published_on_loopback_only(bridge: Engine) -> None:
    name = unique_name("br")
    await bridge.register(demo_app(name))
    await bridge.up(name)
    await wait_for(lambda: ready_is(bridge, name, 1), what="one ready replica")
    [replica] = (await bridge.get_app(name)).replicas
    data = await inspect(replica.container_id)

    # Inside: the app's own port on every interface of its private network namespace.
    env = environment(data)
    assert (env["PORT"], env["BIND_HOST"]) == ("8080", "0.0.0.0")
    assert list(data["NetworkSettings"]["Networks"]) == [BRIDGE_NETWORK]
    # Outside: that port and nothing else, on 127.0.0.1 only, at the port the engine reports.
    assert published(data) == [("8080/tcp", "127.0.0.1", str(replica.port))]
    assert replica.host == "127.0.0.1"

    status, body = await get_text(f"http://127.0.0.1:{replica.port}/")
    assert status == 200 and f"replica={name}-1 port=8080" in body
    status, body = await get_text(lb(bridge, name))
    assert status == 200 and f"replica={name}-1 port=8080" in body


async def test_bridge_scale_1_3_1_under_traffic_drops_nothing(bridge: Engine) -> None:
    name = unique_name("brs")
    await bridge.register(demo_app(name))
    await bridge.up(name)
    await wait_for(lambda: ready_is(bridge, name, 1), what="first replica ready")
    async with TrafficClient(lb(bridge, name)) as client:
        await asyncio.sleep(0.5)
        await bridge.scale(name, 3)
        await wait_for(lambda: live_is(bridge, name, 3), timeout=30, what="3 ready replicas")
        # Each replica answers with its own name, through its own published port and through nginx.
        views = (await bridge.get_app(name)).replicas
        assert len({v.port for v in views}) == 3
        for view in views:
            status, body = await get_text(f"http://127.0.0.1:{view.port}/")
            assert status == 200 and replica_of(body) == view.name == f"{name}-{view.slot}", body
        assert await replicas_answering(bridge, name, {f"{name}-{slot}" for slot in (1, 2, 3)})
        await asyncio.sleep(1.0)
        await bridge.scale(name, 1)
        await wait_for(lambda: live_is(bridge, name, 1), timeout=60, what="back to 1 replica")
        await asyncio.sleep(0.5)
    assert client.total > 100, client.statuses
    assert client.failures == 0, (client.statuses, client.errors[:5])
    served_by = {replica_of(body) for body in client.bodies}
    assert served_by == {f"{name}-{slot}" for slot in (1, 2, 3)}, client.bodies
    # The ports of the stopped replicas are free again: their userland proxies went with them.
    [remaining] = (await bridge.get_app(name)).replicas
    gone = {v.port for v in views} - {remaining.port}
    for port in gone:
        assert (await get_text(f"http://127.0.0.1:{port}/"))[0] == 0


async def test_bridge_scale_in_waits_for_requests_in_flight_on_the_published_port(bridge: Engine) -> None:
    """The drain counts nginx's connections to a replica's published port: a replica stopped while
    they were still open would cut slow requests off."""
    name = unique_name("brd")
    doc = demo_app(name)
    doc["spec"]["loadBalancing"] = "round_robin"
    await bridge.register(doc)
    await bridge.up(name)
    await bridge.scale(name, 2)
    await wait_for(lambda: live_is(bridge, name, 2), what="2 ready")
    async with aiohttp.ClientSession() as session:

        async def slow_request() -> tuple[int, str]:
            url = lb(bridge, name, "cgi-bin/sleep?ms=2500")
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=20)) as resp:
                return resp.status, await resp.text()

        pending = [asyncio.create_task(slow_request()) for _ in range(6)]
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await bridge.scale(name, 1)
        await wait_for(lambda: live_is(bridge, name, 1), timeout=30, what="back to 1 replica")
        scale_in_seconds = time.monotonic() - started
        answers = await asyncio.gather(*pending)
    assert all(status == 200 for status, _ in answers), answers
    assert {replica_of(body) for _, body in answers} == {f"{name}-1", f"{name}-2"}, answers
    assert scale_in_seconds > 1.5, f"stopped after {scale_in_seconds:.1f} s, before its requests ended"


# --- failures and restarts -------------------------------------------------------------------------


async def test_bridge_killed_replica_is_unrouted_and_replaced(bridge: Engine) -> None:
    name = unique_name("brk")
    await bridge.register(demo_app(name))
    await bridge.up(name)
    await bridge.scale(name, 2)
    await wait_for(lambda: live_is(bridge, name, 2), what="2 ready")
    before = {v.container_id: v for v in (await bridge.get_app(name)).replicas}
    victim = before[sorted(before)[0]]
    # GET only: a request on its way to a killed replica is lost; nginx resends an idempotent GET (and
    # Docker's userland proxy still accepts on the dead replica's port until it is unrouted, so even a
    # POST's connect succeeds there and nginx may not resend it: 2 of 141 POSTs failed when measured).
    async with TrafficClient(lb(bridge, name), concurrency=2, methods=("GET",)) as client:
        await docker("kill", victim.container_id)
        await wait_for(lambda: _replaced(bridge, name, set(before), victim.container_id), timeout=30)
        await asyncio.sleep(0.5)
    assert client.failures == 0, (client.statuses, client.errors[:5])
    after = {v.slot: v for v in (await bridge.get_app(name)).replicas}
    replacement = after[victim.slot]
    data = await inspect(replacement.container_id)
    assert published(data) == [("8080/tcp", "127.0.0.1", str(replacement.port))]
    assert await replicas_answering(bridge, name, {f"{name}-1", f"{name}-2"})
    assert any(e.kind == "replica_crashed" for e in await bridge.events(app=name))


async def _replaced(eng: Engine, name: str, before: set[str], victim: str) -> bool:
    now = {c.id for c in await eng.runtime.list_managed(name) if c.running}
    return victim not in now and len(now - before) == 1 and await ready_count(eng, name) == 2


async def test_bridge_controller_restart_adopts_same_containers_and_ports(
    tmp_path: Path, database_url: str
) -> None:
    settings = engine_settings(tmp_path / "state", database_url, network_mode="bridge")
    first = Engine(settings)
    await first.start()
    second: Engine | None = None
    name = unique_name("bra")
    try:
        await first.register(demo_app(name))
        await first.up(name)
        await first.scale(name, 3)
        await wait_for(lambda: live_is(first, name, 3), what="3 ready")
        before = {c.id: published(await inspect(c.id)) for c in await first.runtime.list_managed(name)}
        async with TrafficClient(lb(first, name), concurrency=2) as client:
            await asyncio.sleep(0.3)
            await first.stop()  # containers keep running, nginx keeps serving
            await asyncio.sleep(0.5)
            second = Engine(settings)
            await second.start()
            await wait_for(lambda: ready_is(second, name, 3), what="3 adopted replicas ready")
            await asyncio.sleep(1.0)
        after = {c.id: published(await inspect(c.id)) for c in await second.runtime.list_managed(name)}
        assert after == before, "a restarted controller must adopt the same containers and ports"
        views = (await second.get_app(name)).replicas
        assert sorted(("8080/tcp", "127.0.0.1", str(v.port)) for v in views) == sorted(
            binding for bindings in before.values() for binding in bindings
        )
        assert client.failures == 0, (client.statuses, client.errors[:5])
        assert client.total > 20
        kinds = [e.kind for e in await second.events(app=name, since=second.started_at)]
        assert "replicas_adopted" in kinds and "replica_started" not in kinds, kinds
        assert await replicas_answering(second, name, {f"{name}-{slot}" for slot in (1, 2, 3)})
    finally:
        await (second or first).stop(stop_apps=True)


async def test_switching_from_host_to_bridge_mode_rolls_the_replicas_without_errors(tmp_path: Path) -> None:
    host_settings = engine_settings(tmp_path / "state")
    first = Engine(host_settings)
    await first.start()
    second: Engine | None = None
    name = unique_name("brm")
    try:
        await first.register(demo_app(name))
        await first.up(name)
        await first.scale(name, 2)
        await wait_for(lambda: live_is(first, name, 2), what="2 ready in host mode")
        host_ids = {c.id for c in await first.runtime.list_managed(name)}
        async with TrafficClient(lb(first, name), concurrency=2) as client:
            await first.stop()
            second = Engine(host_settings.model_copy(update={"network_mode": "bridge"}))
            await second.start()
            await wait_for(lambda: _all_bridge(second, name, host_ids), timeout=60, what="replicas rolled")
            await asyncio.sleep(0.5)
        assert client.failures == 0, (client.statuses, client.errors[:5])
        for container in await second.runtime.list_managed(name):
            data = await inspect(container.id)
            assert list(data["NetworkSettings"]["Networks"]) == [BRIDGE_NETWORK]
            assert published(data) == [("8080/tcp", "127.0.0.1", str(container.port))]
    finally:
        await (second or first).stop(stop_apps=True)


async def _all_bridge(eng: Engine, name: str, old_ids: set[str]) -> bool:
    containers = [c for c in await eng.runtime.list_managed(name) if c.running]
    return (
        len(containers) == 2
        and not {c.id for c in containers} & old_ids
        and all(c.container_port == 8080 for c in containers)
        and await ready_count(eng, name) == 2
    )


# --- health checks -----------------------------------------------------------------------------------


async def test_bridge_health_check_probes_the_published_port(bridge: Engine) -> None:
    """An app that listens on another port than its declared containerPort never becomes ready: the
    published port forwards to the declared one, where nothing answers."""
    name = unique_name("brw")
    doc = demo_app(name)
    doc["spec"]["environment"] = [{"name": "PORT", "value": "9090"}]
    doc["spec"]["command"] = ["sh", "-c", "PORT=9090 exec /bin/serve"]
    doc["healthCheck"] = {"path": "/health", "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 1}
    await bridge.register(doc)
    await bridge.up(name)
    view = await wait_for(lambda: _never_ready(bridge, name), timeout=30, what="never-ready reason")
    reason = view.status_reason
    published_port = next(r.port for r in view.replicas if r.container_id)
    # The reason names the published port probed, the container port behind it and the fix.
    assert f"GET /health on 127.0.0.1:{published_port} (container port 8080)" in reason, reason
    assert "must listen on 0.0.0.0:8080 inside its container" in reason, reason
    assert (await get_text(lb(bridge, name)))[0] == 503


async def _never_ready(eng: Engine, name: str) -> Any:
    view = await eng.get_app(name)
    return view if "never became healthy" in view.status_reason else None


async def test_bridge_tcp_probe_waits_for_the_app_behind_the_published_port(bridge: Engine) -> None:
    """Without an HTTP check a replica is probed by TCP connect.  Docker's userland proxy accepts on the
    published port as soon as the container starts, before the app listens: the probe must not count
    that as ready, or nginx routes requests to a replica that cannot answer them."""
    name = unique_name("brt")
    doc = demo_app(name)
    del doc["healthCheck"]
    # The app listens 3 s after its container starts.
    doc["spec"]["command"] = ["sh", "-c", "sleep 3; exec /bin/serve"]
    await bridge.register(doc)
    await bridge.up(name)
    await wait_for(lambda: bridge.runtime.list_managed(name), what="the container")
    started = time.monotonic()
    async with TrafficClient(lb(bridge, name), concurrency=2) as client:
        await wait_for(lambda: ready_is(bridge, name, 1), timeout=30, what="ready replica")
        ready_after = time.monotonic() - started
        await asyncio.sleep(0.5)
    assert ready_after > 2.0, f"routed {ready_after:.1f} s after start, before the app listened"
    # Before the replica was routed nginx answered 503 itself; once routed, nothing failed.
    assert client.statuses[200] > 10 and client.errors == [], (client.statuses, client.errors[:5])
    assert set(client.statuses) <= {200, 503}, client.statuses
    ready_events = [e for e in await bridge.events(app=name) if e.kind == "replica_ready"]
    assert ready_events and "(container port 8080) accepts connections" in ready_events[0].message


# --- the network, and what Orchestry does not own ---------------------------------------------------


@pytest.fixture
def network_name() -> Iterator[str]:
    """A bridge network name of this test's own (the shared ``orchestry`` network may be in use by
    other test runs); every network of that name or prefix is removed afterwards."""
    name = f"orchestry-t{uuid.uuid4().hex[:8]}"
    yield name
    for suffix in ("", "-user"):
        for network_id in _sync_docker("network", "ls", "-q", "--filter", f"name=^{name}{suffix}$").split():
            _sync_docker("network", "rm", network_id)


def _sync_docker(*args: str) -> str:
    import subprocess

    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    return result.stdout


async def networks_named(name: str) -> list[dict[str, Any]]:
    ids = (await docker("network", "ls", "-q", "--filter", f"name={name}")).split()
    found = json.loads(await docker("network", "inspect", *ids)) if ids else []
    return [n for n in found if n["Name"] == name]


async def test_bridge_network_created_once_labelled_reused_and_foreign_objects_untouched(
    tmp_path: Path, network_name: str
) -> None:
    # Someone else's network whose name merely contains Orchestry's, and someone else's container on it.
    foreign_network = (await docker("network", "create", f"{network_name}-user")).strip()
    foreign = (
        await docker(
            "run",
            "-d",
            "--init",
            "--network",
            f"{network_name}-user",
            "--name",
            unique_name("foreign"),
            "orchestry/demo:latest",
            "/bin/serve",
        )
    ).strip()
    eng = Engine(
        engine_settings(tmp_path / "state", network_mode="bridge"),
        runtime=DockerRuntime(bridge_network=network_name),
    )
    await eng.start()
    name = unique_name("brn")
    try:
        await eng.register(demo_app(name))
        await eng.up(name)
        await eng.scale(name, 3)
        await wait_for(lambda: live_is(eng, name, 3), what="3 ready")
        [network] = await networks_named(network_name)
        assert network["Labels"] == {"orchestry.managed": "true"} and network["Driver"] == "bridge"
        members = {c["Name"] for c in network["Containers"].values()}
        assert members == {f"{name}-{slot}" for slot in (1, 2, 3)}
        # Scaling out again and replacing a replica reuse the same network.
        await eng.scale(name, 4)
        await wait_for(lambda: live_is(eng, name, 4), what="4 ready")
        assert [n["Id"] for n in await networks_named(network_name)] == [network["Id"]]
        await eng.delete(name)
        assert await eng.runtime.list_managed(name) == []
    finally:
        await eng.stop(stop_apps=True)
    # Orchestry's network stays (a restarted controller reuses it); the foreign objects are as they were.
    assert [n["Id"] for n in await networks_named(network_name)] == [network["Id"]]
    foreign_after = await inspect(foreign)
    assert foreign_after["State"]["Running"] and list(foreign_after["NetworkSettings"]["Networks"]) == [
        f"{network_name}-user"
    ]
    [user_network] = await networks_named(f"{network_name}-user")
    assert user_network["Id"] == foreign_network and "orchestry.managed" not in (user_network["Labels"] or {})
    await docker("rm", "-f", foreign)


async def test_bridge_refuses_a_network_of_its_name_that_it_does_not_manage(
    tmp_path: Path, network_name: str
) -> None:
    theirs = (await docker("network", "create", network_name)).strip()
    eng = Engine(
        engine_settings(tmp_path / "state", network_mode="bridge"),
        runtime=DockerRuntime(bridge_network=network_name),
    )
    await eng.start()
    name = unique_name("brx")
    try:
        await eng.register(demo_app(name))
        with pytest.raises(AppBlocked) as caught:
            await eng.up(name)
        message = str(caught.value)
        assert f"a Docker network named '{network_name}' exists but Orchestry did not create it" in message
        assert f"docker network rm {network_name}" in message and "ORCHESTRY_NETWORK_MODE=host" in message
        assert (await eng.get_app(name)).status == "error"
        assert await eng.runtime.list_managed(name) == []
    finally:
        await eng.stop(stop_apps=True)
    [network] = await networks_named(network_name)
    assert network["Id"] == theirs and network["Containers"] == {} and not network["Labels"]


async def test_two_controllers_creating_the_network_at_once_share_one(network_name: str) -> None:
    """Docker does not enforce unique network names: two engines that create at the same moment must
    still put their replicas on one network."""
    from core.runtime.base import ContainerRequest

    runtimes = [DockerRuntime(bridge_network=network_name) for _ in range(2)]
    app = unique_name("brd")
    requests = [
        ContainerRequest(
            app=app,
            slot=slot,
            name=f"{app}-{slot}",
            image="orchestry/demo:latest",
            command=["/bin/serve"],
            environment={},
            labels={},
            host_port=PortAllocator().allocate(),
            container_port=8080,
            network_mode="bridge",
            stop_grace_seconds=1,
        )
        for slot in (1, 2)
    ]
    try:
        started = await asyncio.gather(
            *(rt.create_and_start(r) for rt, r in zip(runtimes, requests, strict=True))
        )
        networks = {tuple((await inspect(info.id))["NetworkSettings"]["Networks"]) for info in started}
        assert len(networks) == 1, networks
        # The loser's namesake (if the race produced one) is gone: Docker would refuse the name later.
        assert len(await networks_named(network_name)) == 1
        for info in started:
            assert (await get_text(f"http://127.0.0.1:{info.port}/"))[0] == 200
    finally:
        for info in await runtimes[0].list_managed(app):
            await runtimes[0].remove(info.id, force=True)
        for runtime in runtimes:
            await runtime.close()


# --- published-port clash ------------------------------------------------------------------------


class FirstPortTaken(PortAllocator):
    """Hands out ``taken`` first: a port another program bound after the allocator's free check, the
    race a real clash comes from.  Every later call allocates normally."""

    def __init__(self, taken: int) -> None:
        super().__init__()
        self.taken: int | None = taken

    def allocate(self, exclude: set[int] | frozenset[int] = frozenset()) -> int:
        if self.taken is not None:
            port, self.taken = self.taken, None
            return port
        return super().allocate(exclude)


async def test_bridge_published_port_clash_says_so_once_and_moves_the_replica(bridge: Engine) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    try:
        bridge.reconciler.ports = FirstPortTaken(taken)
        name = unique_name("brp")
        await bridge.register(demo_app(name))
        await bridge.up(name)
        await wait_for(lambda: ready_is(bridge, name, 1), what="the replica ready on another port")
        [replica] = (await bridge.get_app(name)).replicas
        assert replica.port != taken
        status, body = await get_text(lb(bridge, name))
        assert status == 200 and f"{name}-1" in body
        clashes = [e for e in await bridge.events(app=name) if e.kind == "port_in_use"]
        assert len(clashes) == 1, [e.message for e in clashes]
        message = clashes[0].message
        assert f"published port 127.0.0.1:{taken} of replica '{name}-1' is already in use" in message
        assert "keep other programs out of Orchestry's replica ports 20000-29999" in message
        assert (await bridge.get_app(name)).status == "running"
        assert squatter.fileno() >= 0  # the other program's socket is untouched
    finally:
        squatter.close()


# --- metrics -----------------------------------------------------------------------------------------


async def test_bridge_metrics_cpu_memory_connections_and_rps_per_replica(bridge: Engine) -> None:
    name = unique_name("brm")
    doc = demo_app(name)
    doc["spec"]["resources"] = {"memory": "64Mi"}  # memory % needs a limit
    # Every request comes from 127.0.0.1, so ip_hash sends all of them to one replica: any traffic
    # the metrics give another replica is misattributed.
    doc["spec"]["loadBalancing"] = "ip_hash"
    await bridge.register(doc)
    await bridge.up(name)
    await bridge.scale(name, 3)
    await wait_for(lambda: live_is(bridge, name, 3), what="3 ready")
    views = {v.slot: v for v in (await bridge.get_app(name)).replicas}

    # Connections: K slow requests in flight through nginx are K connections to the replica's published
    # port (Docker's proxy holds the other end of each, and its own onward connection is not counted).
    slow = 5
    async with aiohttp.ClientSession() as session:

        async def slow_request() -> str:
            url = lb(bridge, name, "cgi-bin/sleep?ms=4000")
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=20)) as resp:
                return await resp.text()

        pending = [asyncio.create_task(slow_request()) for _ in range(slow)]
        await asyncio.sleep(1.0)
        sample_after = time.time()
        await wait_for(lambda: (bridge.metrics.last_sample_at or 0) > sample_after + 0.5, what="a sample")
        in_flight = bridge.metrics.replica_metrics(name, seconds=1.0)
        bodies = await asyncio.gather(*pending)
    chosen = {replica_of(body) for body in bodies}
    assert len(chosen) == 1, bodies
    busy = int(chosen.pop().rsplit("-", 1)[1])
    others = [slot for slot in views if slot != busy]
    assert slow <= (in_flight[busy].connections or 0) <= slow + 1, in_flight  # +1: a health probe
    for slot in others:
        assert (in_flight[slot].connections or 0) <= 1, in_flight

    # RPS: quick requests through nginx; all of them, and only them, count for the replica that answered.
    async with aiohttp.ClientSession() as session:
        for _ in range(60):
            async with session.get(lb(bridge, name)) as resp:
                assert resp.status == 200 and f"replica={name}-{busy}" in await resp.text()

    async def attributed() -> Any:
        window = bridge.metrics.window(name, 30.0)
        per_replica = bridge.metrics.replica_metrics(name, seconds=30.0)
        busy_rps = per_replica.get(busy) and per_replica[busy].rps
        return (window, per_replica) if busy_rps and window.rps and busy_rps >= 0.99 * window.rps else None

    window, per_replica = await wait_for(attributed, timeout=10, what="requests attributed to the replica")
    assert window.rps is not None and window.rps * window.covered_seconds > 0
    for slot in others:
        assert not per_replica[slot].rps, per_replica

    # CPU and memory per replica from the cgroup files: burn a core in one replica, straight through its
    # published port (not through nginx, so no request is logged for it).
    burner = others[0]
    burn = asyncio.create_task(get_text(f"http://127.0.0.1:{views[burner].port}/cgi-bin/burn?s=4"))

    async def burning() -> Any:
        latest = bridge.metrics.replica_metrics(name, seconds=1.5)
        cpu = {slot: latest[slot].cpu_percent for slot in latest}
        # Attributed to the right replica, not "over 60 %": on two shared cores the burner may get a
        # fifth of one (how much a burn reaches: bench/footprint.py, test_demo_image prints it).
        mine = cpu.get(burner) or 0
        idle = [slot for slot in views if slot != burner]
        return latest if mine > 5 and all(mine > 3 * (cpu.get(s) or 0) + 2 for s in idle) else None

    latest = await wait_for(burning, timeout=10, what="the burning replica's CPU")
    await burn
    shown = {s: m.cpu_percent for s, m in latest.items()}
    print(f"\nCPU % of a core per slot while slot {burner} burned: {shown}")
    for slot in views:
        assert latest[slot].memory_percent is not None and 0 < latest[slot].memory_percent < 100, latest
        if slot != burner:
            assert (latest[slot].cpu_percent or 0) < 30, latest
    sources = bridge.metrics.stats_sources
    assert {sources.get(v.container_id) for v in views.values()} == {"cgroup"}, sources


async def test_bridge_health_check_on_its_own_container_port_is_published_and_probed(bridge: Engine) -> None:
    """healthCheck.port may name a second container port (a management port): in bridge mode it is
    published on 127.0.0.1 too, and the probe goes there, not to the port nginx serves."""
    name = unique_name("brh")
    doc = demo_app(name)
    doc["spec"]["ports"] = [{"containerPort": 8080}, {"containerPort": 9000, "name": "admin"}]
    # The admin server answers /health from its own directory; the app's /health stays in place.
    doc["spec"]["command"] = [
        "sh",
        "-c",
        "mkdir -p /admin && echo ok > /admin/health && httpd -p 0.0.0.0:9000 -h /admin && exec /bin/serve",
    ]
    doc["healthCheck"] = {
        "path": "/health",
        "port": 9000,
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 1,
    }
    await bridge.register(doc)
    await bridge.up(name)
    await wait_for(lambda: ready_is(bridge, name, 1), what="ready through the admin port")
    [replica] = (await bridge.get_app(name)).replicas
    bindings = published(await inspect(replica.container_id))
    assert [b[:2] for b in bindings] == [("8080/tcp", "127.0.0.1"), ("9000/tcp", "127.0.0.1")], bindings
    assert ("8080/tcp", "127.0.0.1", str(replica.port)) in bindings
    admin_port = next(int(b[2]) for b in bindings if b[0] == "9000/tcp")
    assert (await get_text(f"http://127.0.0.1:{admin_port}/health"))[0] == 200

    await docker("exec", replica.container_id, "rm", "/admin/health")
    await wait_for(
        lambda: _health_event(bridge, name, "replica_unhealthy"),
        timeout=15,
        what="unhealthy via the admin port",
    )
    [event] = [e for e in await bridge.events(app=name) if e.kind == "replica_unhealthy"][:1]
    assert f"127.0.0.1:{admin_port} (container port 9000)" in event.message, event.message


async def _health_event(eng: Engine, name: str, kind: str) -> bool:
    return any(e.kind == kind for e in await eng.events(app=name, category="health"))
