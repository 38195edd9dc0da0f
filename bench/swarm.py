"""Swarm benchmark on the lab (scripts/swarm_lab.sh): Orchestry on Swarm beside Swarm's own figures.

Side by side, in one run, on the same three-node lab and the same image:
- scale 1→10: Orchestry until every replica is routed (answered through nginx) vs `docker service
  scale` until the service converges (10 tasks running; and until each answers at its node port);
- node loss (a worker's link cut): Orchestry until every replica is routed again on the survivors vs
  Swarm until it has rescheduled the lost tasks (running again elsewhere);
- drain: `orchestry node drain` (replicas replaced first, zero failed requests) vs `docker node update
  --availability drain` until the node runs none of the service's tasks.
Prints medians and ratios; asserts nothing (the machine is shared and noisy: say so with the figures).

    .venv/bin/python bench/swarm.py [--id ID] [--runs 3] [--keep] [--swarm-only]

Uses the lab of that ID when it is up (`scripts/swarm_lab.sh status --json`), else brings one up and
removes it at the end (unless --keep). Needs root, like the lab.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docker import APIClient  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from swarm_orchestry import containers_on_nodes, last_running_at  # noqa: E402

LAB_SCRIPT = ROOT / "scripts" / "swarm_lab.sh"
POLL = 0.05
TIMEOUT = 120.0


# --- the lab --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lab:
    id: str
    status: dict[str, Any]

    @property
    def manager_url(self) -> str:
        return str(self.status["manager_url"])

    @property
    def image(self) -> str:
        return str(self.status["image"])

    @property
    def workers(self) -> list[dict[str, Any]]:
        return [n for n in self.status["nodes"] if n["role"] == "worker"]

    def address_of(self, node_id: str) -> str:
        return next(n["address"] for n in self.status["nodes"] if n["swarm_node_id"] == node_id)

    def script(self, *args: str) -> None:
        subprocess.run(
            [str(LAB_SCRIPT), *args, "--id", self.id], check=True, capture_output=True, timeout=180
        )


def lab_status(lab_id: str) -> dict[str, Any] | None:
    result = subprocess.run(
        [str(LAB_SCRIPT), "status", "--json", "--id", lab_id], capture_output=True, text=True, check=False
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def wait_until(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> float:
    """Seconds until ``check()`` holds (polled every POLL s)."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL)
    return time.perf_counter() - started


# --- Swarm by itself --------------------------------------------------------------------------------


class SwarmService:
    """One replicated service on the lab, published in host mode (no IPVS here)."""

    def __init__(self, lab: Lab, api: APIClient, replicas: int) -> None:
        self.lab = lab
        self.api = api
        self.name = f"bench-swarm-{uuid.uuid4().hex[:6]}"
        self._docker("service", "create", "--detach", "--quiet", "--name", self.name,
                     "--replicas", str(replicas), "--init", "--restart-delay", "0s",
                     "--stop-grace-period", "5s", "--endpoint-mode", "dnsrr",
                     "--publish", "mode=host,target=8080", lab.image, "/bin/serve")  # fmt: skip
        wait_until(f"{replicas} running tasks", lambda: len(self.running()) == replicas)

    def _docker(self, *args: str) -> None:
        subprocess.run(
            ["docker", "-H", self.lab.manager_url, *args], check=True, capture_output=True, timeout=60
        )

    def running(self, node_id: str | None = None) -> list[tuple[str, int]]:
        """(node id, published port) of each task that runs and is meant to."""
        found = []
        for task in self.api.tasks(filters={"service": self.name, "desired-state": "running"}):
            ports = (task["Status"].get("PortStatus") or {}).get("Ports") or []
            if task["Status"]["State"] == "running" and ports and node_id in (None, task["NodeID"]):
                found.append((task["NodeID"], ports[0]["PublishedPort"]))
        return found

    def all_answer(self, expected: int) -> bool:
        tasks = self.running()
        if len(tasks) != expected:
            return False
        for node_id, port in tasks:
            try:
                with urllib.request.urlopen(f"http://{self.lab.address_of(node_id)}:{port}/", timeout=1) as r:
                    if r.status != 200:
                        return False
            except OSError:
                return False
        return True

    def scale(self, replicas: int) -> None:
        self._docker("service", "scale", "--detach", f"{self.name}={replicas}")

    def remove(self) -> None:
        subprocess.run(["docker", "-H", self.lab.manager_url, "service", "rm", self.name],
                       capture_output=True, timeout=60, check=False)  # fmt: skip


