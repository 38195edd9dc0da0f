"""One container as Docker's two answers describe it (core/runtime/docker_wire.py): the inspect
answer and the list endpoint's summary place it alike (app, slot, spec, where nginx and the health
probe reach it), so a replica does not move between a listing and an inspect."""

from __future__ import annotations

from typing import Any

from core.runtime.base import LABEL_APP, LABEL_HEALTH_PORT, LABEL_PORT, LABEL_SLOT, LABEL_SPEC_HASH
from core.runtime.docker_wire import container_info_from_inspect, container_info_from_summary

LABELS = {
    LABEL_APP: "web",
    LABEL_SLOT: "2",
    LABEL_SPEC_HASH: "abc",
    LABEL_PORT: "24001",
    LABEL_HEALTH_PORT: "9090",
}


def inspect(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": "f" * 64,
        "Name": "/web-2",
        "Config": {"Labels": LABELS},
        "State": state,
        "HostConfig": {
            "PortBindings": {
                "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "24001"}],
                "9090/tcp": [{"HostIp": "127.0.0.1", "HostPort": "24002"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "24003"}],
            }
        },
    }


SUMMARY = {
    "Id": "f" * 64,
    "Names": ["/web-2"],
    "Labels": LABELS,
    "State": "running",
    "Created": 1700000000,
    "Ports": [
        {"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": 24001, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 9090, "PublicPort": 24002, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 24003, "Type": "udp"},
    ],
}


def placed(info: Any) -> tuple[Any, ...]:
    return (
        info.id,
        info.name,
        info.app,
        info.slot,
        info.spec_hash,
        info.host,
        info.port,
        info.labels,
        info.container_port,
        info.health_port,
        info.health_container_port,
    )


def test_inspect_and_summary_place_a_bridge_replica_alike() -> None:
    running = container_info_from_inspect(inspect({"Status": "running", "StartedAt": "2023-11-14T22:13:20Z"}))
    listed = container_info_from_summary(SUMMARY)
    assert placed(running) == placed(listed)
    assert placed(listed)[2:] == ("web", 2, "abc", "127.0.0.1", 24001, LABELS, 8080, 24002, 9090)
    assert (running.state, listed.state) == ("running", "running")
    assert running.started_at == listed.started_at == 1700000000.0


def test_inspect_of_a_stopped_container_keeps_why_it_stopped() -> None:
    stopped = container_info_from_inspect(
        inspect({"Status": "exited", "ExitCode": 137, "OOMKilled": True, "Error": "killed"})
    )
    why = (stopped.state, stopped.exit_code, stopped.oom_killed, stopped.error)
    assert why == ("exited", 137, True, "killed")
    assert placed(stopped)[2:5] == ("web", 2, "abc")


def test_a_summary_leaves_what_only_an_inspect_knows_unset() -> None:
    listed = container_info_from_summary(SUMMARY)
    assert (listed.exit_code, listed.oom_killed, listed.finished_at, listed.error) == (None, False, None, "")
