"""The CLI pointed at a follower of a real three-daemon cluster: a change is refused, and the refusal
says where the leader's API is and that the controller LB finds it, not only the leader's node id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.daemon_cluster import DaemonCluster, call
from tests.chaos.conftest import restore
from tests.conftest import unique_name
from tests.integration.harness import demo_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORCHESTRY = str(Path(sys.executable).parent / "orchestry")


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [ORCHESTRY, "--url", url, *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_a_change_sent_to_a_follower_names_the_leaders_api_and_the_controller_lb(
    shared_cluster: DaemonCluster, tmp_path: Path
) -> None:
    await restore(shared_cluster)
    leader = await shared_cluster.wait_leader()
    follower = next(node for node in shared_cluster.nodes if node is not leader)
    name = unique_name("flw")
    shared_cluster.apps.add(name)
    answer = await call(f"http://{shared_cluster.controller_listen}/api/v1/apps", "POST", demo_app(name))
    assert answer.status in (200, 201), answer

    scaled = cli(follower.url, "scale", name, "2")
    assert scaled.returncode == 1, scaled
    assert scaled.stderr == (
        f"error: Not the leader. Leader is: {leader.node_id}: send changes to the leader's API "
        f"({leader.url}) or to the cluster's controller LB, which finds the leader\n"
    )

    # apply of the app as registered: nothing to register, and starting it is refused the same way.
    spec = tmp_path / "app.json"
    spec.write_text(json.dumps(demo_app(name)))
    applied = cli(follower.url, "apply", str(spec))
    assert applied.returncode == 1, applied
    assert (
        f"already registered but not started: Not the leader. Leader is: {leader.node_id}" in applied.stderr
    )
    assert f"send changes to the leader's API ({leader.url})" in applied.stderr
    assert "Traceback" not in applied.stderr + scaled.stderr
