"""Containers that are not in this host's cgroup tree (a remote engine's, or simulated ones) cost one
listing of each cgroup parent directory per look, not several file probes each: at 1,000 such replicas
the per-container probes, repeated every MISS_RETRY_SECONDS, were most of an idle engine's CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.metrics.cgroup import MISS_RETRY_SECONDS, CgroupLocator, read_cgroups

ABSENT = [f"{i:064x}" for i in range(1000)]


def write_v1(root: Path, container_id: str) -> None:
    files = {
        root / "cpuacct" / "docker" / container_id: {"cpuacct.usage": "5000000000\n"},
        root / "cpu" / "docker" / container_id: {"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n"},
        root / "memory" / "docker" / container_id: {
            "memory.usage_in_bytes": "3000000\n",
            "memory.stat": "total_inactive_file 1000000\n",
            "memory.limit_in_bytes": "9223372036854771712\n",
        },
    }
    for directory, contents in files.items():
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            (directory / name).write_text(text)


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file probe the locator makes (Path.is_file)."""
    seen: list[Path] = []
    original = Path.is_file

    def counting(self: Path) -> bool:
        seen.append(self)
        return original(self)

    monkeypatch.setattr(Path, "is_file", counting)
    return seen


def test_absent_containers_are_missed_without_probing_their_files(tmp_path: Path, probes: list[Path]) -> None:
    local = "a" * 64
    write_v1(tmp_path, local)
    (tmp_path / "cpuacct" / "system.slice").mkdir()
    locator = CgroupLocator(tmp_path, clock=lambda: 1000.0)

    readings = read_cgroups(locator, [*ABSENT, local])

    assert list(readings) == [local]
    assert readings[local].memory_bytes == 2_000_000
    assert len(probes) < 20, f"{len(probes)} file probes for 1,000 absent containers"


def test_a_container_that_appears_later_is_found_at_the_next_retry(tmp_path: Path) -> None:
    now = [1000.0]
    locator = CgroupLocator(tmp_path, clock=lambda: now[0])
    late = "b" * 64
    assert read_cgroups(locator, [late]) == {}
    write_v1(tmp_path, late)
    assert read_cgroups(locator, [late]) == {}, "a miss is not looked for again before the retry time"
    now[0] += MISS_RETRY_SECONDS
    assert list(read_cgroups(locator, [late])) == [late]


def test_unified_layout_absent_containers_cost_no_probes_and_present_ones_are_read(
    tmp_path: Path, probes: list[Path]
) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    local = "c" * 64
    scope = tmp_path / "system.slice" / f"docker-{local}.scope"
    scope.mkdir(parents=True)
    for name, text in {
        "cpu.stat": "usage_usec 1000000\n",
        "memory.current": "50000000\n",
        "memory.stat": "inactive_file 0\n",
        "memory.max": "max\n",
        "cpu.max": "max 100000\n",
    }.items():
        (scope / name).write_text(text)
    locator = CgroupLocator(tmp_path, clock=lambda: 1000.0)

    readings = read_cgroups(locator, [*ABSENT, local])

    assert list(readings) == [local] and readings[local].memory_bytes == 50_000_000
    assert len(probes) < 20, f"{len(probes)} file probes for 1,000 absent containers"
