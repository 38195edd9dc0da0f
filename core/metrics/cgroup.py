"""Read a local container's CPU and memory counters straight from its cgroup files.

Reading a handful of small files takes microseconds, where the Docker stats API waits for the daemon's
next 1 s tick per container (NOTES.md).  Layouts supported:

* cgroup v1, cgroupfs driver: ``<root>/cpuacct/docker/<id>/cpuacct.usage`` and friends
  (also the combined ``cpu,cpuacct`` mount),
* cgroup v1, systemd driver: ``<root>/<controller>/system.slice/docker-<id>.scope/``,
* cgroup v2 (unified): ``<root>/system.slice/docker-<id>.scope/`` or ``<root>/docker/<id>/``.

Everything here blocks on file I/O: call :func:`read_cgroups` through ``asyncio.to_thread``, once for
all containers of a sample.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")

# cgroup v1 reports "no limit" as PAGE_COUNTER_MAX rounded to a page (9223372036854771712); anything
# this large is no limit at all.
UNLIMITED_MEMORY = 1 << 60

# A container not found in the cgroup tree (remote engine, or not started yet) is looked for again only
# after this long, so a remote engine does not cost a directory probe per container per sample.
MISS_RETRY_SECONDS = 10.0


@dataclass(frozen=True)
class CgroupPaths:
    version: int  # 1 or 2
    cpu_usage_dir: Path  # cpuacct (v1) or the unified dir (v2)
    memory_dir: Path
    cpu_quota_dir: Path | None  # cpu controller dir (v1); the unified dir (v2)

    def __post_init__(self) -> None:
        # The files read every sample, as plain strings: joining Paths for each read cost more Python
        # time than the kernel spent producing the files.
        cpu_file = "cpu.stat" if self.version == 2 else "cpuacct.usage"
        memory_file = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        object.__setattr__(self, "cpu_usage_file", os.path.join(self.cpu_usage_dir, cpu_file))
        object.__setattr__(self, "memory_usage_file", os.path.join(self.memory_dir, memory_file))
        object.__setattr__(self, "memory_stat_file", os.path.join(self.memory_dir, "memory.stat"))

    cpu_usage_file: str = field(init=False, repr=False, compare=False)
    memory_usage_file: str = field(init=False, repr=False, compare=False)
    memory_stat_file: str = field(init=False, repr=False, compare=False)


class CgroupReading(NamedTuple):
    """One container's counters at one read (a named tuple: one per replica per sample)."""

    container_id: str
    cpu_usage_ns: int  # cumulative CPU time of every process in the container
    monotonic_ns: int  # when cpu_usage_ns was read
    memory_bytes: int  # usage minus inactive file cache, as `docker stats` shows
    memory_limit_bytes: int | None
    cpu_limit_cores: float | None  # CFS quota / period


def _v1_candidates(root: Path, controller: str, container_id: str) -> list[Path]:
    return [
        root / controller / "docker" / container_id,
        root / controller / "system.slice" / f"docker-{container_id}.scope",
    ]


