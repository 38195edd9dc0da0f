"""CPU and memory of many containers at once: cgroup files when local, the Docker API otherwise.

CPU % needs two readings of a cumulative counter.  The cgroup path keeps the previous reading of each
container and reports ``Δcpu_ns / Δwall_ns × 100`` (100 = one core busy) since the previous
``sample``; the first sample of a container therefore has no CPU figure yet: its ContainerStats carries
0.0 and its id is listed in :attr:`StatsSampler.last_without_cpu` so callers can leave it out of
averages.  Memory is valid from the first sample.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from core.metrics.cgroup import CgroupLocator, CgroupReading, read_cgroups
from core.runtime.base import ContainerStats, Runtime

log = logging.getLogger(__name__)


class StatsSampler:
    def __init__(
        self,
        runtime: Runtime,
        locator: CgroupLocator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runtime = runtime
        self._locator = locator or CgroupLocator()
        self._clock = clock
        self._previous: dict[str, CgroupReading] = {}
        self.last_without_cpu: frozenset[str] = frozenset()
        self.last_sources: dict[str, str] = {}  # container id → "cgroup" | "api", for diagnostics

    async def sample(self, container_ids: list[str]) -> dict[str, ContainerStats]:
        """Stats of every container that could be measured; stopped or unknown ones are absent."""
        if not container_ids:
            return {}
        # One thread hop for every container: the reads are microseconds each, the hop is not.
        readings = await asyncio.to_thread(read_cgroups, self._locator, container_ids)
        now = self._clock()
        result: dict[str, ContainerStats] = {}
        without_cpu: set[str] = set()
        for container_id, reading in readings.items():
            stats = self._from_reading(reading, self._previous.get(container_id), now)
            if stats is None:
                without_cpu.add(container_id)
                stats = _stats(reading, 0.0, now)
            result[container_id] = stats
        self._previous = readings  # only containers still sampled: bounded memory
        sources = dict.fromkeys(readings, "cgroup")

        missing = [cid for cid in container_ids if cid not in readings]
        if missing:
            try:
                from_api = await self._runtime.stats(missing)
            except Exception as error:  # the collector must outlive a flaky engine
                log.warning(
                    "container stats from the Docker API failed for %d containers: %s", len(missing), error
                )
                from_api = {}
            result.update(from_api)
            sources.update(dict.fromkeys(from_api, "api"))
        self.last_without_cpu = frozenset(without_cpu)
        self.last_sources = sources
        return result

    @staticmethod
    def _from_reading(
        reading: CgroupReading, previous: CgroupReading | None, now: float
    ) -> ContainerStats | None:
        if previous is None:
            return None
        wall_ns = reading.monotonic_ns - previous.monotonic_ns
        used_ns = reading.cpu_usage_ns - previous.cpu_usage_ns
        if wall_ns <= 0 or used_ns < 0:  # counter reset: the container was recreated under the same id
            return None
        return _stats(reading, used_ns / wall_ns * 100.0, now)


def _stats(reading: CgroupReading, cpu_of_core: float, now: float) -> ContainerStats:
    limit = reading.memory_limit_bytes
    return ContainerStats(
        container_id=reading.container_id,
        cpu_percent_of_core=cpu_of_core,
        cpu_percent_of_limit=cpu_of_core / reading.cpu_limit_cores if reading.cpu_limit_cores else None,
        memory_bytes=reading.memory_bytes,
        memory_limit_bytes=limit,
        memory_percent=reading.memory_bytes / limit * 100.0 if limit else None,
        timestamp=now,
    )
