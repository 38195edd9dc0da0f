"""core.runtime.swarm_nodes against the real lab: the nodes as the operator sees them, availability."""

from __future__ import annotations

import subprocess
import uuid

from docker import APIClient

from core.runtime.base import LABEL_CLUSTER, LABEL_MANAGED
from core.runtime.swarm_nodes import NodeApiProbe, list_nodes, set_availability
from tests.swarm.lab import SwarmLab
from tests.swarm.test_lab import wait_for


def test_nodes_with_capacity_our_tasks_and_an_unreachable_node_api(swarm_lab: SwarmLab) -> None:
    api = APIClient(base_url=swarm_lab.manager_url)
    cluster = f"c-{uuid.uuid4().hex[:6]}"
    name = f"nodes-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        ["docker", "-H", swarm_lab.manager_url, "service", "create", "--detach", "--quiet", "--name", name,
         "--replicas", "3", "--init",
         "--label", f"{LABEL_MANAGED}=true", "--label", f"{LABEL_CLUSTER}={cluster}",
         "--publish", "mode=host,target=8080", swarm_lab.image, "httpd", "-f", "-p", "8080", "-h", "/www"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    worker = swarm_lab.workers[-1]
    try:
        probe = NodeApiProbe()
        nodes = wait_for(
            "3 running tasks",
            lambda: (found := list_nodes(api, cluster, probe)) and sum(n.tasks for n in found) == 3 and found,
        )
        assert [n.role for n in nodes] == ["manager", "worker", "worker"]
        assert {n.address for n in nodes} == {lab.address for lab in swarm_lab.nodes}
        for node in nodes:
            assert node.state == "ready" and node.availability == "active" and node.unavailable_reason == ""
            assert node.cpu_cores and node.memory_bytes
        assert sum(n.tasks for n in list_nodes(api, "another-installation", probe)) == 0

        # The node's own API is cut off (its link down): figures unknown, the reason names the URL.
        swarm_lab.cut_link(worker)
        fresh = NodeApiProbe(timeout=1.0)
        cut = next(n for n in list_nodes(api, cluster, fresh) if n.id == worker.swarm_node_id)
        assert cut.unavailable_reason.startswith(f"node {worker.netns}'s Docker API at {worker.tcp_url}")
    finally:
        swarm_lab.restore_link(worker)
        # Leave the lab as found: later tests place replicas on every node. heal, not a bare wait for
        # "ready": a node Swarm wrongly holds down after it rejoined is restarted there.
        swarm_lab.heal()
        subprocess.run(["docker", "-H", swarm_lab.manager_url, "service", "rm", name], capture_output=True,
                       timeout=60, check=False)  # fmt: skip
        api.close()


def test_availability_set_by_hostname_shows_in_swarm(swarm_lab: SwarmLab) -> None:
    api = APIClient(base_url=swarm_lab.manager_url)
    worker = swarm_lab.workers[0]
    try:
        paused = set_availability(api, worker.netns, "pause")
        assert (paused.id, paused.availability) == (worker.swarm_node_id, "pause")
        assert api.inspect_node(worker.swarm_node_id)["Spec"]["Availability"] == "pause"
    finally:
        active = set_availability(api, worker.swarm_node_id, "active")
        api.close()
    assert active.availability == "active"
