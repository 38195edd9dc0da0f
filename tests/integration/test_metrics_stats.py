"""StatsSampler and MetricsCollector on real demo containers (host network, real cgroups, real Docker API)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from core.metrics.cgroup import CgroupLocator
from core.metrics.collector import MetricsCollector, ReplicaTarget
from core.metrics.stats import StatsSampler
from core.runtime.docker import DockerRuntime
from testkit.harness import free_port
from tests.conftest import DEMO_IMAGE, unique_name

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Replica:
    container_id: str
    port: int


def wait_until_serving(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.05)
    raise AssertionError(f"demo replica on port {port} did not answer /health within {timeout} s")


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def start_replica(docker_client: docker.DockerClient) -> Iterator:
    started: list[str] = []

    def start(cpus: float | None = None, memory: str | None = None) -> Replica:
        port = free_port()
        container = docker_client.containers.run(
            DEMO_IMAGE,
            ["/bin/serve"],
            name=unique_name("metrics"),
            detach=True,
            init=True,
            network_mode="host",
            environment={"PORT": str(port), "BIND_HOST": "127.0.0.1"},
            labels={"orchestry.test": "metrics-stats"},
            nano_cpus=int(cpus * 1e9) if cpus else None,
            mem_limit=memory,
        )
        started.append(container.id)
        wait_until_serving(port)
        return Replica(container.id, port)

    yield start
    for container_id in started:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(container_id).remove(force=True)


@pytest.fixture
async def runtime() -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime()
    yield rt
    await rt.close()


def burn(port: int, seconds: int) -> threading.Thread:
    """Ask one replica to keep a core busy for ``seconds`` (the request returns when it is done)."""

    def request() -> None:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(
                f"http://127.0.0.1:{port}/cgi-bin/burn?s={seconds}", timeout=seconds + 10
            ).read()

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    return thread


async def test_burning_replica_shows_its_cpu_and_idle_one_stays_low(
    start_replica, runtime: DockerRuntime
) -> None:
    busy, idle = start_replica(), start_replica()
    sampler = StatsSampler(runtime)
    first = await sampler.sample([busy.container_id, idle.container_id])
    assert set(first) == {busy.container_id, idle.container_id}
    assert sampler.last_without_cpu == {busy.container_id, idle.container_id}  # no delta yet
    assert all(s.memory_bytes > 0 for s in first.values())
    assert sampler.last_sources == dict.fromkeys(first, "cgroup")

    thread = burn(busy.port, 3)
    await asyncio.sleep(0.5)
    await sampler.sample([busy.container_id, idle.container_id])
    await asyncio.sleep(1.5)
    stats = await sampler.sample([busy.container_id, idle.container_id])
    thread.join()

    assert sampler.last_without_cpu == frozenset()
    # On an idle host the burner reaches ~100 % of a core; other test runs share these 2 cores and can
    # leave it a tenth of one (load average 10 measured), so the claim is relative to the idle replica.
    busy_cpu, idle_cpu = (stats[r.container_id].cpu_percent_of_core for r in (busy, idle))
    print(f"\nCPU % of a core: burning {busy_cpu:.1f}, idle {idle_cpu:.1f}")
    assert busy_cpu > 10 * (idle_cpu + 0.5)
    assert idle_cpu < 5
    assert stats[busy.container_id].cpu_percent_of_limit is None  # no CPU limit set


async def test_cpu_limit_and_memory_limit_are_reported_as_percent_of_limit(
    start_replica, runtime: DockerRuntime
) -> None:
    replica = start_replica(cpus=0.5, memory="64m")
    sampler = StatsSampler(runtime)
    await sampler.sample([replica.container_id])
    thread = burn(replica.port, 3)
    await asyncio.sleep(0.5)
    await sampler.sample([replica.container_id])
    await asyncio.sleep(1.5)
    stats = (await sampler.sample([replica.container_id]))[replica.container_id]
    thread.join()
    # The CFS quota holds it at half a core (less when other runs compete for the host's 2 cores).
    print(f"\nCPU % of a core under a half-core quota: {stats.cpu_percent_of_core:.1f}")
    assert 0 < stats.cpu_percent_of_core < 60
    assert stats.cpu_percent_of_limit == pytest.approx(stats.cpu_percent_of_core * 2)
    assert stats.memory_limit_bytes == 64 * 1024 * 1024
    assert stats.memory_percent is not None and 0 < stats.memory_percent < 100


async def test_cgroup_figures_agree_with_the_docker_api(start_replica, runtime: DockerRuntime) -> None:
    # Held at half a core by its quota, the burner's CPU stays steady enough to compare two sources
    # whose measurement intervals differ slightly.
    replica = start_replica(cpus=0.5, memory="64m")
    sampler = StatsSampler(runtime)
    thread = burn(replica.port, 5)
    await asyncio.sleep(0.5)
    await sampler.sample([replica.container_id])
    from_api = (await runtime.stats([replica.container_id]))[replica.container_id]  # spans ~1-2 s
    from_cgroup = (await sampler.sample([replica.container_id]))[replica.container_id]
    thread.join()
    assert abs(from_cgroup.cpu_percent_of_core - from_api.cpu_percent_of_core) < 20
    assert from_cgroup.cpu_percent_of_core > 0
    assert from_cgroup.memory_limit_bytes == from_api.memory_limit_bytes
    assert abs(from_cgroup.memory_bytes - from_api.memory_bytes) < max(1 << 20, from_api.memory_bytes * 0.25)


async def test_falls_back_to_the_docker_api_when_no_cgroup_files_are_found(
    start_replica, runtime: DockerRuntime, tmp_path: Path
) -> None:
    replica = start_replica()
    sampler = StatsSampler(runtime, locator=CgroupLocator(tmp_path))  # an empty tree: "remote engine"
    stats = await sampler.sample([replica.container_id, "0" * 64])
    assert set(stats) == {replica.container_id}  # an unknown container is simply absent
    assert sampler.last_sources == {replica.container_id: "api"}
    assert stats[replica.container_id].memory_bytes > 0


async def test_sampling_many_replicas_reads_each_from_its_cgroup(
    start_replica, runtime: DockerRuntime
) -> None:
    replicas = [start_replica() for _ in range(6)]
    sampler = StatsSampler(runtime)
    ids = [r.container_id for r in replicas]
    await sampler.sample(ids)
    stats = await sampler.sample(ids)
    assert set(stats) == set(ids)
    # Every replica read from its cgroup files, none through the API's one-second tick (the cost of
    # each: bench/footprint.py).
    assert sampler.last_sources == dict.fromkeys(ids, "cgroup"), sampler.last_sources


async def test_collector_combines_stats_access_log_and_connections(
    start_replica, runtime: DockerRuntime, tmp_path: Path
) -> None:
    """Traffic from nginx's log lands on the right app and replica; CPU comes from the containers."""
    web_a, web_b, other = start_replica(), start_replica(), start_replica()
    log_path = tmp_path / "access.log"
    collector = MetricsCollector(runtime, log_path, interval=0.5)
    collector.set_targets(
        "web",
        [
            ReplicaTarget(1, web_a.container_id, "127.0.0.1", web_a.port, True),
            ReplicaTarget(2, web_b.container_id, "127.0.0.1", web_b.port, True),
        ],
    )
    collector.set_targets("other", [ReplicaTarget(1, other.container_id, "127.0.0.1", other.port, True)])
    await collector.sample_once()
    assert collector.window("web", 60).rps is None  # no log file yet: no traffic source

    now = time.time()
    lines = []
    for i in range(40):  # 3 of 4 answered by slot 1, the rest by slot 2 after a retry from slot 1
        upstream = f"127.0.0.1:{web_a.port}" if i % 4 else f"127.0.0.1:{web_a.port}, 127.0.0.1:{web_b.port}"
        lines.append(
            f'{{"t":{now - 1 + i / 100:.3f},"app":"web","status":200,"rt":0.020,"ua":"{upstream}",'
            f'"us":"200","urt":"0.015","m":"GET","bytes":10}}'
        )
    # Another app's request sent to a port of "web" must not count for "web" nor for its replica.
    lines.append(
        f'{{"t":{now:.3f},"app":"other","status":500,"rt":0.5,"ua":"127.0.0.1:{web_a.port}",'
        f'"us":"500","urt":"0.5","m":"GET","bytes":0}}'
    )
    lines.append(
        f'{{"t":{now:.3f},"app":"","status":404,"rt":0.0,"ua":"-","us":"-","urt":"-","m":"GET","bytes":0}}'
    )
    log_path.write_text("\n".join(lines) + "\n")

    thread = burn(web_a.port, 3)
    await asyncio.sleep(0.5)
    await collector.sample_once()
    await asyncio.sleep(1.0)
    await collector.sample_once()
    thread.join()

    web = collector.window("web", 60)
    assert web.rps is not None and web.rps > 0
    assert web.p95_latency_ms == 20.0 and web.error_rate == 0.0
    assert web.ready_replicas == 2 and web.samples == 3
    assert web.cpu_percent is not None and web.cpu_percent > 5  # slot 1 burned a core, slot 2 idle
    assert web.active_connections is not None  # counted from /proc/net/tcp (0 or more)
    replicas = collector.replica_metrics("web", seconds=60)
    assert replicas[1].rps is not None and replicas[2].rps is not None
    assert replicas[1].rps == pytest.approx(3 * replicas[2].rps)
    assert replicas[1].cpu_percent is not None and replicas[1].cpu_percent > replicas[2].cpu_percent  # type: ignore[operator]

    other_window = collector.window("other", 60)
    assert other_window.error_rate == 1.0 and other_window.p95_latency_ms == 500.0
    assert collector.replica_metrics("other", seconds=60)[1].rps == 0.0

    cpu_points = collector.series("web", "cpu_percent", 60)
    assert len(cpu_points) >= 2


