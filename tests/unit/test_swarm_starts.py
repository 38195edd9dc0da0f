"""Starting slot services on a Swarm: one manager poll for every start in flight (swarm_starts), and
images pinned to the digest their tag names (swarm_images), against a scripted manager API; and task logs
from a node that does not answer."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import docker.errors
import pytest
from docker import APIClient

from core.errors import ContainerStartError
from core.runtime.base import ContainerRequest
from core.runtime.swarm_calls import Starting, TaskLogsUnavailable, task_logs
from core.runtime.swarm_images import ImagePins
from core.runtime.swarm_spec import service_labels, service_spec
from core.runtime.swarm_starts import StartWatch

DIGEST = "sha256:" + "ab" * 32


def request(slot: int, image: str = "reg:5000/demo:1") -> ContainerRequest:
    return ContainerRequest(
        app="web",
        slot=slot,
        name=f"web-{slot}",
        image=image,
        command=None,
        environment={},
        labels={},
        host_port=0,
        container_port=8080,
        network_mode="bridge",
    )


def starting(slot: int) -> Starting:
    """Slot ``slot``'s service (id ``svc<slot>``) as the runtime created it."""
    made = request(slot)
    return Starting(
        made, {"ID": f"svc{slot}", "Spec": {"Name": made.name, "Labels": service_labels(made, None)}}
    )


class Manager:
    """A Swarm manager's API as the runtime's calls see it: each slot service's task runs from the
    poll numbered in ``runs_at``; services in ``removed`` are gone (the manager then refuses a task
    listing that names them, as Docker does)."""

    def __init__(self, runs_at: dict[str, int], errors: dict[str, str] | None = None) -> None:
        self.runs_at = runs_at
        self.errors = errors or {}
        self.removed: set[str] = set()
        self.task_listings = 0
        self.node_listings = 0
        self.resolved: list[str] = []
        self.registry_down = False

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = list(filters["service"])
        if self.removed & set(wanted):
            raise docker.errors.NotFound("service not found")
        self.task_listings += 1
        return [self._task(sid) for sid in wanted]

    def _task(self, sid: str) -> dict[str, Any]:
        status: dict[str, Any] = {"State": "preparing", "Timestamp": "2026-11-29T10:00:00Z"}
        if sid in self.errors:
            status = {"State": "pending", "Err": self.errors[sid]}
        elif self.task_listings >= self.runs_at[sid]:
            port = 32000 + int(sid.removeprefix("svc"))
            binding = {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": port, "PublishMode": "host"}
            status = {
                "State": "running",
                "Timestamp": "2026-11-29T10:00:01Z",
                "PortStatus": {"Ports": [binding]},
            }
        return {
            "ID": f"task-{sid}",
            "ServiceID": sid,
            "NodeID": "n2",
            "DesiredState": "running",
            "Status": status,
        }

    def services(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "ID": sid,
                "Spec": {
                    "Name": f"web-{sid[3:]}",
                    "Labels": {"orchestry.app": "web", "orchestry.slot": sid[3:], "orchestry.port": "8080"},
                },
            }
            for sid in filters["id"]
            if sid not in self.removed
        ]

    def nodes(self) -> list[dict[str, Any]]:
        self.node_listings += 1
        return [{"ID": "n2", "Description": {"Hostname": "node2"}, "Status": {"Addr": "10.0.0.12"}}]

    def inspect_distribution(self, image: str) -> dict[str, Any]:
        self.resolved.append(image)
        if self.registry_down:
            raise docker.errors.APIError("Get https://reg:5000/v2/: connection refused")
        return {"Descriptor": {"digest": DIGEST}}


def runner(manager: Manager) -> Callable[[Callable[[Any], Any]], Any]:
    async def run(work: Callable[[Any], Any]) -> Any:
        await asyncio.sleep(0)  # a call to the manager yields, as the thread pool does
        return work(manager)

    return run


async def test_nine_starts_share_one_manager_poll_and_each_gets_its_node_and_port() -> None:
    manager = Manager({f"svc{slot}": slot for slot in range(2, 11)})  # one more runs at each poll
    watch = StartWatch(runner(manager), interval=0.001)

    infos = await asyncio.gather(*(watch.started(f"svc{slot}", starting(slot)) for slot in range(2, 11)))

    assert [(i.slot, i.host, i.port, i.state) for i in infos] == [
        (slot, "10.0.0.12", 32000 + slot, "running") for slot in range(2, 11)
    ]
    # Nine starts polled separately would have listed tasks nine times per round (~54 listings here),
    # and the nodes at each start found running.
    assert manager.task_listings <= 11
    assert manager.node_listings == 1


