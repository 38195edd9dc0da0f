"""The scaler's tick on a full metric history: every app's 60 s window (``RollingMetrics.summary``) after
15 minutes of samples (100 apps of 10 replicas, one sample every 2 s, traffic observed each time), in
this checkout and, side by side, in the trees given.  CPU time of the summaries only.  Asserts nothing.

    .venv/bin/python bench/window_summary.py [TREE ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

APPS, REPLICAS, SAMPLES, REPEATS = 100, 10, 450, 20


def child() -> None:
    from core.metrics.window import ReplicaSample, RollingMetrics

    windows = RollingMetrics()
    start = 1_000_000.0
    for step in range(SAMPLES):
        now = start + step * 2
        for app in range(APPS):
            windows.mark_traffic_observed(f"app{app}", now)
            samples = [ReplicaSample(slot, True, 5.0, 6.0, 1) for slot in range(REPLICAS)]
            windows.add_resource_sample(f"app{app}", samples, now)
    end = start + SAMPLES * 2
    before = time.thread_time()
    for _ in range(REPEATS):
        for app in range(APPS):
            windows.summary(f"app{app}", 60, end)
    print(json.dumps({"tick_ms": (time.thread_time() - before) / REPEATS * 1000}))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        sys.path.insert(0, sys.argv[2])
        child()
        return
    trees = [Path(__file__).resolve().parents[1], *(Path(t).resolve() for t in sys.argv[1:])]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{APPS} apps' 60 s windows after {SAMPLES * 2 // 60} minutes of samples (load {load}):")
    for tree in trees:
        command = [sys.executable, __file__, "--child", str(tree)]
        out = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=True).stdout
        print(f"  {tree}: {json.loads(out)['tick_ms']:.2f} ms CPU per scaler tick")


if __name__ == "__main__":
    main()
