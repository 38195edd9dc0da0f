"""A write sent to a follower while its leader is down (killed, lease not yet run out): the CLI says
that leader does not answer and a successor comes within the lease TTL, instead of sending the user to
the dead leader's URL (and before that, only "Not the leader. Leader is: <id>")."""

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
            f"error: Not the leader. Leader is: {leader.node_id}: send changes to the leader's API "
            f"({leader.url}) or to the cluster's controller LB, which finds the leader\n"
        )
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=30)
        during = follower.cli("scale", "web", "2")  # the lease (30 s) has not run out yet
        assert during.returncode == 1
        assert during.stderr == (
            f"error: Not the leader. Leader is: {leader.node_id}: {leader.node_id} does not answer at "
            f"{leader.url}: retry in a few seconds: a leader that is down is replaced within the lease TTL "
            "(LEADER_LEASE_TTL), or send changes to the cluster's controller LB, which finds the new leader\n"
        )
    finally:
        if leader.process.poll() is None:
            stop_daemon(leader)
        stop_daemon(follower)
