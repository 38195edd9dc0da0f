"""The Orchestry half of bench/swarm.py: a whole Engine (ORCHESTRY_RUNTIME=swarm, real nginx) on the lab.

``orchestry_on(lab_status)`` starts the Engine with one app and yields a ``Bench`` whose scenarios each
return a dict of seconds (and failed requests for drains); bench/swarm.py runs each beside Swarm's own:
- scale: "routed" — scale 1→10 until every replica is ready and routed through nginx;
- loss: "routed" — a worker's link cut until all 6 replicas are routed again on the survivors,
  "rescheduled" — when Swarm had them running there (measured in the same run), and "after reschedule"
  — the difference (how long Orchestry's routing trails Swarm's reschedule);
- drain: "drained" — `node drain` until the node is set to drain with none of our replicas left,
  "failed" — failed requests among constant GET+POST traffic through nginx (no client retries).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from docker import APIClient

from core.engine import Engine
from core.runtime.docker_wire import parse_docker_time
from core.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
LAB_SCRIPT = ROOT / "scripts" / "swarm_lab.sh"
POLL = 0.05
TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_document(image: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {
            "image": image,
            "command": ["/bin/serve"],
            "ports": [{"containerPort": 8080}],
            "terminationGracePeriodSeconds": 5,
        },
        "scaling": {"mode": "manual", "minReplicas": 1, "maxReplicas": 10},
        "healthCheck": {"path": "/health", "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
    }


def last_running_at(api: APIClient, services: list[str]) -> float:
    """When the last task of these services (names or ids) that runs started running, by the
    timestamp Swarm's node recorded (epoch seconds): Swarm's own part of a scale-out."""
    stamps = [
        parse_docker_time(task["Status"].get("Timestamp")) or 0.0
        for task in api.tasks(filters={"service": services, "desired-state": "running"})
        if task["Status"]["State"] == "running"
    ]
    return max(stamps, default=0.0)


def containers_on_nodes(status: dict[str, Any]) -> int:
    """Containers running on the lab's nodes, whoever's (a removed service's tasks keep running until
    their containers have stopped)."""
    total = 0
    for node in status["nodes"]:
        client = APIClient(base_url=node["docker_url"])
        try:
            total += len(client.containers())
        finally:
            client.close()
    return total


async def settled(status: dict[str, Any], expected: int) -> None:
    """Until exactly ``expected`` containers run on the nodes: a measurement starts only once what the
    previous one started or removed is done, so neither side pays for the other's teardown."""

    async def check() -> bool:
        return await asyncio.to_thread(containers_on_nodes, status) == expected

    await until(f"{expected} containers running on the nodes", check)


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> float:
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(POLL)
    return time.perf_counter() - started


