"""The Swarm runtime keeps the newest listing of each app, whichever listing thread finishes first: a
listing of every app begun before an app's own listing, and ended after it, must not put back what the
manager said before (no manager: a fake one answers in the test's threads)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from core.runtime.base import LABEL_APP, LABEL_MANAGED, LABEL_SLOT, ContainerStats
from core.runtime.swarm import SwarmRuntime
from core.runtime.swarm_spec import SwarmNode


class Manager:
    """What a Swarm manager lists now; ``hold_next_services`` makes the next services listing take
    its answer at once and return it only when released (a listing slowed down by a loaded host)."""

    def __init__(self) -> None:
        self.services_now: list[dict[str, Any]] = []
        self.tasks_now: list[dict[str, Any]] = []
        self.holding = False
        self.answered = threading.Event()
        self.release = threading.Event()

    def services(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        answer = list(self.services_now)
        if self.holding:
            self.holding = False
            self.answered.set()
            self.release.wait(timeout=30)
        return answer

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [t for t in self.tasks_now if t["ServiceID"] in filters["service"]]

    def nodes(self) -> list[dict[str, Any]]:
        return [{"ID": "node-1", "Description": {"Hostname": "n1"}}]

    def run_replica(self, app: str, slot: int, task_id: str) -> None:
        service_id = f"svc-{app}-{slot}"
        labels = {LABEL_MANAGED: "true", LABEL_APP: app, LABEL_SLOT: str(slot)}
        self.services_now.append({"ID": service_id, "Spec": {"Name": f"{app}-{slot}", "Labels": labels}})
        self.tasks_now.append(
            {
                "ID": task_id,
                "ServiceID": service_id,
                "NodeID": "node-1",
                "DesiredState": "running",
                "Status": {"State": "running", "ContainerStatus": {"ContainerID": f"ctr-{task_id}"}},
            }
        )


async def test_a_replica_listed_on_its_own_keeps_its_figures_after_an_older_listing_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = SwarmRuntime("unix:///run/no-manager-here.sock")
    manager = Manager()

    async def sample(node: SwarmNode | None, container: str) -> ContainerStats:
        return ContainerStats(container, 12.5, None, 1 << 20, None, None, 0.0)

    monkeypatch.setattr(runtime._node_stats, "sample", sample)
    try:
        await asyncio.to_thread(runtime._snapshot, manager)  # the listing of every app, as it begins
        manager.holding = True
        slow = asyncio.ensure_future(asyncio.to_thread(runtime._snapshot, manager))
        await asyncio.to_thread(manager.answered.wait, 30)  # it has the manager's answer of this moment
        manager.run_replica("web", 1, "task-1")
        await asyncio.to_thread(runtime._snapshot, manager, "web")  # the pass that started it lists web
        manager.release.set()
        await slow  # the older listing of every app ends last
        figures = await runtime.stats(["task-1"])
        assert runtime.stats_gaps == {}
        assert figures["task-1"].cpu_percent_of_core == 12.5
    finally:
        manager.release.set()
        await runtime.close()


async def test_an_app_listing_that_ends_after_a_newer_listing_of_every_app_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = SwarmRuntime("unix:///run/no-manager-here.sock")
    manager = Manager()

    async def sample(node: SwarmNode | None, container: str) -> ContainerStats:
        return ContainerStats(container, 7.0, None, 1 << 20, None, None, 0.0)

    monkeypatch.setattr(runtime._node_stats, "sample", sample)
    try:
        manager.run_replica("web", 1, "task-1")
        await asyncio.to_thread(runtime._snapshot, manager)
        manager.holding = True
        slow = asyncio.ensure_future(asyncio.to_thread(runtime._snapshot, manager, "web"))
        await asyncio.to_thread(manager.answered.wait, 30)  # web's pass has the answer of this moment
        manager.services_now.clear()
        manager.tasks_now.clear()
        manager.run_replica("web", 2, "task-2")  # slot 1 went, slot 2 came
        await asyncio.to_thread(runtime._snapshot, manager)  # the relist of every app
        manager.release.set()
        await slow  # the older listing of web ends last
        figures = await runtime.stats(["task-2"])
        assert runtime.stats_gaps == {}
        assert figures["task-2"].cpu_percent_of_core == 7.0
    finally:
        manager.release.set()
        await runtime.close()
