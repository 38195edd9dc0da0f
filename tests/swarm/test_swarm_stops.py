"""Stopping replicas on the Swarm lab as an operator sees it: ``down`` returns once the replicas no
longer run on their nodes, and ``down --force`` cuts a task's stop grace period short (Swarm itself
cannot; the node's own engine does)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from core.engine import Engine
from core.runtime.swarm_nodes import NODE_LABEL_DOCKER_URL
from tests.integration.harness import wait_for
from tests.swarm.engine_support import app_name, services_of, swarm_app, swarm_engine
from tests.swarm.lab import SwarmLab

# The only way these replicas stop is a SIGKILL when a grace period runs out (the ignore survives exec).
IGNORES_SIGTERM = ["sh", "-c", "trap '' TERM; exec /bin/serve"]
# Far longer than any forced stop and any wait the engine allows for a down (its drain timeout + 120 s):
# a forced down that waited for it would fail with a timeout, one that returned early leaves them running.
LONG_GRACE_SECONDS = 600


def running_on_nodes(lab: SwarmLab, app: str) -> dict[str, list[str]]:
    """Node name → names of the app's containers its own engine says run (what ``docker ps`` shows)."""
    found = {}
    for node in lab.nodes:
        containers = lab.docker(node).containers.list(filters={"label": f"orchestry.app={app}"})
        if containers:
            found[node.name] = [c.name for c in containers]
    return found


def signalled(lab: SwarmLab, app: str, since: float) -> set[str]:
    """The app's containers some engine sent a stop signal to since ``since`` (``kill`` events)."""
    found: set[str] = set()
    for node in lab.nodes:
        filters = {"event": "kill", "label": f"orchestry.app={app}"}
        for event in lab.docker(node).events(since=since, until=time.time(), filters=filters, decode=True):
            found.add(event.get("id", ""))
    return found


@contextlib.contextmanager
def killed_afterwards(lab: SwarmLab, app: str) -> Iterator[None]:
    """Containers that ignore SIGTERM with a long grace would hold the lab's heal for that long when a
    test fails before they stop: kill them on their nodes."""
    try:
        yield
    finally:
        for node in lab.nodes:
            for container in lab.docker(node).containers.list(filters={"label": f"orchestry.app={app}"}):
                with contextlib.suppress(Exception):
                    container.kill()


async def _started(lab: SwarmLab, engine: Engine, replicas: int, grace: int) -> str:
    name = app_name("stop")
    doc = swarm_app(lab, name)
    doc["spec"].update(command=IGNORES_SIGTERM, terminationGracePeriodSeconds=grace)
    await engine.register(doc)
    await engine.up(name)
    await engine.scale(name, replicas)

    async def ready() -> bool:
        view = await engine.get_app(name)
        return view.ready_replicas == replicas == len(view.replicas)

    await wait_for(ready, timeout=90, what=f"{replicas} replicas ready")
    return name


@contextlib.asynccontextmanager
async def _stopping_app(
    lab: SwarmLab, tmp_path: Path, replicas: int, grace: int
) -> AsyncIterator[tuple[Engine, str]]:
    """An engine on the lab with an app of ``replicas`` ready replicas that ignore SIGTERM and have
    ``grace`` seconds to stop; killed on their nodes afterwards, should the test leave them running."""
    async with swarm_engine(lab, tmp_path / "state") as engine:
        name = await _started(lab, engine, replicas, grace=grace)
        with killed_afterwards(lab, name):
            yield engine, name


async def _plain_down_under_way(
    engine: Engine, name: str, under_way: Callable[[], bool], what: str
) -> asyncio.Task[int]:
    """A plain ``down`` started as a task, once ``under_way`` (asked of the lab, off the loop) says its
    stops have begun."""
    plain = asyncio.create_task(engine.down(name))
    await wait_for(lambda: asyncio.to_thread(under_way), timeout=60, what=what)
    return plain