class CgroupLocator:
    """Finds (and remembers) the cgroup directories of containers on this host."""

    def __init__(self, root: Path = DEFAULT_CGROUP_ROOT, clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self._clock = clock
        self._found: dict[str, CgroupPaths] = {}
        self._missed: dict[str, float] = {}

    @property
    def unified(self) -> bool:
        return (self.root / "cgroup.controllers").is_file()

    def locate(self, container_id: str, present: frozenset[str] | None = None) -> CgroupPaths | None:
        """``present``: the names listed in the cgroup parent directories (:meth:`listed`) when the caller
        looks for many containers at once; a container whose directory is not among them is a miss
        without probing its files."""
        found = self._found.get(container_id)
        if found is not None:
            return found
        missed_at = self._missed.get(container_id)
        if missed_at is not None and self._clock() - missed_at < MISS_RETRY_SECONDS:
            return None
        if present is not None and not _listed_in(container_id, present):
            paths = None
        else:
            paths = self._search(container_id)
        if paths is None:
            self._missed[container_id] = self._clock()
        else:
            self._missed.pop(container_id, None)
            self._found[container_id] = paths
        return paths

    def due(self, container_ids: Iterable[str]) -> bool:
        """Whether any of these containers would be looked for now (not found yet, no recent miss)."""
        now = self._clock()
        for container_id in container_ids:
            if container_id in self._found:
                continue
            missed_at = self._missed.get(container_id)
            if missed_at is None or now - missed_at >= MISS_RETRY_SECONDS:
                return True
        return False

    def listed(self) -> frozenset[str]:
        """Every name in the directories where container cgroups live: one directory listing each,
        where probing files costs several stat calls per container (a remote engine's thousand
        replicas, looked for again every MISS_RETRY_SECONDS, were most of an idle engine's CPU)."""
        if self.unified:
            parents = [self.root / "system.slice", self.root / "docker"]
        else:
            parents = [
                self.root / controller / group
                for controller in ("cpuacct", "cpu,cpuacct")
                for group in ("docker", "system.slice")
            ]
        names: set[str] = set()
        for parent in parents:
            try:
                names.update(os.listdir(parent))
            except OSError:
                continue  # this layout is not used on this host
        return frozenset(names)

    def forget(self, container_id: str) -> None:
        self._found.pop(container_id, None)

    def retain(self, container_ids: Iterable[str]) -> None:
        """Drop what is remembered about containers no longer sampled (bounded memory)."""
        keep = set(container_ids)
        for cache in (self._found, self._missed):
            for cid in [c for c in cache if c not in keep]:
                del cache[cid]

    def _search(self, container_id: str) -> CgroupPaths | None:
        if self.unified:
            for directory in (
                self.root / "system.slice" / f"docker-{container_id}.scope",
                self.root / "docker" / container_id,
            ):
                if (directory / "cpu.stat").is_file():
                    return CgroupPaths(2, directory, directory, directory)
            return None
        usage_dir = _first_with(
            [
                *_v1_candidates(self.root, "cpuacct", container_id),
                *_v1_candidates(self.root, "cpu,cpuacct", container_id),
            ],
            "cpuacct.usage",
        )
        memory_dir = _first_with(_v1_candidates(self.root, "memory", container_id), "memory.usage_in_bytes")
        if usage_dir is None or memory_dir is None:
            return None
        quota_dir = _first_with(
            [
                *_v1_candidates(self.root, "cpu", container_id),
                *_v1_candidates(self.root, "cpu,cpuacct", container_id),
            ],
            "cpu.cfs_quota_us",
        )
        return CgroupPaths(1, usage_dir, memory_dir, quota_dir)


def _listed_in(container_id: str, names: frozenset[str]) -> bool:
    """Whether the container's cgroup directory is among ``names``, in any supported layout."""
    return container_id in names or f"docker-{container_id}.scope" in names


def _first_with(directories: list[Path], file_name: str) -> Path | None:
    for directory in directories:
        if (directory / file_name).is_file():
            return directory
    return None


def _read_text(path: Path | str) -> str:
    # os.open/os.read: pathlib's read_text costs ~100 µs of Python overhead per file, several times the
    # kernel's own work for these tiny files, and a sample reads six files per replica.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _read_int(path: Path | str) -> int:
    return int(_read_text(path).strip())


def _stat_value(text: str, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed cgroup file ("name value" per line)."""
    # A search instead of splitting every line: memory.stat has ~40 lines and only one is wanted.
    prefix = key + " "
    if text.startswith(prefix):
        start = len(prefix)
    else:
        at = text.find("\n" + prefix)
        if at < 0:
            return None
        start = at + 1 + len(prefix)
    end = text.find("\n", start)
    return int(text[start:] if end < 0 else text[start:end])


# Limits change only with `docker update`; re-reading three files per replica per sample was a third of
# the idle sampling cost at 100 replicas, so they are read at most once a minute per container.
LIMITS_TTL_SECONDS = 60.0
_limits_cache: dict[Path, tuple[float, int, float | None]] = {}


def _v1_limits(paths: CgroupPaths) -> tuple[int, float | None]:
    now = time.monotonic()
    cached = _limits_cache.get(paths.memory_dir)
    if cached is not None and now - cached[0] < LIMITS_TTL_SECONDS:
        return cached[1], cached[2]
    limit = _read_int(paths.memory_dir / "memory.limit_in_bytes")
    cores = None
    if paths.cpu_quota_dir is not None:
        quota = _read_int(paths.cpu_quota_dir / "cpu.cfs_quota_us")
        period = _read_int(paths.cpu_quota_dir / "cpu.cfs_period_us")
        if quota > 0 and period > 0:
            cores = quota / period
    if len(_limits_cache) > 10_000:
        _limits_cache.clear()  # bounded: entries of removed containers go away here
    _limits_cache[paths.memory_dir] = (now, limit, cores)
    return limit, cores


def read_cgroup(container_id: str, paths: CgroupPaths) -> CgroupReading:
    """Raises OSError/ValueError when the container went away mid-read."""
    if paths.version == 2:
        return _read_v2(container_id, paths)
    monotonic_ns = time.monotonic_ns()
    usage_ns = _read_int(paths.cpu_usage_file)
    usage = _read_int(paths.memory_usage_file)
    inactive = _stat_value(_read_text(paths.memory_stat_file), "total_inactive_file") or 0
    limit, cores = _v1_limits(paths)
    return CgroupReading(
        container_id=container_id,
        cpu_usage_ns=usage_ns,
        monotonic_ns=monotonic_ns,
        memory_bytes=usage - inactive if inactive < usage else usage,
        memory_limit_bytes=limit if 0 < limit < UNLIMITED_MEMORY else None,
        cpu_limit_cores=cores,
    )


def _read_v2(container_id: str, paths: CgroupPaths) -> CgroupReading:
    directory = paths.cpu_usage_dir
    monotonic_ns = time.monotonic_ns()
    usage_usec = _stat_value(_read_text(paths.cpu_usage_file), "usage_usec") or 0
    usage = _read_int(paths.memory_usage_file)
    inactive = _stat_value(_read_text(paths.memory_stat_file), "inactive_file") or 0
    raw_limit = _read_text(directory / "memory.max").strip()
    limit = None if raw_limit == "max" else int(raw_limit)
    cores = None
    quota_text = _read_text(directory / "cpu.max").split()
    if len(quota_text) == 2 and quota_text[0] != "max" and int(quota_text[1]) > 0:
        cores = int(quota_text[0]) / int(quota_text[1])
    return CgroupReading(
        container_id=container_id,
        cpu_usage_ns=usage_usec * 1000,
        monotonic_ns=monotonic_ns,
        memory_bytes=usage - inactive if inactive < usage else usage,
        memory_limit_bytes=limit if limit is not None and 0 < limit < UNLIMITED_MEMORY else None,
        cpu_limit_cores=cores,
    )


def read_cgroups(locator: CgroupLocator, container_ids: Iterable[str]) -> dict[str, CgroupReading]:
    """Readings of the containers found in the local cgroup tree; the others are simply absent."""
    container_ids = list(container_ids)
    locator.retain(container_ids)
    readings: dict[str, CgroupReading] = {}
    present = locator.listed() if locator.due(container_ids) else None
    for container_id in container_ids:
        paths = locator.locate(container_id, present)
        if paths is None:
            continue
        try:
            readings[container_id] = read_cgroup(container_id, paths)
        except (OSError, ValueError):
            locator.forget(container_id)  # removed between locate and read
    return readings