async def test_a_service_removed_meanwhile_fails_its_own_start_only() -> None:
    manager = Manager({"svc2": 3, "svc3": 3})
    manager.removed.add("svc3")  # by another program, right after it was created
    watch = StartWatch(runner(manager), interval=0.001)
    first = asyncio.ensure_future(watch.started("svc2", starting(2)))
    second = asyncio.ensure_future(watch.started("svc3", starting(3)))

    info = await first
    with pytest.raises(ContainerStartError, match="'web-3' vanished right after it was created"):
        await second
    assert info.port == 32002


async def test_an_unplaceable_task_fails_its_start_with_swarms_reason_and_the_fix() -> None:
    manager = Manager(
        {"svc2": 1, "svc3": 1}, errors={"svc3": "no suitable node (scheduling constraints not satisfied)"}
    )
    watch = StartWatch(runner(manager), interval=0.001)

    results = await asyncio.gather(
        watch.started("svc2", starting(2)), watch.started("svc3", starting(3)), return_exceptions=True
    )

    assert results[0].port == 32002  # type: ignore[union-attr]
    assert isinstance(results[1], ContainerStartError)
    assert "Swarm cannot place replica 'web-3'" in str(results[1]) and "Fix:" in str(results[1])


async def test_a_start_still_waiting_when_the_runtime_closes_is_told_why() -> None:
    manager = Manager({"svc2": 10_000})
    watch = StartWatch(runner(manager), interval=0.001)
    waiting = asyncio.ensure_future(watch.started("svc2", starting(2)))
    await asyncio.sleep(0.005)

    await watch.close(RuntimeError("the Swarm runtime was closed"))

    with pytest.raises(RuntimeError, match="closed"):
        await waiting


async def test_starts_of_one_burst_pin_the_image_to_one_digest_and_a_later_start_asks_again() -> None:
    manager = Manager({})
    pins = ImagePins(runner(manager))

    burst = await asyncio.gather(*(pins.pinned("reg:5000/demo:1") for _ in range(9)))
    later = await pins.pinned("reg:5000/demo:1")

    assert set(burst) == {later} == {f"reg:5000/demo:1@{DIGEST}"}
    assert manager.resolved == ["reg:5000/demo:1", "reg:5000/demo:1"]
    spec = service_spec(request(2), cluster_id=None, image=later)
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == f"reg:5000/demo:1@{DIGEST}"


async def test_an_image_no_registry_knows_keeps_its_tag_and_a_pinned_one_is_left_alone() -> None:
    manager = Manager({})
    manager.registry_down = True
    pins = ImagePins(runner(manager))

    assert await pins.pinned("local/only:dev") == "local/only:dev"
    assert await pins.pinned(f"reg:5000/demo@{DIGEST}") == f"reg:5000/demo@{DIGEST}"
    assert manager.resolved == ["local/only:dev"]


# --- task logs from a node that does not answer ------------------------------------------------------


class StallingManager:
    """A manager on a local port that answers a logs request with its headers (or nothing) and then
    stalls, as a real manager does for a task whose node is cut off."""

    def __init__(self, send_headers: bool) -> None:
        self.send_headers = send_headers
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.release = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        conn.recv(65536)
        if self.send_headers:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
        self.release.wait(30)
        conn.close()

    def close(self) -> None:
        self.release.set()
        self.server.close()


@pytest.mark.parametrize("send_headers", [True, False], ids=["body stalls", "no answer"])
def test_logs_of_a_task_on_an_unreachable_node_fail_soon_naming_the_node_not_the_manager(
    send_headers: bool,
) -> None:
    manager = StallingManager(send_headers)
    api = APIClient(base_url=manager.url, version="1.41")
    try:
        with pytest.raises(
            TaskLogsUnavailable, match=r"logs of web-2 \(task t123\) within 0.2 s: the node running it"
        ):
            task_logs(api, "t123", "web-2", 3, None, timeout=0.2)
    finally:
        api.close()
        manager.close()
