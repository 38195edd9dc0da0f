"""Docker's answers and our requests, translated: container listings and inspections into
ContainerInfo, events into RuntimeEvent, stats into ContainerStats, log lines into (time, text).

Pure functions of plain data: tested without Docker, shared by the Docker and the Swarm runtimes.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from typing import Any, NamedTuple

from core.runtime.base import (
    LABEL_APP,
    LABEL_HEALTH_PORT,
    LABEL_PORT,
    LABEL_SLOT,
    LABEL_SPEC_HASH,
    ContainerInfo,
    ContainerStats,
    RuntimeEvent,
)

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
REPLICA_HOST = "127.0.0.1"
WATCHED_EVENTS = ("die", "oom", "start", "stop", "destroy", "kill", "health_status")


def resolve_docker_url(docker_url: str | None) -> str:
    """The explicit URL, else ORCHESTRY_DOCKER_URL, else DOCKER_HOST, else the local socket."""
    return (
        docker_url
        or os.environ.get("ORCHESTRY_DOCKER_URL")
        or os.environ.get("DOCKER_HOST")
        or DEFAULT_DOCKER_URL
    )


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_docker_time(text: str | None) -> float | None:
    """Docker's RFC 3339 timestamps (nanosecond fractions) → epoch seconds; the zero time → None."""
    if not text or text.startswith("0001-01-01"):
        return None
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    offset = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(whole + offset).timestamp()
    if fraction:
        seconds += int(fraction) / 10 ** len(fraction)
    return seconds


def split_log_line(raw: str) -> tuple[float, str]:
    """``"<RFC3339Nano> message"`` (docker logs --timestamps) → (epoch, message)."""
    stamp, _, message = raw.partition(" ")
    parsed = parse_docker_time(stamp)
    if parsed is None:  # not a timestamped line: keep the text, date it now
        return time.time(), raw
    return parsed, message


def _slot_of(labels: dict[str, str]) -> int:
    try:
        return int(labels.get(LABEL_SLOT, "0"))
    except ValueError:
        return 0


def _label_port(labels: dict[str, str]) -> int:
    try:
        return int(labels.get(LABEL_PORT, "0"))
    except ValueError:
        return 0


def _published_from_bindings(bindings: dict[str, Any] | None) -> dict[int, int]:
    """Container port → host port of the TCP ports bound on 127.0.0.1, from HostConfig's
    ``PortBindings`` (``{"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "24123"}]}``)."""
    published: dict[int, int] = {}
    for key, entries in (bindings or {}).items():
        number, _, protocol = key.partition("/")
        for entry in entries or []:
            if protocol in ("", "tcp") and entry.get("HostIp") == REPLICA_HOST and entry.get("HostPort"):
                published.setdefault(int(number), int(entry["HostPort"]))
    return published


def _published_from_summary(ports: list[dict[str, Any]] | None) -> dict[int, int]:
    """The same from the list endpoint's ``Ports`` (``[{"IP", "PrivatePort", "PublicPort", "Type"}]``)."""
    published: dict[int, int] = {}
    for entry in ports or []:
        if entry.get("Type", "tcp") == "tcp" and entry.get("IP") == REPLICA_HOST and entry.get("PublicPort"):
            published.setdefault(int(entry["PrivatePort"]), int(entry["PublicPort"]))
    return published


class _Reach(NamedTuple):
    port: int
    container_port: int | None
    health_port: int | None
    health_container_port: int | None


def _ports_of(labels: dict[str, str], published: dict[int, int]) -> _Reach:
    """Where a replica is reached, from what Docker published (bridge) or its label (host).

    With a second published port (the health check's own), the label's host port tells which binding
    nginx serves, and the health-port label which one the probe uses.
    """
    labelled = _label_port(labels)
    if not published:
        return _Reach(labelled, None, None, None)
    serving = next((c for c, h in published.items() if h == labelled), min(published))
    try:
        health = int(labels.get(LABEL_HEALTH_PORT, "0"))
    except ValueError:
        health = 0
    has_health = health in published and health != serving
    if not has_health:
        return _Reach(published[serving], serving, None, None)
    return _Reach(published[serving], serving, published[health], health)


