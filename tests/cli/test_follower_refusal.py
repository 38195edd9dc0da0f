"""A write sent to a follower: the CLI names the leader's URL to send it to, or, when that leader is
down, says a successor comes within the lease TTL. It printed only "Not the leader. Leader is: <id>"
(an id, not an address; and during a failover, the id of a dead node)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cli.conftest import start_daemon, stop_daemon


def test_a_follower_points_at_the_leader_then_says_retry_once_it_is_gone(tmp_path: Path) -> None:
    leader = start_daemon(tmp_path / "one")
    follower = start_daemon(tmp_path / "two", "--state-dir", str(leader.state_dir))  # same store
    try:
        refused = follower.cli("scale", "web", "2")
        assert refused.returncode == 1
        assert refused.stderr == (
            f"error: Not the leader. Leader is: {leader.node_id}; send it to the leader's API: "
            f"--url {leader.url} (or through the controller LB)\n"
        )
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=30)
        during = follower.cli("scale", "web", "2")  # the lease (30 s) has not run out yet
        assert during.returncode == 1
        assert during.stderr == (
            f"error: Not the leader. Leader is: {leader.node_id}; {leader.node_id} does not answer: retry in "
            "a few seconds: a leader that is down is replaced within the lease TTL (LEADER_LEASE_TTL)\n"
        )
    finally:
        if leader.process.poll() is None:
            stop_daemon(leader)
        stop_daemon(follower)
