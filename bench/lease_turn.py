"""Does the leader keep its lease while a fleet is applied on SQLite? Renewal waits and step-downs.

The REAL engine on the in-memory runtime (as bench/fleet.py) fills a fleet on its SQLite store: every
app registered, then `up` 50 at a time, until every replica is ready. Meanwhile the election renews its
lease every TTL/3; each renewal takes its turn in the store's write queue (core.store.db.SqliteWriters).
Printed per fill: its wall time, the SQLite writes and the longest wait any write had for its turn, the
renewals, their p50 and longest duration (turn wait + the UPDATE), the renewal's budget (it must end
within 0.8 TTL - TTL/3 of the previous one's start, or the leader lapses) and how often the node
stopped leading during the fill. Each fill runs in a child process in the tree it measures; with
``--baseline TREE`` the fills alternate between the trees (order swapped every round). Asserts nothing.

    .venv/bin/python bench/lease_turn.py [--replicas 10000] [--lease-ttl 3] [--rounds 2] [--baseline T]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _children import add_tree_arguments, enter_tree, ran_from, ran_line, run_child
from fleet import app_document

BATCH = 50  # `up` calls at once, as bench/fleet.py


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def up_when_leading(engine: Any, name: str) -> None:
    """Ask again once the node leads again (a node that stepped down refuses `up`)."""
    for _ in range(600):
        if engine.cluster.is_leader():
            try:
                await engine.up(name)
                return
            except Exception:  # refused again: it stepped down meanwhile
                pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"`up {name}` was refused for a minute: the node never led again")


async def fill(replicas: int, lease_ttl: int) -> dict[str, Any]:
    from memory_fleet_engine import memory_fleet_engine

    apps = max(1, replicas // 10)
    with tempfile.TemporaryDirectory(prefix="orchestry-lease-turn-") as tmp:
        engine, _ = memory_fleet_engine(Path(tmp) / "state", "lease", lease_ttl=lease_ttl)
        await engine.start()
        renewals: list[float] = []
        leases = engine.store.leases
        original_renew = leases.renew

        def timed_renew(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original_renew(*args, **kwargs)
            finally:
                renewals.append(time.perf_counter() - started)

        leases.renew = timed_renew  # the election looks it up at each renewal
        election = engine.cluster
        losses: list[str] = []
        original_set_state = election._set_state

        async def counted_set_state(state: str, why: str, term_ended: str | None = None) -> None:
            if election.state == "leader" and state != "leader":
                losses.append(why)
            await original_set_state(state, why, term_ended)

        election._set_state = counted_set_state
        not_leading = 0  # samples (every 0.1 s) in which the node did not lead during the fill
        samples = 0
        filling = True

        async def watch() -> None:
            nonlocal not_leading, samples
            while filling:
                samples += 1
                not_leading += not election.is_leader()
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        renewals.clear()
        started = time.perf_counter()
        names = [f"fleet-{i:04d}" for i in range(apps)]
        for name in names:
            await engine.register(app_document(name))
        failures = 0
        for batch in range(0, apps, BATCH):
            answers = await asyncio.gather(
                *(engine.up(n) for n in names[batch : batch + BATCH]), return_exceptions=True
            )
            for name, answer in zip(names[batch : batch + BATCH], answers, strict=True):
                if isinstance(answer, BaseException):
                    failures += 1
                    await up_when_leading(engine, name)
        deadline = time.monotonic() + 600
        while sum(engine.reconciler.ready_count(n) for n in names) < replicas:
            if time.monotonic() > deadline:
                raise RuntimeError("the fleet never became ready")
            await asyncio.sleep(0.5)
        wall = time.perf_counter() - started
        filling = False
        await watcher
        lost = list(losses)  # not the release of the stop below
        writers = engine.store.database.sqlite_writers
        await engine.stop(stop_apps=False)
    return {
        "fill_seconds": wall,
        "up_failures": failures,
        "writes": writers.writes,
        "write_wait_max_ms": writers.longest_wait * 1000,
        "renewals": len(renewals),
        "renew_p50_ms": statistics.median(renewals) * 1000 if renewals else float("nan"),
        "renew_max_ms": max(renewals) * 1000 if renewals else float("nan"),
        "losses": lost,
        "not_leading_percent": 100 * not_leading / max(1, samples),
    }


def run_fill(tree: Path, replicas: int, lease_ttl: int, label: str) -> dict[str, Any]:
    load_before = load_average()
    row = run_child(
        Path(__file__), tree, ["--child", str(replicas), "--lease-ttl", str(lease_ttl)], f"{label} fill"
    )
    budget_ms = (0.8 * lease_ttl - max(0.5, lease_ttl / 3)) * 1000
    print(
        f"  {label:<8} {ran_line(row)} (load {load_before} -> {load_average()}):"
        f" fill {row['fill_seconds']:.1f} s, {row['up_failures']} failed `up`;"
        f" {row['writes']} writes, longest wait for a turn {row['write_wait_max_ms']:.0f} ms;"
        f" {row['renewals']} renewals, p50 {row['renew_p50_ms']:.1f} ms, longest {row['renew_max_ms']:.0f} ms"
        f" (budget {budget_ms:.0f} ms); not leading {row['not_leading_percent']:.1f} % of the fill,"
        f" {len(row['losses'])} step-downs {row['losses'][:2]}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=10000)
    parser.add_argument("--lease-ttl", type=int, default=3, help="seconds (3 is the smallest allowed)")
    parser.add_argument("--rounds", type=int, default=2)
    add_tree_arguments(parser, "another checkout measured beside this one, fills alternating")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        enter_tree(args.tree)
        logging.basicConfig(level=logging.ERROR)
        result = asyncio.run(fill(args.child, args.lease_ttl))
        print(json.dumps({**result, "ran": ran_from(args.tree)}))
        return
    print(
        f"lease turn bench: {args.replicas} replicas ({args.replicas // 10} apps, `up` {BATCH} at once)"
        f" on SQLite, lease TTL {args.lease_ttl} s; {os.cpu_count()} CPUs, load {load_average()}"
    )
    trees = [("this", args.tree)] + ([("baseline", args.baseline)] if args.baseline else [])
    for round_ in range(args.rounds):
        for label, tree in trees if round_ % 2 == 0 else trees[::-1]:
            run_fill(tree, args.replicas, args.lease_ttl, label)


if __name__ == "__main__":
    main()
