"""`orchestry cluster status` after kill -9 of a follower: the dead node is shown down, not follower."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.daemon_cluster import DaemonCluster, call
from tests.chaos.conftest import restore
from tests.integration.harness import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORCHESTRY = str(Path(sys.executable).parent / "orchestry")


async def test_a_killed_follower_is_down_in_cluster_status(shared_cluster: DaemonCluster) -> None:
    await restore(shared_cluster)
    leader = await shared_cluster.wait_leader()
    dead = next(node for node in shared_cluster.nodes if node is not leader)
    dead.send(signal.SIGKILL)
    status_url = f"{leader.url}/api/v1/cluster/status"

    async def stale() -> bool:
        answer = await call(status_url)
        rows = {n["node_id"]: n for n in answer.body["nodes"]} if answer.status == 200 else {}
        return dead.node_id in rows and not rows[dead.node_id]["is_healthy"]

    try:
        await wait_for(stale, timeout=30, what="the killed node's heartbeat stale")
        rows = {n["node_id"]: n["state"] for n in (await call(status_url)).body["nodes"]}
        assert rows[dead.node_id] == "down", rows
        assert rows[leader.node_id] == "leader", rows

        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")} | {"COLUMNS": "200"}
        shown = await asyncio.to_thread(
            subprocess.run,
            [ORCHESTRY, "--url", leader.url, "cluster", "status"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert shown.returncode == 0, shown.stderr
        row = next(line for line in shown.stdout.splitlines() if f" {dead.node_id} " in line)
        assert " down " in row and " follower " not in row, shown.stdout
    finally:
        await restore(shared_cluster)
