"""Blocking calls on one Docker API client, each run in the runtime's bounded thread pool: reads
that tolerate a vanished container, log reads, stats samples, the bridge network, error texts."""

from __future__ import annotations

import logging
import re
from typing import Any

import docker
import docker.errors
from docker import APIClient

from core.errors import ContainerStartError, NotFound
from core.runtime.base import (
    LABEL_MANAGED,
    ContainerInfo,
    ContainerRequest,
    ContainerStats,
    LogLine,
)
from core.runtime.docker_wire import (
    container_info_from_inspect,
    container_stats_from_docker,
    parse_docker_time,
    split_log_line,
)

log = logging.getLogger(__name__)


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's text: 'No such file or directory' beats three layers of wrapping."""
    seen = exc
    for _ in range(20):  # bounded: a chain could in principle loop
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
    text = str(seen) or type(seen).__name__
    return text if len(text) < 300 else text[:300] + "…"


def _explanation(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc)


class _NetworkChanged(Exception):
    """The bridge network this process knew was removed, or got a namesake, behind its back."""


# Docker's two ways of saying a published port is taken: by another program (the userland proxy could
# not bind it) or by another container (its own port allocator).
_PORT_TAKEN = re.compile(r"address already in use|port is already allocated", re.IGNORECASE)


def _taken_port(explanation: str, request: ContainerRequest) -> int:
    """Which of the request's published ports Docker could not bind (its message names it)."""
    named = {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", explanation)}
    if request.health_host_port is not None and request.health_host_port in named - {request.host_port}:
        return request.health_host_port
    return request.host_port


def _networks_named(api: APIClient, name: str) -> list[dict[str, Any]]:
    """Networks named exactly ``name``: Docker's name filter also matches names that merely contain it."""
    return [n for n in api.networks(names=[name]) if n.get("Name") == name]


def _managed(networks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in networks if (n.get("Labels") or {}).get(LABEL_MANAGED) == "true"]


def _image_present(api: APIClient, image: str) -> bool:
    try:
        api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.NotFound:
        return False
    return True


def _inspect_raw_or_none(api: APIClient, container_id: str) -> dict[str, Any] | None:
    try:
        return api.inspect_container(container_id)
    except docker.errors.NotFound:
        return None


def _inspect_or_none(api: APIClient, container_id: str) -> ContainerInfo | None:
    raw = _inspect_raw_or_none(api, container_id)
    return None if raw is None else container_info_from_inspect(raw)


def _remove_quietly(api: APIClient, container_id: str) -> None:
    try:
        api.remove_container(container_id, v=True, force=True)
    except docker.errors.APIError:
        log.debug("removing container %s failed", container_id, exc_info=True)


def _tail_text(api: APIClient, container_id: str, lines: int) -> str:
    try:
        output = api.logs(container_id, stdout=True, stderr=True, tail=lines)
    except docker.errors.APIError:
        return ""
    return " / ".join(line.strip() for line in output.decode(errors="replace").splitlines() if line.strip())


def _read_logs(
    api: APIClient, container_id: str, tail: int | None, since: float | None, until: float | None
) -> list[LogLine]:
    raw = _inspect_raw_or_none(api, container_id)
    if raw is None:
        raise NotFound(
            f"container {container_id[:12]} does not exist: list the app's replicas for current ids"
        )
    name = raw.get("Name", "").lstrip("/")
    options: dict[str, Any] = {"timestamps": True, "tail": tail if tail is not None else "all"}
    if since:
        options["since"] = float(since)
    if until:
        options["until"] = float(until)
    lines: list[LogLine] = []
    # Asked per stream because the SDK merges stdout and stderr into one text otherwise.
    for stream_name in ("stdout", "stderr"):
        output = api.logs(
            raw["Id"], stdout=stream_name == "stdout", stderr=stream_name == "stderr", stream=False, **options
        )
        for text in output.decode(errors="replace").splitlines():
            if text:
                stamp, message = split_log_line(text)
                lines.append(LogLine(stamp, raw["Id"], name, message, stream_name))
    lines.sort(key=lambda line: line.timestamp)
    return lines[-tail:] if tail else lines


def _sample_stats(api: APIClient, container_id: str) -> ContainerStats | None:
    raw_info = _inspect_raw_or_none(api, container_id)
    if raw_info is None or not (raw_info.get("State") or {}).get("Running"):
        return None
    host_config = raw_info.get("HostConfig") or {}
    try:
        raw = api.stats(raw_info["Id"], stream=False)
    except docker.errors.NotFound:
        return None
    return container_stats_from_docker(
        container_id, raw, int(host_config.get("NanoCpus") or 0), int(host_config.get("Memory") or 0)
    )


def find_or_create_network(api: APIClient, name: str) -> str:
    """The id of the managed bridge network ``name``, created when missing; duplicates settled."""
    found = _networks_named(api, name)
    if found and not _managed(found):
        raise ContainerStartError(
            f"a Docker network named '{name}' exists but Orchestry did not create it (it lacks the "
            f"label {LABEL_MANAGED}=true), so bridge-mode replicas will not join it: remove or "
            f"rename it (docker network rm {name}), or use host networking (ORCHESTRY_NETWORK_MODE=host)"
        )
    if not found:
        try:
            created = api.create_network(
                name, driver="bridge", labels={LABEL_MANAGED: "true"}, check_duplicate=True
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: another controller created it a moment ago
                raise ContainerStartError(
                    f"the Docker network '{name}' for bridge-mode replicas could not be created: "
                    f"{_explanation(exc)}. Free an address pool (docker network prune) or use "
                    f"host networking (ORCHESTRY_NETWORK_MODE=host)"
                ) from exc
        else:
            log.info("created the Docker network '%s' (%s)", name, str(created.get("Id"))[:12])
        found = _networks_named(api, name)
    managed = _managed(found)
    if not managed:
        raise ContainerStartError(
            f"the Docker network '{name}' vanished right after it was created: another program "
            f"removes it; stop that, or use host networking (ORCHESTRY_NETWORK_MODE=host)"
        )
    # Docker's duplicate check is best effort: two controllers creating at once can both succeed,
    # and then Docker refuses to start any container on the name ("is ambiguous").  Every controller
    # settles on the oldest and removes the other managed ones; Docker refuses to remove a network
    # that has containers, so one in use is never taken away.
    managed.sort(key=lambda n: (parse_docker_time(n.get("Created")) or 0.0, n["Id"]))
    for duplicate in managed[1:]:
        try:
            api.remove_network(duplicate["Id"])
            log.info("removed a duplicate of the Docker network '%s' (%s)", name, duplicate["Id"][:12])
        except docker.errors.APIError as exc:
            log.warning("the Docker network '%s' has a duplicate that stays: %s", name, _explanation(exc))
    return str(managed[0]["Id"])
