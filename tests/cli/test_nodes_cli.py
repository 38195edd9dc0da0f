"""`orchestry nodes` and `orchestry node drain|activate` against a daemon on a single Docker host."""

from __future__ import annotations

import socket

from tests.cli.conftest import Daemon


def test_nodes_lists_this_host_and_drain_is_refused_clearly(daemon: Daemon) -> None:
    (node,) = daemon.json("nodes")["nodes"]
    assert node["hostname"] == socket.gethostname() and node["state"] == "ready"
    table = daemon.ok("nodes")
    for heading in ("HOSTNAME", "ROLE", "AVAILABILITY", "TASKS"):
        assert heading in table
    assert socket.gethostname() in table and "standalone" in table

    refused = daemon.cli("node", "drain", socket.gethostname())
    assert refused.returncode == 1
    assert "single Docker host has no other node" in refused.stderr and "Traceback" not in refused.stderr
    unknown = daemon.cli("node", "activate", "no-such-node")
    assert unknown.returncode == 1 and "no node 'no-such-node'" in unknown.stderr
    assert daemon.cli("node", "pause", "x").returncode == 2  # not an action: usage error
