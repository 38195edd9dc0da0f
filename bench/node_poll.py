"""What one node poll (DockerRuntime.nodes, every 3 s on the leader) costs Docker: wall time and the CPU
of dockerd and containerd (their own and their waited children's, e.g. the `runc --version` /info
runs), per poll over N polls.  Other programs using Docker meanwhile add to the CPU: compare trees
side by side in one run (PYTHONPATH=TREE for the tree measured).  Asserts nothing.

    .venv/bin/python bench/node_poll.py [--polls 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

# The tree measured: PYTHONPATH's first entry (a baseline worktree), else this one.
sys.path.insert(0, os.environ.get("PYTHONPATH", "").split(":")[0] or str(Path(__file__).resolve().parents[1]))

from core.runtime.docker import DockerRuntime


def docker_cpu_seconds(pids: list[int]) -> float:
    """utime + stime + cutime + cstime of ``pids`` (children they waited for count)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


async def measure(polls: int, pids: list[int]) -> tuple[float, float]:
    runtime = DockerRuntime()
    try:
        await runtime.nodes()  # the client and its connections exist before the clock starts
        cpu = docker_cpu_seconds(pids)
        started = time.perf_counter()
        for _ in range(polls):
            await runtime.nodes()
        wall = time.perf_counter() - started
        return wall / polls, (docker_cpu_seconds(pids) - cpu) / polls
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polls", type=int, default=60)
    args = parser.parse_args()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    pids = [int(p) for p in subprocess.check_output(["pgrep", "-x", "dockerd|containerd"]).split()]
    wall, cpu = asyncio.run(measure(args.polls, pids))
    print(
        f"node poll, {args.polls} polls: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms of dockerd+containerd"
        f" CPU per poll (load {load}; core from {sys.modules['core'].__path__[0]})"
    )


if __name__ == "__main__":
    main()