class Traffic:
    """GET and POST in turn through nginx, a new connection each, no retries; counts failures."""

    def __init__(self, url: str, concurrency: int = 4) -> None:
        self.url = url
        self.concurrency = concurrency
        self.sent = 0
        self.failed = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _worker(self) -> None:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            post = False
            while not self._stop.is_set():
                post = not post
                self.sent += 1
                try:
                    async with session.request(
                        "POST" if post else "GET", self.url, data=b"bench" if post else None,
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as resp:  # fmt: skip
                        await resp.read()
                        if resp.status != 200:
                            self.failed += 1
                except (aiohttp.ClientError, TimeoutError):
                    self.failed += 1
                await asyncio.sleep(0.005)

    async def __aenter__(self) -> Traffic:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


class Bench:
    def __init__(self, status: dict[str, Any], engine: Engine, name: str) -> None:
        self.status = status
        self.engine = engine
        self.name = name
        self.api = APIClient(base_url=status["manager_url"])

    def lab(self, *args: str) -> None:
        subprocess.run([str(LAB_SCRIPT), *args, "--id", self.status["id"]], check=True, capture_output=True,
                       timeout=120)  # fmt: skip

    async def routed(self, count: int, avoid: str | None = None) -> bool:
        view = await self.engine.get_app(self.name)
        ready = [r for r in view.replicas if r.ready]
        return len(ready) == count == len(view.replicas) and all(r.host != avoid for r in ready)

    async def scale_1_to_10(self) -> dict[str, float]:
        """From one replica on quiet nodes, back to one afterwards."""
        await self.scale(1)
        await settled(self.status, 1)
        started = time.time()
        routed = await self.scale(10)

        def swarm_part() -> float:
            services = [s["ID"] for s in self.api.services(filters={"label": f"orchestry.app={self.name}"})]
            return last_running_at(self.api, services) - started

        tasks_running = await asyncio.to_thread(swarm_part)
        await self.scale(1)
        await settled(self.status, 1)
        return {"routed": routed, "tasks running": tasks_running}

    async def scale(self, count: int) -> float:
        started = time.perf_counter()
        await self.engine.scale(self.name, count)
        await until(f"{count} replicas routed", lambda: self.routed(count))
        return time.perf_counter() - started

    async def swarm_running_except(self, node_id: str, count: int) -> bool:
        def work() -> int:
            services = {s["ID"] for s in self.api.services(filters={"label": f"orchestry.app={self.name}"})}
            tasks = self.api.tasks(filters={"desired-state": "running"})
            return sum(
                1 for t in tasks
                if t["ServiceID"] in services and t["Status"]["State"] == "running" and t["NodeID"] != node_id
            )  # fmt: skip

        return await asyncio.to_thread(work) == count

    def busiest_worker(self, view: Any) -> dict[str, Any]:
        workers = [n for n in self.status["nodes"] if n["role"] == "worker"]
        return max(workers, key=lambda n: sum(1 for r in view.replicas if r.host == n["address"]))

    async def node_loss(self) -> dict[str, float]:
        await self.scale(6)
        worker = self.busiest_worker(await self.engine.get_app(self.name))
        self.lab("cut-link", worker["name"])
        try:
            rescheduled, routed = await asyncio.gather(
                until("Swarm's reschedule", lambda: self.swarm_running_except(worker["swarm_node_id"], 6)),
                until("6 routed on survivors", lambda: self.routed(6, avoid=worker["address"])),
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} (cut {worker['address']}); {await self.describe()}") from exc
        finally:
            self.lab("restore-link", worker["name"])
        await until("the node ready", lambda: self._node_state(worker["swarm_node_id"], "ready"))
        return {"routed": routed, "rescheduled": rescheduled, "after reschedule": routed - rescheduled}

    async def describe(self) -> str:
        """The app's replicas as the engine sees them, and its tasks as Swarm does (for a timeout)."""
        view = await self.engine.get_app(self.name)
        ours = f"status {view.status} ({view.status_reason}), desired {view.desired_replicas}: " + ", ".join(
            f"{r.name}@{r.host}:{r.port} {r.state} ready={r.ready}" + (f" ({r.reason})" if r.reason else "")
            for r in view.replicas
        )

        def tasks() -> str:
            services = {
                s["ID"]: s["Spec"]["Name"]
                for s in self.api.services(filters={"label": f"orchestry.app={self.name}"})
            }
            return (
                ", ".join(
                    f"{services[t['ServiceID']]} {t['ID'][:6]} on {t.get('NodeID', '')[:5]} "
                    f"{t['Status']['State']}/{t['DesiredState']}"
                    for t in self.api.tasks(filters={"service": list(services)})
                )
                if services
                else "none"
            )

        return f"replicas: {ours}; Swarm tasks: {await asyncio.to_thread(tasks)}"

    async def _node_state(self, node_id: str, state: str) -> bool:
        node = await asyncio.to_thread(self.api.inspect_node, node_id)
        return node["Status"]["State"] == state

    async def drain(self) -> dict[str, float]:
        await self.scale(6)
        worker = self.busiest_worker(await self.engine.get_app(self.name))
        url = f"http://{self.engine.settings.lb_listen}/{self.name}/"

        async def drained() -> bool:
            nodes = await self.engine.nodes()
            node = next(n for n in nodes if n.id == worker["swarm_node_id"])
            return node.availability == "drain"

        async with Traffic(url) as traffic:
            await asyncio.sleep(1.0)
            started = time.perf_counter()
            await self.engine.drain_node(worker["swarm_node_id"])
            await until("the node drained", drained)
            seconds = time.perf_counter() - started
            await asyncio.sleep(1.0)
        await self.engine.activate_node(worker["swarm_node_id"])
        return {"drained": seconds, "failed": float(traffic.failed), "sent": float(traffic.sent)}


@asynccontextmanager
async def orchestry_on(status: dict[str, Any]) -> AsyncIterator[Bench]:
    """A whole Engine on the lab with one app up (one replica routed); its Bench, stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="orchestry-bench-swarm-") as tmp:
        settings = load_settings(
            state_dir=Path(tmp) / "state",
            lb_listen=f"127.0.0.1:{free_port()}",
            port=free_port(),
            node_id=f"bench-{uuid.uuid4().hex[:6]}",
            runtime="swarm",
            docker_url=status["manager_url"],
            swarm_poll_interval=0.5,
            relist_interval=5.0,
            scaler_interval=1.0,
            metrics_interval=1.0,
            drain_timeout=5.0,
        )
        engine = Engine(settings)
        await engine.start()
        name = f"bench-{uuid.uuid4().hex[:6]}"
        bench = Bench(status, engine, name)
        try:
            await engine.register(app_document(status["image"], name))
            await engine.up(name)
            await until("1 replica routed", lambda: bench.routed(1))
            yield bench
        finally:
            bench.api.close()
            await engine.stop(stop_apps=True)
