"""Cost of one stats sample per replica: cgroup files vs the Docker API, as replicas grow.

    .venv/bin/python bench/footprint_sample.py [--replicas 1,5,10] [--rounds 20]

Starts idle demo containers (host network, loopback ports), samples them with StatsSampler (cgroup path)
and with DockerRuntime.stats (the API, in parallel), and prints wall time per sample and per replica.
Figures are printed, not asserted.  Removes every container it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import time
import uuid

import docker

from core.metrics.stats import StatsSampler
from core.runtime.docker import DockerRuntime

IMAGE = "orchestry/demo:latest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(client: docker.DockerClient, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        port = free_port()
        container = client.containers.run(
            IMAGE,
            ["/bin/serve"],
            name=f"bench-sample-{uuid.uuid4().hex[:8]}",
            detach=True,
            init=True,
            network_mode="host",
            environment={"PORT": str(port), "BIND_HOST": "127.0.0.1"},
            labels={"orchestry.bench": "footprint_sample"},
        )
        ids.append(container.id)
    return ids


async def measure(runtime: DockerRuntime, ids: list[str], rounds: int) -> tuple[float, float]:
    sampler = StatsSampler(runtime)
    await sampler.sample(ids)  # warm the path cache and the CPU baseline
    cgroup_times = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = await sampler.sample(ids)
        cgroup_times.append(time.perf_counter() - started)
        assert set(sampler.last_sources.values()) == {"cgroup"} and len(result) == len(ids)
    started = time.perf_counter()
    await runtime.stats(ids)
    api_time = time.perf_counter() - started
    return statistics.median(cgroup_times), api_time


async def main(counts: list[int], rounds: int) -> None:
    client = docker.from_env()
    runtime = DockerRuntime()
    started: list[str] = []
    try:
        header = ("replicas", "cgroup/sample", "cgroup/replica", "api/sample", "api/replica")
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, (8, 14, 15, 11, 12), strict=True)))
        for count in counts:
            started += start(client, count - len(started))
            ids = started[:count]
            cgroup, api = await measure(runtime, ids, rounds)
            print(
                f"{count:>8} {cgroup * 1e3:>11.2f} ms {cgroup / count * 1e6:>12.0f} µs"
                f" {api:>9.2f} s {api / count * 1e3:>9.0f} ms"
            )
    finally:
        for container_id in started:
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(container_id).remove(force=True)
        await runtime.close()
        client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,5,10", help="comma-separated, increasing")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(sorted(int(n) for n in args.replicas.split(",")), args.rounds))
