"""The Swarm lab is a real multi-node Swarm: nodes, the registry image, host-mode ports, lost links."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.swarm.lab import LAB_ROOT, SCRIPT, SwarmLab, run_script

T = TypeVar("T")
WAIT = 60.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = probe()
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def test_three_nodes_ready_with_one_manager_and_their_docker_url(swarm_lab: SwarmLab) -> None:
    nodes = swarm_lab.docker().nodes.list()
    assert len(nodes) == 3
    assert {n.attrs["Status"]["State"] for n in nodes} == {"ready"}
    assert [n.attrs["Spec"]["Role"] for n in nodes].count("manager") == 1
    by_id = {n.id: n.attrs for n in nodes}
    for lab_node in swarm_lab.nodes:
        attrs = by_id[lab_node.swarm_node_id]
        assert attrs["Spec"]["Role"] == lab_node.role
        assert attrs["Spec"]["Labels"]["orchestry.docker-url"] == lab_node.tcp_url
        assert attrs["Description"]["Hostname"] == lab_node.netns
        assert attrs["Status"]["Addr"] == lab_node.address
        # Each node's own engine answers on its unix socket and on its lab address.
        assert swarm_lab.docker(lab_node).info()["Swarm"]["NodeID"] == lab_node.swarm_node_id
        tcp_info = subprocess.run(
            ["docker", "-H", lab_node.tcp_url, "info", "-f", "{{.Swarm.NodeID}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert tcp_info.stdout.strip() == lab_node.swarm_node_id


def _running_tasks_with_ports(lab: SwarmLab, service: str) -> list[tuple[str, int]]:
    """(node id, published port) of each running task, as Swarm reports them."""
    found = []
    for task in lab.docker().api.tasks(filters={"service": service, "desired-state": "running"}):
        ports = task["Status"].get("PortStatus", {}).get("Ports", [])
        if task["Status"]["State"] == "running" and ports:
            found.append((task["NodeID"], ports[0]["PublishedPort"]))
    return found


def test_service_from_the_registry_runs_on_several_nodes_and_answers_from_the_host(
    swarm_lab: SwarmLab,
) -> None:
    name = f"labtest-{uuid.uuid4().hex[:6]}"
    manager = ["docker", "-H", swarm_lab.manager_url]
    subprocess.run(
        [*manager, "service", "create", "--detach", "--quiet", "--name", name, "--replicas", "3",
         "--init", "--restart-delay", "0s", "--endpoint-mode", "dnsrr",
         "--publish", "mode=host,target=8080", swarm_lab.image, "httpd", "-f", "-p", "8080", "-h", "/www"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    try:
        tasks = wait_for(
            "3 running tasks with published ports",
            lambda: (found := _running_tasks_with_ports(swarm_lab, name)) and len(found) == 3 and found,
        )
        assert len({node_id for node_id, _ in tasks}) >= 2
        address = {n.swarm_node_id: n.address for n in swarm_lab.nodes}
        for node_id, port in tasks:
            url = f"http://{address[node_id]}:{port}/"
            with urllib.request.urlopen(url, timeout=5) as answer:
                assert answer.status == 200, url
    finally:
        subprocess.run([*manager, "service", "rm", name], capture_output=True, timeout=60, check=False)


def test_a_cut_link_makes_the_node_down_and_restoring_it_brings_it_back(swarm_lab: SwarmLab) -> None:
    node = swarm_lab.workers[-1]
    swarm_lab.cut_link(node)
    try:
        wait_for(f"{node.name} down in Swarm", lambda: swarm_lab.swarm_node_state(node) == "down")
    finally:
        swarm_lab.restore_link(node)
    wait_for(f"{node.name} ready again", lambda: swarm_lab.swarm_node_state(node) == "ready")


def test_a_killed_dockerd_makes_the_node_down_and_a_restarted_one_rejoins(swarm_lab: SwarmLab) -> None:
    node = swarm_lab.workers[0]
    swarm_lab.kill_dockerd(node)
    try:
        wait_for(f"{node.name} down in Swarm", lambda: swarm_lab.swarm_node_state(node) == "down")
    finally:
        swarm_lab.start_dockerd(node)
    wait_for(f"{node.name} ready again", lambda: swarm_lab.swarm_node_state(node) == "ready")
    assert swarm_lab.docker(node).info()["Swarm"]["LocalNodeState"] == "active"


def test_heal_puts_back_links_dockerds_and_availability(swarm_lab: SwarmLab) -> None:
    """What runs after every lab test, so one that fails half-way cannot break the next."""
    first, second = swarm_lab.workers
    swarm_lab.cut_link(first)
    swarm_lab.kill_dockerd(second)
    manager = swarm_lab.docker()
    node = manager.nodes.get(swarm_lab.manager.swarm_node_id)
    node.update({**node.attrs["Spec"], "Availability": "pause"})
    swarm_lab.heal()
    nodes = manager.nodes.list()
    assert {(n.attrs["Status"]["State"], n.attrs["Spec"]["Availability"]) for n in nodes} == {
        ("ready", "active")
    }
    assert swarm_lab.docker(second).info()["Swarm"]["LocalNodeState"] == "active"


def _leftovers(lab_id: str) -> list[str]:
    """Whatever of lab ``lab_id`` still exists: namespaces, host veth, cgroups, files."""
    prefix = f"osl-{lab_id}"
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    found = [ns for ns in namespaces.stdout.split() if ns.startswith(prefix + "-")]
    if subprocess.run(["ip", "link", "show", prefix], capture_output=True, check=False).returncode == 0:
        found.append(f"veth {prefix}")
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{prefix}-n*")]
    if (LAB_ROOT / lab_id).exists():
        found.append(str(LAB_ROOT / lab_id))
    return found


def test_up_after_a_killed_run_replaces_it_and_down_leaves_nothing(swarm_lab: SwarmLab) -> None:
    """A run killed with everything still up (dockerds, a container, the registry) must not break the
    next `up`, and `down` must remove it all. One node keeps this cheap; it is a separate lab ID."""
    lab_id = f"{swarm_lab.id[:7]}k"
    env = {**os.environ, "ORCHESTRY_LAB_NODES": "1"}

    def script(*args: str) -> None:
        subprocess.run([str(SCRIPT), *args, "--id", lab_id], env=env, capture_output=True, text=True,
                       timeout=180, check=True)  # fmt: skip

    try:
        script("up")
        first = SwarmLab.read(lab_id)
        client = first.docker()
        client.containers.run(first.image, ["sleep", "600"], detach=True, init=True)
        client.close()
        # A killed run: `up` killed -9 half-way (while it replaces the lab above), leaving its
        # processes and namespaces in whatever state they were.
        killed = subprocess.Popen([str(SCRIPT), "up", "--id", lab_id], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        pid_file = LAB_ROOT / lab_id / "n1" / "dockerd.pid"
        first_pid = pid_file.read_text()
        wait_for("the killed run to start its dockerd", lambda: pid_file.read_text() != first_pid)
        killed.kill()
        killed.wait()
        script("up")
        second = SwarmLab.read(lab_id)
        assert second.docker().nodes.list()[0].attrs["Status"]["State"] == "ready"
        assert second.docker().containers.list() == []  # a fresh engine, nothing of the killed run
        second.close()
    finally:
        script("down")
    assert _leftovers(lab_id) == []
    assert (
        "no lab"
        in subprocess.run(
            [str(SCRIPT), "status", "--id", lab_id], capture_output=True, text=True, check=False
        ).stderr
    )
    run_script("status", "--id", swarm_lab.id)  # the session's own lab is untouched