def settle(lab: Lab, expected: int) -> None:
    """Until exactly ``expected`` containers run on the lab's nodes (see swarm_orchestry.settled)."""
    wait_until(f"{expected} containers on the nodes", lambda: containers_on_nodes(lab.status) == expected)


def swarm_scale_1_to_10(lab: Lab, api: APIClient, others: int = 0) -> dict[str, float]:
    """``others``: containers of Orchestry's app that run on the nodes meanwhile."""
    settle(lab, others)
    service = SwarmService(lab, api, 1)
    try:
        settle(lab, others + 1)
        started, wall = time.perf_counter(), time.time()
        service.scale(10)
        converged = wait_until("10 running tasks", lambda: len(service.running()) == 10)
        tasks_running = last_running_at(api, [service.name]) - wall
        wait_until("10 tasks answering", lambda: service.all_answer(10))
        return {
            "converged": converged,
            "answering": time.perf_counter() - started,
            "tasks running": tasks_running,
        }
    finally:
        service.remove()
        settle(lab, others)


def swarm_node_loss(lab: Lab, api: APIClient) -> dict[str, float]:
    """Cut a worker's link; seconds until Swarm runs all 6 tasks on the other nodes."""
    service = SwarmService(lab, api, 6)
    worker = lab.workers[-1]
    lost = worker["swarm_node_id"]
    try:
        started = time.perf_counter()
        lab.script("cut-link", worker["name"])
        survivors = lambda: [t for t in service.running() if t[0] != lost]  # noqa: E731
        down = wait_until(
            "the node down in Swarm", lambda: api.inspect_node(lost)["Status"]["State"] == "down"
        )
        wait_until("6 tasks on the survivors", lambda: len(survivors()) == 6)
        return {"node down": down, "rescheduled": time.perf_counter() - started}
    finally:
        lab.script("restore-link", worker["name"])
        wait_until("the node back", lambda: api.inspect_node(lost)["Status"]["State"] == "ready")
        service.remove()


def node_update(lab: Lab, node_id: str, availability: str) -> None:
    command = ["docker", "-H", lab.manager_url, "node", "update", "--availability", availability, node_id]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def swarm_drain(lab: Lab, api: APIClient) -> dict[str, float]:
    """`docker node update --availability drain`; seconds until the node runs none of the tasks and
    the service has all 6 running elsewhere."""
    service = SwarmService(lab, api, 6)
    worker = lab.workers[0]
    node_id = worker["swarm_node_id"]
    try:
        started = time.perf_counter()
        node_update(lab, node_id, "drain")
        wait_until(
            "the drained node empty and 6 tasks elsewhere",
            lambda: not service.running(node_id) and len(service.running()) == 6,
        )
        return {"drained": time.perf_counter() - started}
    finally:
        node_update(lab, node_id, "active")
        service.remove()


# --- report ---------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


Figures = dict[str, list[float]]


def add(figures: Figures, values: dict[str, float]) -> None:
    for key, value in values.items():
        figures.setdefault(key, []).append(value)


def line(label: str, ours: float | None, theirs: float, theirs_label: str) -> str:
    if ours is None:
        return f"{label:<34} Swarm {theirs_label} {theirs:6.2f} s"
    ratio = ours / theirs
    return f"{label:<34} Orchestry {ours:6.2f} s   Swarm {theirs_label} {theirs:6.2f} s   ratio {ratio:4.2f}×"


def scenarios(ours_too: bool) -> tuple[tuple[str, Callable[[Lab, APIClient], dict[str, float]], str], ...]:
    """(section, Swarm's own measure, the Bench method measuring Orchestry) for each scenario."""
    others = 1 if ours_too else 0  # Orchestry's app waits at one replica during Swarm's scale
    return (
        ("scale", lambda lab, api: swarm_scale_1_to_10(lab, api, others), "scale_1_to_10"),
        ("loss", swarm_node_loss, "node_loss"),
        ("drain", swarm_drain, "drain"),
    )