def _placed(
    container_id: str,
    name: str,
    state: str,
    labels: dict[str, str],
    published: dict[int, int],
    *,
    started_at: float | None,
    exit_code: int | None = None,
    oom_killed: bool = False,
    finished_at: float | None = None,
    error: str = "",
) -> ContainerInfo:
    """A container as its labels and published ports place it: the one reading of both answers
    (an inspect and a list summary of one container must not disagree on where it is)."""
    reach = _ports_of(labels, published)
    return ContainerInfo(
        id=container_id,
        name=name.lstrip("/"),
        app=labels.get(LABEL_APP, ""),
        slot=_slot_of(labels),
        spec_hash=labels.get(LABEL_SPEC_HASH, ""),
        state=state,
        host=REPLICA_HOST,
        port=reach.port,
        labels=dict(labels),
        container_port=reach.container_port,
        health_port=reach.health_port,
        health_container_port=reach.health_container_port,
        exit_code=exit_code,
        oom_killed=oom_killed,
        started_at=started_at,
        finished_at=finished_at,
        error=error,
    )


def container_info_from_inspect(data: dict[str, Any]) -> ContainerInfo:
    state = data.get("State") or {}
    status = state.get("Status", "unknown")
    # A bridge replica is reached where Docker actually published it; the label is what was asked for.
    return _placed(
        data["Id"],
        data.get("Name", ""),
        status,
        data.get("Config", {}).get("Labels") or {},
        _published_from_bindings((data.get("HostConfig") or {}).get("PortBindings")),
        exit_code=state.get("ExitCode") if status in ("exited", "dead") else None,
        oom_killed=bool(state.get("OOMKilled", False)),
        started_at=parse_docker_time(state.get("StartedAt")),
        finished_at=parse_docker_time(state.get("FinishedAt")),
        error=state.get("Error", "") or "",
    )


def container_info_from_summary(summary: dict[str, Any]) -> ContainerInfo:
    """A running container from the list endpoint alone (no per-container inspect).

    The list answer lacks the start time, so the creation time stands in for it; a container that is
    not running needs an inspect for its exit code and OOM flag.
    """
    created = summary.get("Created")
    return _placed(
        summary["Id"],
        (summary.get("Names") or [""])[0],
        summary.get("State", "unknown"),
        summary.get("Labels") or {},
        _published_from_summary(summary.get("Ports")),
        started_at=float(created) if isinstance(created, int | float) else None,
    )


def runtime_event_from_docker(raw: dict[str, Any]) -> RuntimeEvent | None:
    """One decoded Docker event → RuntimeEvent; None for anything that is not a watched action."""
    action = str(raw.get("Action") or raw.get("status") or "").split(":", 1)[0].strip()
    if action not in WATCHED_EVENTS:
        return None
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    exit_code = attributes.get("exitCode")
    slot = attributes.get(LABEL_SLOT)
    when = raw.get("timeNano")
    return RuntimeEvent(
        action=action,
        container_id=actor.get("ID") or raw.get("id", ""),
        app=attributes.get(LABEL_APP, ""),
        slot=int(slot) if slot and slot.isdigit() else None,
        time=when / 1e9 if when else float(raw.get("time", time.time())),
        exit_code=int(exit_code) if exit_code is not None and str(exit_code).lstrip("-").isdigit() else None,
    )


def container_stats_from_docker(
    container_id: str, raw: dict[str, Any], nano_cpus: int, memory_limit: int
) -> ContainerStats:
    """A ``stats(stream=False)`` answer (it carries the previous tick in ``precpu_stats``) → figures.

    CPU % of one core = Δcontainer / Δsystem × online CPUs × 100.  Memory excludes the inactive file
    cache, as ``docker stats`` does (cgroup v1 calls it ``total_inactive_file``, v2 ``inactive_file``).
    """
    cpu = raw.get("cpu_stats") or {}
    pre = raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    of_core = cpu_delta / system_delta * online * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0
    of_limit = of_core / (nano_cpus / 1e9) if nano_cpus else None

    memory = raw.get("memory_stats") or {}
    details = memory.get("stats") or {}
    inactive = details.get("total_inactive_file", details.get("inactive_file", 0))
    usage = max(int(memory.get("usage", 0)) - int(inactive), 0)
    limit = memory_limit or None
    return ContainerStats(
        container_id=container_id,
        cpu_percent_of_core=of_core,
        cpu_percent_of_limit=of_limit,
        memory_bytes=usage,
        memory_limit_bytes=limit,
        memory_percent=usage / limit * 100.0 if limit else None,
        timestamp=parse_docker_time(raw.get("read")) or time.time(),
    )
