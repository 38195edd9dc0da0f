"""A killed test run leaves its private dockerd behind (often SIGSTOPped by the test); the next run's
fixture removes it, and never an engine whose run is still alive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.chaos.private_docker import PrivateDocker, _link_exists, _mounts_under, reap_stale

ROOT = Path(__file__).resolve().parents[2]

# What a test run does before it is killed: start an engine, freeze its dockerd, report, hang.
ABANDON = """
import json, os, signal, sys, time
from tests.chaos.private_docker import PrivateDocker
engine = PrivateDocker()
engine.start()
pid = int(engine.pid_file.read_text())
os.kill(pid, signal.SIGSTOP)
print(json.dumps({"base": str(engine.base), "bridge": engine.bridge, "dockerd": pid}), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_a_killed_runs_frozen_dockerd_is_removed_and_a_live_runs_engine_kept() -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", ABANDON],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    left = json.loads(run.stdout.readline())
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    base, bridge, dockerd = Path(left["base"]), left["bridge"], left["dockerd"]
    assert _alive(dockerd) and base.is_dir() and _link_exists(bridge), "the killed run left its engine"

    ours = PrivateDocker()  # this run is alive: its engine must survive the reaping
    try:
        removed = reap_stale()
        deadline = time.monotonic() + 10
        while _alive(dockerd) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(dockerd), "the frozen dockerd was not killed"
        assert not base.exists() and not _mounts_under(base), "its data root is still there"
        assert not _link_exists(bridge), "its bridge is still there"
        assert str(base) in removed and bridge in removed
        assert ours.base.is_dir() and str(ours.base) not in removed
    finally:
        ours.cleanup()


def test_another_runs_reaping_never_removes_the_bridge_of_an_engine_being_cleaned_up() -> None:
    """Two runs side by side: one cleans up its engine while the other's fixture starts and reaps.
    The bridge must stay its owner's to delete: reaped in between (its owner file already removed),
    the owner's own delete failed "No such device" and the test errored at teardown (seen once in 8
    runs of test_dockerd_restart.py, two runs side by side)."""
    ours = PrivateDocker()
    reaped: list[str] = []

    def then_another_run_reaps(step: Callable[[], None]) -> Callable[[], None]:
        def step_then_reap() -> None:
            step()
            reaped.extend(reap_stale())

        return step_then_reap

    subprocess.run(["ip", "link", "add", ours.bridge, "type", "bridge"], check=True)
    for name in (
        "_remove_containers",
        "_stop_daemon",
        "_kill_leftovers",
        "_unmount_all",
        "_delete_bridge",
        "_remove_files",
    ):
        setattr(ours, name, then_another_run_reaps(getattr(ours, name)))
    ours.cleanup()
    assert ours.bridge not in reaped, reaped
    assert not _link_exists(ours.bridge) and not ours.base.exists()