async def test_simulated_samples_override_measured_ones_for_a_while(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    clock = [1_700_000_000.0]
    collector = MetricsCollector(runtime, tmp_path / "access.log", clock=lambda: clock[0])
    accepted = collector.add_simulated(
        "web", {"rps": 300, "cpuPercent": 90.0, "healthyReplicas": 3}, hold_seconds=60
    )
    assert accepted == {"rps": 300.0, "cpuPercent": 90.0, "healthyReplicas": 3.0}
    window = collector.window("web", 60)
    assert (window.rps, window.cpu_percent, window.ready_replicas) == (300.0, 90.0, 3)
    assert window.covered_seconds == 60  # enough for the scaler at once
    clock[0] += 61
    assert collector.window("web", 60).rps is None  # expired: back to measured (nothing measured)


# -- other cgroup layouts, as files on disk (this host is cgroup v1 + cgroupfs) ---------------------


def write_files(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


class NoRuntime:
    async def stats(self, container_ids: list[str]) -> dict:
        raise AssertionError("the cgroup files were there: the API must not be asked")


async def test_cgroup_v2_systemd_layout_is_read(tmp_path: Path) -> None:
    container_id = "c" * 64
    scope = tmp_path / "system.slice" / f"docker-{container_id}.scope"
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    files = {
        "cpu.stat": "usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\n",
        "memory.current": str(50 * 1024 * 1024),
        "memory.stat": "anon 1000\nfile 2000\ninactive_file 10485760\nactive_file 0\n",
        "memory.max": str(100 * 1024 * 1024),
        "cpu.max": "50000 100000\n",
    }
    write_files(scope, files)
    sampler = StatsSampler(NoRuntime(), locator=CgroupLocator(tmp_path))  # type: ignore[arg-type]
    first = (await sampler.sample([container_id]))[container_id]
    assert first.memory_bytes == 40 * 1024 * 1024 and first.memory_percent == pytest.approx(40.0)
    assert sampler.last_without_cpu == {container_id}
    await asyncio.sleep(0.2)
    (scope / "cpu.stat").write_text("usage_usec 1100000\n")  # +0.1 s of CPU in ~0.2 s
    second = (await sampler.sample([container_id]))[container_id]
    assert 0 < second.cpu_percent_of_core <= 50.5  # 0.1 s of CPU over at least 0.2 s of wall time
    assert second.cpu_percent_of_limit == pytest.approx(second.cpu_percent_of_core * 2)


async def test_cgroup_v1_systemd_layout_without_limits_is_read(tmp_path: Path) -> None:
    container_id = "d" * 64
    scope = f"docker-{container_id}.scope"
    write_files(tmp_path / "cpuacct" / "system.slice" / scope, {"cpuacct.usage": "5000000000\n"})
    write_files(
        tmp_path / "cpu" / "system.slice" / scope,
        {"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n"},
    )
    write_files(
        tmp_path / "memory" / "system.slice" / scope,
        {
            "memory.usage_in_bytes": "3000000\n",
            "memory.stat": "cache 0\ntotal_inactive_file 1000000\n",
            "memory.limit_in_bytes": "9223372036854771712\n",  # "no limit" in cgroup v1
        },
    )
    sampler = StatsSampler(NoRuntime(), locator=CgroupLocator(tmp_path))  # type: ignore[arg-type]
    stats = (await sampler.sample([container_id]))[container_id]
    assert stats.memory_bytes == 2_000_000
    assert stats.memory_limit_bytes is None and stats.memory_percent is None
    assert stats.cpu_percent_of_limit is None
