"""The console attached through the controller LB of a real three-daemon cluster (PostgreSQL).

The cluster pane lists the three controllers; kill -9 the leader and the pane shows the new leader
and the next term, the dead node as down and its term as expired; step-down from the console moves
leadership and the history says "released"; read-only refuses it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from textual.widgets import Button

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.frame import ClusterView
from orchestry_tui.console.http_backend import HttpBackend
from orchestry_tui.console.screens.confirm import ConfirmScreen
from orchestry_tui.console.widgets.cluster_pane import ClusterPane
from orchestry_tui.console.widgets.events_pane import EventsPane
from testkit.daemon_cluster import DaemonCluster
from tests.chaos.conftest import SHARED_TTL, restore
from tests.integration.harness import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

POLL = 0.5
SIZE = (200, 50)
# The lease must expire, a follower must try again (every second at most) and the console refresh:
# the pane shows the change within TTL + 1 s + one refresh; the deadline leaves room for a busy machine.
FAILOVER_DEADLINE = SHARED_TTL * 4 + POLL


def attached(cluster: DaemonCluster, tmp_path: Path, readonly: bool = False) -> OrchestryConsole:
    backend = HttpBackend(f"http://{cluster.controller_listen}", None, tmp_path)
    return OrchestryConsole(backend, readonly=readonly, poll_seconds=POLL)


def events_text(app: OrchestryConsole) -> str:
    return "".join(segment.text for strip in app.query_one(EventsPane).lines for segment in strip)


def squeezed(text: str) -> str:
    """Without white space: the events pane wraps long lines."""
    return "".join(text.split())


def pane(app: OrchestryConsole) -> ClusterView | None:
    return app.query_one(ClusterPane).view


def leader_shown(app: OrchestryConsole) -> tuple[str | None, int | None]:
    view = pane(app)
    return (view.leader_id, view.term) if view else (None, None)


async def test_the_pane_lists_the_three_controllers(shared_cluster: DaemonCluster, tmp_path: Path) -> None:
    await restore(shared_cluster)
    leader = await shared_cluster.wait_leader()
    app = attached(shared_cluster, tmp_path)
    async with app.run_test(size=SIZE):
        await wait_for(lambda: pane(app) and len(pane(app).nodes) >= 3, what="three nodes")  # type: ignore[union-attr]
        view = pane(app)
        assert view is not None
        ids = {n.node_id for n in shared_cluster.nodes}
        live = {n.node_id: n for n in view.nodes if n.node_id in ids}
        assert set(live) == ids
        assert live[leader.node_id].state == "leader" and view.leader_id == leader.node_id
        assert all(n.database == "ok" and n.version for n in live.values())
        assert sorted(n.state for n in live.values()) == ["follower", "follower", "leader"]
        assert {n.api_url for n in live.values()} == {n.url for n in shared_cluster.nodes}
        left = app.query_one(ClusterPane).lease_left()
        assert left is not None and 0 < left <= SHARED_TTL


async def test_kill_9_of_the_leader_shows_the_new_leader_and_term(
    shared_cluster: DaemonCluster, tmp_path: Path
) -> None:
    await restore(shared_cluster)
    old = await shared_cluster.wait_leader()
    app = attached(shared_cluster, tmp_path)
    try:
        async with app.run_test(size=SIZE):
            await wait_for(lambda: leader_shown(app)[0] == old.node_id, what="the leader shown")
            _, term = leader_shown(app)
            assert term is not None
            old.send(signal.SIGKILL)
            killed = time.monotonic()
            await wait_for(
                lambda: leader_shown(app)[0] not in (None, old.node_id) and leader_shown(app)[1] == term + 1,
                timeout=FAILOVER_DEADLINE,
                interval=0.05,
                what="the new leader and term in the pane",
            )
            print(f"\nthe pane showed the new leader {time.monotonic() - killed:.2f} s after kill -9 "
                  f"(lease TTL {SHARED_TTL} s, refresh every {POLL} s)")  # fmt: skip
            new = leader_shown(app)[0]
            assert new == (await shared_cluster.wait_leader(not_in=(old,))).node_id
            history = pane(app).history  # type: ignore[union-attr]
            assert (history[0].term, history[0].ended) == (term + 1, None)
            assert (history[1].term, history[1].leader_id, history[1].ended) == (term, old.node_id, "expired")
            await wait_for(
                lambda: any(n.node_id == old.node_id and n.state == "down" for n in pane(app).nodes),  # type: ignore[union-attr]
                timeout=SHARED_TTL * 3,
                what="the killed node shown down",
            )
            said = f"leader is now {new} (term {term + 1}); was {old.node_id} (term {term})"
            # Said from the header's leadership, which the node that answers it may learn a refresh later.
            await wait_for(lambda: squeezed(said) in squeezed(events_text(app)), what="the change event")
    finally:
        await restore(shared_cluster)


async def test_step_down_from_the_console_moves_leadership(
    shared_cluster: DaemonCluster, tmp_path: Path
) -> None:
    await restore(shared_cluster)
    old = await shared_cluster.wait_leader()
    app = attached(shared_cluster, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: leader_shown(app)[0] == old.node_id, what="the leader shown")
        _, term = leader_shown(app)
        await pilot.press("L")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        assert old.node_id in str(app.screen.query_one("#question").render())
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        app.screen.query_one("#confirm", Button).press()
        await wait_for(
            lambda: leader_shown(app)[0] not in (None, old.node_id),
            timeout=FAILOVER_DEADLINE,
            what="another node leads",
        )
        view = pane(app)
        assert view is not None and view.term is not None and term is not None and view.term > term
        released = next(h for h in view.history if h.term == term)
        assert (released.leader_id, released.ended) == (old.node_id, "released")
        assert old.alive  # it stepped down and follows; it was not killed
        assert (await shared_cluster.wait_leader()).node_id == view.leader_id


async def test_readonly_refuses_step_down(shared_cluster: DaemonCluster, tmp_path: Path) -> None:
    await restore(shared_cluster)
    leader = await shared_cluster.wait_leader()
    app = attached(shared_cluster, tmp_path, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: leader_shown(app)[0] == leader.node_id, what="the leader shown")
        _, term = leader_shown(app)
        await pilot.press("L")
        await pilot.pause(0.5)
        assert len(app.screen_stack) == 1
        assert any("read-only" in n.message for n in app._notifications)
        assert leader_shown(app) == (leader.node_id, term)
        assert (await shared_cluster.wait_leader()).node_id == leader.node_id
