"""What the controller's CPU pays per request served through nginx: reading nginx's access log (one
JSON line per request, parsed on a worker thread) and adding each record to the metrics (the request
counters and latency histogram of /metrics, the rolling windows the scaler and the console read, on
the event loop).

Writes one second's worth of access-log lines at each rate (``--rates``, requests per second; spread over
``--apps`` apps of ``--replicas`` replicas each, as nginx writes them) and times the real
MetricsCollector's two steps on them: ``parse`` (AccessLogTailer.read_new) and ``add``
(MetricsCollector._add_traffic), CPU time of this thread, median of ``--runs``.  Prints µs per
request for each and the share of one core the controller spends at that rate.  Asserts nothing.

    .venv/bin/python bench/traffic.py [--rates 1000,10000,50000] [--apps 10] [--replicas 10] [--runs 5]

Run it in a baseline tree too (PYTHONPATH=<tree> .venv/bin/python <tree>/bench/traffic.py) and compare.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.metrics.collector import MetricsCollector, ReplicaTarget  # noqa: E402
from core.runtime.memory import MemoryRuntime  # noqa: E402

STATUSES = (200,) * 95 + (404,) * 3 + (502,) * 2


def log_lines(rate: int, apps: int, replicas: int, start: float, rng: random.Random) -> bytes:
    """One second of nginx's ``orchestry`` log format at ``rate`` requests per second."""
    out = []
    for index in range(rate):
        app = f"app{index % apps}"
        port = 20000 + (index % apps) * replicas + rng.randrange(replicas)
        status = rng.choice(STATUSES)
        seconds = rng.uniform(0.001, 0.2)
        out.append(
            json.dumps(
                {
                    "t": round(start + index / rate, 3),
                    "app": app,
                    "status": status,
                    "rt": round(seconds, 3),
                    "ua": f"127.0.0.1:{port}",
                    "us": str(status),
                    "urt": f"{seconds * 0.9:.3f}",
                    "m": "GET",
                    "bytes": 612,
                },
                separators=(",", ":"),
            )
        )
    return ("\n".join(out) + "\n").encode()


def one_run(rate: int, apps: int, replicas: int, rng: random.Random) -> tuple[float, float]:
    """CPU seconds of (parse, add) for one second of traffic at ``rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        path.write_bytes(b"")
        now = time.time()
        collector = MetricsCollector(MemoryRuntime(), path, clock=lambda: now)
        targets = {
            f"app{a}": [
                ReplicaTarget(
                    slot=r + 1,
                    container_id=f"c{a}-{r}",
                    host="127.0.0.1",
                    port=20000 + a * replicas + r,
                    ready=True,
                )
                for r in range(replicas)
            ]
            for a in range(apps)
        }
        for app, replicas_of in targets.items():
            collector.set_targets(app, replicas_of)
        tailer = collector._tailer
        assert tailer.read_new() == []  # opens the (empty) file
        with path.open("ab") as handle:
            handle.write(log_lines(rate, apps, replicas, now - 1.0, rng))
        began = time.thread_time()
        records = tailer.read_new()
        parsed = time.thread_time()
        collector._add_traffic(targets, records, now)
        added = time.thread_time()
        assert len(records) == rate, f"{len(records)} of {rate} lines parsed"
        tailer.close()
        return parsed - began, added - parsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="1000,10000,50000")
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    print(
        f"traffic ingestion, {args.apps} apps x {args.replicas} replicas, "
        f"median of {args.runs} runs; tree {ROOT}"
    )
    print(f"{'rate/s':>8} {'parse µs/req':>13} {'add µs/req':>11} {'total µs/req':>13} {'core share':>11}")
    for rate in (int(r) for r in args.rates.split(",")):
        runs = [one_run(rate, args.apps, args.replicas, rng) for _ in range(args.runs)]
        parse = statistics.median(p for p, _ in runs) / rate * 1e6
        add = statistics.median(a for _, a in runs) / rate * 1e6
        total = parse + add
        print(f"{rate:>8} {parse:>13.1f} {add:>11.1f} {total:>13.1f} {total * rate / 1e6 * 100:>10.1f}%")


if __name__ == "__main__":
    main()