def report(section: str, swarm: Figures, ours: Figures | None) -> None:
    """Print one scenario's lines (as soon as it is done: a later scenario failing loses nothing)."""

    def mine(key: str) -> float | None:
        return None if ours is None or not ours.get(key) else median(ours[key])

    if section == "scale":
        print(
            line("scale 1→10, every replica routed", mine("routed"), median(swarm["converged"]), "converged")
        )
        if ours is not None:
            pairs = zip(ours.get("routed", []), swarm["converged"], strict=False)
            ratios = ", ".join(f"{o / t:.2f}×" for o, t in pairs)
            print(f"{'':<34} run by run (each pair back to back): {ratios}")
        print(f"{'':<34} Swarm tasks answering at node:port {median(swarm['answering']):6.2f} s")
        theirs = f"Swarm's {median(swarm['tasks running']):5.2f} s"
        own = mine("tasks running")
        print(f"{'':<34} last task running (node's timestamp): "
              + (f"Orchestry's {own:5.2f} s, " if own is not None else "") + theirs)  # fmt: skip
    elif section == "loss":
        print(
            line(
                "node loss → routed on survivors", mine("routed"), median(swarm["rescheduled"]), "rescheduled"
            )
        )
        print(f"{'':<34} Swarm marked the node down after {median(swarm['node down']):6.2f} s")
        after = mine("after reschedule")
        if after is not None:
            print(f"{'':<34} Orchestry routed {after:+.2f} s after Swarm rescheduled")
    else:
        print(line("drain a node (6 replicas)", mine("drained"), median(swarm["drained"]), "drained"))
        if ours is not None and ours.get("failed"):
            print(f"{'':<34} failed requests during Orchestry's drains: {int(sum(ours['failed']))}")


async def measure(lab: Lab, api: APIClient, runs: int, swarm_only: bool) -> None:
    """Each run of each scenario measures Swarm and then Orchestry back to back, so both see the same
    load on this shared machine (measuring all of one and then all of the other once gave ratios that
    moved by half with the load in between).  A scenario that fails is reported and the next runs."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmedians of {runs} run(s), three-node lab on one shared 2-core machine (load {load} at start):")
    if swarm_only:
        for section, theirs, _ in scenarios(False):
            swarm: Figures = {}
            for _ in range(runs):
                add(swarm, await asyncio.to_thread(theirs, lab, api))
            report(section, swarm, None)
        return
    import swarm_orchestry  # the Engine on the lab (ORCHESTRY_RUNTIME=swarm, real nginx)

    async with swarm_orchestry.orchestry_on(lab.status) as bench:
        for section, theirs, method in scenarios(True):
            swarm, ours = {}, {}
            try:
                for _ in range(runs):
                    add(swarm, await asyncio.to_thread(theirs, lab, api))
                    add(ours, await getattr(bench, method)())
            except RuntimeError as exc:
                print(f"{section}: FAILED ({exc})")
            if swarm:
                report(section, swarm, ours)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"(load {load} at the end)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--id", default="bench", help="lab id (default: bench)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave a lab this run brought up")
    parser.add_argument("--swarm-only", action="store_true", help="only Swarm's own figures")
    args = parser.parse_args()

    status = lab_status(args.id)
    brought_up = status is None
    if brought_up:
        started = time.perf_counter()
        subprocess.run([str(LAB_SCRIPT), "up", "--id", args.id], check=True, timeout=300)
        print(f"lab {args.id} up in {time.perf_counter() - started:.1f} s")
        status = lab_status(args.id)
        assert status is not None
    lab = Lab(args.id, status)
    api = APIClient(base_url=lab.manager_url)
    try:
        asyncio.run(measure(lab, api, args.runs, args.swarm_only))
    finally:
        api.close()
        if brought_up and not args.keep:
            started = time.perf_counter()
            subprocess.run([str(LAB_SCRIPT), "down", "--id", args.id], check=False, timeout=120)
            print(f"lab {args.id} down in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
