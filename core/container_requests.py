"""What container a replica is: an app's spec, a slot and the ports the engine chose, turned into a
ContainerRequest (environment with secrets resolved, PORT and $(VAR) expansion, labels, limits).

Pure functions: the reconciler decides when; this module decides what.
"""

from __future__ import annotations

from collections.abc import Callable

from core.runtime.base import (
    LABEL_APP,
    LABEL_MANAGED,
    LABEL_SLOT,
    LABEL_SPEC_HASH,
    LABEL_TERM,
    ContainerRequest,
)
from core.spec import AppSpec


def health_published_apart(spec: AppSpec, network_mode: str) -> bool:
    """Bridge mode with healthCheck.port naming another container port than the one nginx serves:
    that port is published too, and probed there."""
    container = spec.container
    serving = container.ports[0].container_port if container.ports else 8080
    wanted = spec.health_check_port
    return network_mode == "bridge" and wanted is not None and wanted != serving


def container_request(
    app: str,
    spec: AppSpec,
    slot: int,
    port: int,
    health_port: int | None,
    network_mode: str,
    term: int | None,
    resolve_secret: Callable[[str, str], str],
    proven_hashes: set[str],
    container_hash: str | None = None,
) -> ContainerRequest:
    """The container of ``app``'s replica in ``slot``, serving on host ``port`` (``health_port``: where
    a separately published health-check port goes).  ``proven_hashes``: container specs that already
    ran healthy here, whose starts need no immediate-exit check.  ``container_hash``:
    ``spec.container_hash()`` when the caller already has it."""
    container = spec.container
    spec_hash = container_hash or spec.container_hash()
    name = f"{app}-{slot}"
    env: dict[str, str] = {}
    for var in container.environment:
        if var.source == "secret":
            env[var.name] = resolve_secret(var.key or "", var.field or "")
        else:
            env[var.name] = var.value or ""
    container_port = container.ports[0].container_port if container.ports else 8080
    bridge = network_mode == "bridge"
    listen_port = container_port if bridge else port
    env.update(
        {
            "PORT": str(listen_port),
            "BIND_HOST": "0.0.0.0" if bridge else "127.0.0.1",
            "ORCHESTRY_APP": app,
            "ORCHESTRY_REPLICA": name,
            "ORCHESTRY_SLOT": str(slot),
        }
    )
    command = list(container.command or []) + list(container.args or [])
    # Kubernetes-style $(VAR) expansion lets a command bind the port the engine assigned.
    expanded = [expand_vars(part, env) for part in command] if command else None
    return ContainerRequest(
        app=app,
        slot=slot,
        name=name,
        image=container.image,
        command=expanded,
        environment=env,
        labels={
            LABEL_MANAGED: "true",
            LABEL_APP: app,
            LABEL_SLOT: str(slot),
            LABEL_SPEC_HASH: spec_hash,
            LABEL_TERM: str(term or 0),
        },
        host_port=port,
        container_port=container_port if bridge else None,
        health_container_port=spec.health_check_port if health_port is not None else None,
        health_host_port=health_port,
        network_mode=network_mode,
        cpu_millis=container.resources.cpu_millis,
        memory_bytes=container.resources.memory_bytes,
        stop_grace_seconds=container.termination_grace_period_seconds,
        placement_constraints=tuple(container.placement.constraints) if container.placement else (),
        placement_spread=tuple(p.spread for p in container.placement.preferences)
        if container.placement
        else (),
        verify_start=spec_hash not in proven_hashes,
    )


def expand_vars(text: str, env: dict[str, str]) -> str:
    """Replace ``$(NAME)`` with env[NAME]; unknown names stay as written (as Kubernetes does)."""
    out = text
    for key, value in env.items():
        out = out.replace(f"$({key})", value)
    return out
