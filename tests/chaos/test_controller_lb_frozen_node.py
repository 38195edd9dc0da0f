"""The controller LB with one node frozen (SIGSTOP, a paused VM): reads still answer.

A frozen daemon's listening socket still accepts connections (the kernel queues them), so nginx
connects and then waits for an answer that never comes. With least_conn over idle nodes a third of
the requests went to the frozen node and hung until the client gave up: `orchestry status`, `list`
and the polls of `--wait` through the LB failed one time in three for as long as the node stayed frozen.
"""

from __future__ import annotations

import signal

import pytest

from orchestry_tui.cli.wait import POLL_REQUEST_TIMEOUT_SECONDS
from testkit.daemon_cluster import DaemonCluster, call
from tests.chaos.conftest import restore

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Enough sequential reads that least_conn, choosing among idle nodes in turn, sends several to each.
READS = 6


async def test_reads_through_the_lb_answer_while_a_follower_is_frozen(shared_cluster: DaemonCluster) -> None:
    await restore(shared_cluster)
    leader = await shared_cluster.wait_leader()
    frozen = next(node for node in shared_cluster.nodes if node is not leader)
    base = f"http://{shared_cluster.controller_listen}"
    frozen.send(signal.SIGSTOP)
    try:
        # The CLI's own per-request timeout while it polls (`--wait`): a read that outlasts it is an
        # error on the user's screen.
        answers = [
            await call(f"{base}{path}", timeout=POLL_REQUEST_TIMEOUT_SECONDS)
            for path in ["/api/v1/apps", "/api/v1/cluster/status"] * (READS // 2)
        ]
    finally:
        frozen.send(signal.SIGCONT)
    assert [a.status for a in answers] == [200] * READS, [(a.status, a.error) for a in answers]
    # The frozen node was tried, then passed over: the LB did not just happen to avoid it.
    tried = [a.headers.get("X-Orchestry-Node", "") for a in answers]
    assert any(f"127.0.0.1:{frozen.port}," in t for t in tried), tried