async def test_a_down_returns_once_the_replicas_no_longer_run_on_their_nodes(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    """Removing a slot's service only asks Swarm to stop its task: the task runs out its grace period
    on its node after that, and the down must not say the replicas stopped before they did."""
    async with _stopping_app(swarm_lab, tmp_path, 3, grace=3) as (engine, name):
        await engine.down(name)
        assert running_on_nodes(swarm_lab, name) == {}
        assert services_of(swarm_lab, name) == {}


async def test_a_forced_down_cuts_the_tasks_grace_period_short_on_their_nodes(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    async with _stopping_app(swarm_lab, tmp_path, 3, grace=LONG_GRACE_SECONDS) as (engine, name):
        nodes = {r.node for r in (await engine.get_app(name)).replicas}
        await engine.down(name, force=True)
        assert running_on_nodes(swarm_lab, name) == {}, f"replicas on {nodes} still run"
        events = await engine.events(app=name, category="lifecycle")
        assert any(e.kind == "app_down" and "(forced)" in e.message for e in events)


async def test_a_forced_down_cuts_short_a_plain_down_already_stopping(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    """``down --force`` typed while a plain down waits out the tasks' grace period: they go now."""
    async with _stopping_app(swarm_lab, tmp_path, 2, grace=LONG_GRACE_SECONDS) as (engine, name):
        # The plain down's stops are under way once it removed the services (their tasks still run).
        plain = await _plain_down_under_way(
            engine, name, lambda: not services_of(swarm_lab, name), "the plain down's stops under way"
        )
        assert running_on_nodes(swarm_lab, name), "the tasks stopped before the forced down came"

        forced = await engine.down(name, force=True)

        assert running_on_nodes(swarm_lab, name) == {}
        assert forced == 2, "the forced down did not count the replicas it stopped"
        await asyncio.wait_for(plain, timeout=30)
        events = await engine.events(app=name)
        assert [e.details for e in events if e.kind == "stop_forced"] == [{"replicas": 2}]
        assert [e.message for e in events if e.category == "error"] == []
        view = await engine.get_app(name)
        assert (view.status, view.replicas) == ("stopped", []), view


@contextlib.contextmanager
def without_node_apis(lab: SwarmLab) -> Iterator[None]:
    """Every node without its orchestry.docker-url label (Orchestry knows no node's own engine), put
    back afterwards."""
    taken: dict[str, str] = {}
    try:
        for node in lab.docker().nodes.list():
            spec = node.attrs["Spec"]
            labels = dict(spec.get("Labels") or {})
            if NODE_LABEL_DOCKER_URL in labels:
                taken[node.id] = labels.pop(NODE_LABEL_DOCKER_URL)
                node.update({**spec, "Labels": labels})
        yield
    finally:
        for node_id, url in taken.items():
            node = lab.docker().nodes.get(node_id)
            spec = node.attrs["Spec"]
            node.update({**spec, "Labels": {**(spec.get("Labels") or {}), NODE_LABEL_DOCKER_URL: url}})


async def test_a_forced_down_says_why_a_replica_took_its_grace_when_its_node_cannot_be_asked(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    """Without the node's engine nothing can cut a task's stop short: the down still returns only once
    it stopped, and the replica's stop event says why it took its grace period, with the fix."""
    async with _stopping_app(swarm_lab, tmp_path, 1, grace=4) as (engine, name):
        with without_node_apis(swarm_lab):
            await engine.down(name, force=True)
            assert running_on_nodes(swarm_lab, name) == {}
            events = await engine.events(app=name, category="lifecycle")
            (stopped,) = [e.message for e in events if e.kind == "replica_stopped"]
            assert "not within 2 s" in stopped and "own 4 s grace" in stopped, stopped
            assert "docker node update --label-add orchestry.docker-url=" in stopped, stopped


async def test_a_forced_down_says_a_replica_on_a_lost_node_stops_once_the_node_is_back(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    async with _stopping_app(swarm_lab, tmp_path, 3, grace=LONG_GRACE_SECONDS) as (engine, name):
        replicas = (await engine.get_app(name)).replicas
        lost = next(n for n in swarm_lab.workers if n.netns in {r.node for r in replicas})
        on_lost = {r.name for r in replicas if r.node == lost.netns}
        swarm_lab.cut_link(lost)
        try:
            await engine.down(name, force=True)
        finally:
            swarm_lab.restore_link(lost)
        events = await engine.events(app=name, category="lifecycle")
        notes = {e.message.split()[2]: e.message for e in events if e.kind == "replica_stopped"}
        for replica in on_lost:
            assert "its node is down: Swarm stops it once the node is back" in notes[replica], notes
        assert not any("(" in notes[r] for r in set(notes) - on_lost), notes
        assert set(running_on_nodes(swarm_lab, name)) <= {lost.name}


async def test_the_runtime_still_answers_while_more_replicas_wait_out_their_grace_than_it_has_threads(
    swarm_lab: SwarmLab, tmp_path: Path
) -> None:
    """Each stop waits on the node's engine for its replica to exit: twelve replicas waiting out a
    20 s grace must not hold every thread the runtime lists tasks and nodes with (10)."""
    async with _stopping_app(swarm_lab, tmp_path, 12, grace=20) as (engine, name):
        since = time.time()
        # Ten replicas signalled: as many stops waiting on their nodes as the runtime has threads.
        plain = await _plain_down_under_way(
            engine, name, lambda: len(signalled(swarm_lab, name, since)) >= 10, "the down's stops under way"
        )
        listed = await engine.runtime.nodes()
        assert len(listed) == len(swarm_lab.nodes)
        # Answered while the stops still wait: the replicas (which ignore SIGTERM) still run.
        assert sum(len(c) for c in running_on_nodes(swarm_lab, name).values()) == 12
        await engine.down(name, force=True)
        await asyncio.wait_for(plain, timeout=60)
        assert running_on_nodes(swarm_lab, name) == {}
