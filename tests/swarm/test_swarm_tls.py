"""TLS to the Docker APIs of a Swarm, with real certificates (the lab's own CA, ``up --tls``): the
manager and every node serve tcp://ADDR:2376 with --tlsverify, as README tells an operator to set up.

With the controller's client certificate (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) a real daemon drives the
manager over TLS and reads each task's CPU and memory from its node over TLS; with a wrong CA, or with
no TLS settings at all, the figures are null with a reason naming TLS and the fix: never a number."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from docker import APIClient

from core.runtime.base import ContainerStats
from core.runtime.swarm_nodes import NodeApiProbe
from core.runtime.swarm_spec import swarm_node
from core.runtime.swarm_stats import NodeStats
from tests.api.conftest import stop_nginx_left_serving
from tests.cli.conftest import Daemon, start_daemon, stop_daemon
from tests.integration.harness import wait_for
from tests.swarm.daemon_support import api, cli
from tests.swarm.engine_support import app_name, swarm_app
from tests.swarm.lab import SwarmLab


def _wrong_ca(lab: SwarmLab, into: Path) -> Path:
    """The controller's client certificate beside a ca.pem of another CA (not the nodes')."""
    into.mkdir()
    assert lab.cert_path is not None
    for name in ("cert.pem", "key.pem"):
        shutil.copy(Path(lab.cert_path) / name, into / name)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(into / "other-ca-key.pem"), "-out", str(into / "ca.pem"), "-days", "1",
         "-subj", "/CN=not the lab's CA"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return into


async def _measured(daemon: Daemon, name: str, n: int) -> list[dict[str, Any]] | None:
    replicas = (await api(daemon, "GET", f"/api/v1/apps/{name}"))["replicas"]
    done = [
        r for r in replicas if r["ready"] and r["cpu_percent"] is not None and r["memory_percent"] is not None
    ]
    return replicas if len(done) == n == len(replicas) else None


async def _unmeasured(daemon: Daemon, name: str) -> list[dict[str, Any]] | None:
    replicas = (await api(daemon, "GET", f"/api/v1/apps/{name}"))["replicas"]
    if replicas and all(r["figures_reason"] for r in replicas):
        return replicas
    return None


def _stop_keeping_apps(daemon: Daemon) -> None:
    """SIGTERM only: the daemon leaves its apps running (by design) for the next one to adopt."""
    daemon.process.terminate()
    assert daemon.process.wait(timeout=60) == 0
    stop_nginx_left_serving(daemon.state_dir)


async def test_figures_over_tls_with_the_client_certificate_and_null_with_a_wrong_ca(
    swarm_tls_lab: SwarmLab, tmp_path: Path
) -> None:
    lab = swarm_tls_lab
    manager_tcp = lab.manager.tcp_url
    assert manager_tcp.endswith(":2376") and lab.cert_path is not None
    name = app_name("tls")
    doc = swarm_app(lab, name)
    doc["spec"]["resources"] = {"cpu": "250m", "memory": "64Mi"}  # a limit: memory_percent has a base

    # As README says: the manager's TLS address and Docker's own TLS variables; every node's label
    # orchestry.docker-url is tcp://ADDR:2376.
    good = {"DOCKER_HOST": manager_tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": lab.cert_path}
    daemon = await asyncio.to_thread(start_daemon, tmp_path, "--runtime", "swarm", env_extra=good)
    try:
        await api(daemon, "POST", "/api/v1/apps", doc)
        await api(daemon, "POST", f"/api/v1/apps/{name}/up")
        await api(daemon, "POST", f"/api/v1/apps/{name}/scale", {"replicas": 2})
        replicas = await wait_for(
            lambda: _measured(daemon, name, 2), timeout=90, interval=0.5, what="figures of 2 replicas"
        )
        assert {r["node"] for r in replicas} == {node.netns for node in lab.nodes}, replicas
        for replica in replicas:
            assert 0 < replica["memory_percent"] < 100 and 0 <= replica["cpu_percent"] < 100, replica
            assert replica["figures_reason"] == ""
        nodes = (await api(daemon, "GET", "/api/v1/nodes"))["nodes"]
        assert [n["reason"] for n in nodes] == [None, None], nodes
        print(f"\nover TLS: {[(r['node'], r['cpu_percent'], r['memory_percent']) for r in replicas]}")
    except BaseException:
        await asyncio.to_thread(stop_daemon, daemon)
        raise
    await asyncio.to_thread(_stop_keeping_apps, daemon)

    # The same installation restarted with a CA that did not sign the nodes' certificates (the manager
    # now through its socket): it adopts the replicas, and their figures become null, saying why.
    wrong = {
        "ORCHESTRY_DOCKER_URL": lab.manager_url,
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(_wrong_ca(lab, tmp_path / "wrong-ca")),
    }
    daemon = await asyncio.to_thread(start_daemon, tmp_path, "--runtime", "swarm", env_extra=wrong)
    try:
        gone = await wait_for(
            lambda: _unmeasured(daemon, name), timeout=60, interval=0.5, what="null figures naming TLS"
        )
        assert {r["name"] for r in gone} == {r["name"] for r in replicas}  # adopted, not recreated
        for replica in gone:
            assert replica["cpu_percent"] is None and replica["memory_percent"] is None, replica
            reason = replica["figures_reason"]
            assert "cannot be asked over TLS" in reason and "certificate verify failed" in reason, reason
            assert "DOCKER_CERT_PATH" in reason
        nodes = (await api(daemon, "GET", "/api/v1/nodes"))["nodes"]
        for node in nodes:
            assert node["cpu_percent"] is None and "TLS" in node["reason"], node
        listed = await cli(daemon, "nodes", "--format", "json")
        assert all("TLS" in n["reason"] for n in json.loads(listed)["nodes"])
        print(f"wrong CA: {gone[0]['figures_reason']}")
    finally:
        await asyncio.to_thread(stop_daemon, daemon)
    assert "Traceback" not in daemon.log()


async def test_no_tls_settings_give_a_reason_naming_tls_not_a_figure(
    swarm_tls_lab: SwarmLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A controller without DOCKER_TLS_VERIFY/DOCKER_CERT_PATH speaks plain HTTP to the TLS port."""
    lab = swarm_tls_lab
    for variable in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_HOST"):
        monkeypatch.delenv(variable, raising=False)
    worker = lab.workers[0]
    container = lab.docker(worker).containers.run(lab.image, ["/bin/serve"], detach=True)
    manager = APIClient(base_url=lab.manager_url)
    executor = ThreadPoolExecutor(2)
    stats = NodeStats(executor, lambda: "1.41", {}, 2)
    try:
        node = swarm_node(manager.inspect_node(worker.swarm_node_id))
        assert node.docker_url == worker.tcp_url
        sampled = await stats.sample(node, container.id)
        assert not isinstance(sampled, ContainerStats) and isinstance(sampled, str), sampled
        assert sampled.startswith(
            f"node {worker.netns}'s Docker API at {worker.tcp_url} cannot be asked over TLS"
        )
        assert "sent plain HTTP" in sampled and "DOCKER_TLS_VERIFY=1" in sampled
        probed = await asyncio.to_thread(NodeApiProbe().reason, manager.inspect_node(worker.swarm_node_id))
        assert "cannot be asked over TLS" in probed
        # With the client certificate, the same call gives the container's figures.
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", str(lab.cert_path))
        with_certs = NodeStats(executor, lambda: "1.41", {}, 2)
        try:
            measured = await with_certs.sample(node, container.id)
        finally:
            with_certs.close()
        assert isinstance(measured, ContainerStats), measured
    finally:
        stats.close()
        executor.shutdown()
        manager.close()
        container.remove(force=True)
