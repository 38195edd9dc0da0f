"""A metrics sample over many apps: every app gets its figures, and an app deleted while the sample runs
does not get them back (the sample lets the event loop run between slices of apps)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.metrics.collector import SAMPLE_SLICE_APPS, MetricsCollector, ReplicaTarget
from core.metrics.stats import ContainerStats


class SlowSampler:
    """Container stats that arrive when the test says so."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.last_without_cpu: frozenset[str] = frozenset()
        self.last_sources: dict[str, str] = {}

    async def sample(self, container_ids: list[str]) -> dict[str, ContainerStats]:
        await self.release.wait()
        return {}


def collector(tmp_path: Path, sampler: SlowSampler) -> MetricsCollector:
    return MetricsCollector(
        runtime=None,  # type: ignore[arg-type]
        access_log_path=tmp_path / "access.log",
        clock=lambda: 1_000.0,
        sampler=sampler,  # type: ignore[arg-type]
        count_connections=lambda _ports, _host: {},
    )


async def test_every_app_is_sampled_and_an_app_deleted_meanwhile_stays_gone(tmp_path: Path) -> None:
    sampler = SlowSampler()
    metrics = collector(tmp_path, sampler)
    names = [f"app-{i:03d}" for i in range(2 * SAMPLE_SLICE_APPS + 5)]
    for index, name in enumerate(names):
        metrics.set_targets(name, [ReplicaTarget(1, f"c{index}", "127.0.0.1", 20_000 + index, True)])
    sample = asyncio.create_task(metrics.sample_once())
    await asyncio.sleep(0)  # the sample waits for the stats
    gone = names[-1]  # in the last slice
    metrics.forget(gone)
    sampler.release.set()
    await sample
    assert metrics.windows.apps() == sorted(n for n in names if n != gone)
    assert metrics.windows.bucket_count(gone) == 0
