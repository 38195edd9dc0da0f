"""Three real ``orchestry daemon`` processes on one PostgreSQL database, as the HA cluster runs.

The nodes share one state dir (so one apps' nginx prefix and one secret key, see README "HA cluster")
and one apps LB address; each has its own API port. Lease TTL and relist interval are short so a
failover takes seconds. ``DaemonCluster.close()`` leaves nothing behind: frozen nodes are thawed,
apps deleted through the leader, nodes stopped, both nginx stopped, stray containers removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from scripts.controller_lb import render_controller_config
from testkit.harness import docker, free_port

ORCHESTRY = str(Path(sys.executable).parent / "orchestry")
READY_PREFIX = "orchestry daemon ready:"
READY_TIMEOUT = 60.0


@dataclass
class Node:
    index: int
    node_id: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log_start: int = 0  # where this run's lines begin: a restart appends to the same log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, sig: signal.Signals) -> None:
        os.kill(self.process.pid, sig)

    def log(self, since_start: bool = False) -> str:
        """The node's log; ``since_start``: only this run's part of it."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[self.log_start if since_start else 0 :].decode(errors="replace")


@dataclass
class Answer:
    status: int  # 0 when no HTTP answer came (refused, timed out)
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""


async def call(
    url: str,
    method: str = "GET",
    body: Any = None,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One HTTP request; the JSON (or text) answer, or status 0 with the error."""
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.request(
                method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                text = await resp.text()
                try:
                    parsed: Any = json.loads(text)
                except ValueError:
                    parsed = text
                return Answer(resp.status, parsed, dict(resp.headers), time.monotonic() - started)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Answer(0, None, {}, time.monotonic() - started, repr(exc))


async def ready_replicas(url: str, name: str) -> int:
    """The app's ready replicas as a node's API reports them; -1 when it does not answer."""
    answer = await call(f"{url}/apps/{name}/status", timeout=5)
    return int(answer.body.get("ready_replicas", -1)) if answer.status == 200 else -1


class DaemonCluster:
    def __init__(self, base: Path, database_url: str, size: int = 3, lease_ttl: int = 3) -> None:
        self.base = base
        self.database_url = database_url
        self.size = size
        self.lease_ttl = lease_ttl
        self.state_dir = base / "state"
        self.apps_lb = f"127.0.0.1:{free_port()}"
        self.nodes: list[Node] = []
        self.apps: set[str] = set()
        self.controller_listen: str | None = None
        self._controller_prefix = base / "controller-lb"
        self._tag = uuid.uuid4().hex[:6]

    # --- nodes ------------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
        env.pop("LEADER_LEASE_TTL", None)
        env.pop("CLUSTER_NODE_ID", None)
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "HOME": str(home),
                "ORCHESTRY_DATABASE_URL": self.database_url,
                "LEADER_LEASE_TTL": str(self.lease_ttl),
                "ORCHESTRY_RELIST_INTERVAL": "5",
                "ORCHESTRY_DRAIN_TIMEOUT": "5",
                "ORCHESTRY_SCALER_INTERVAL": "1",
                "ORCHESTRY_METRICS_INTERVAL": "1",
            }
        )
        return env

    def spawn(self, index: int, port: int | None = None) -> Node:
        port = port or free_port()
        node_id = f"node{index}-{self._tag}"
        log_path = self.base / f"node{index}.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [ORCHESTRY, "daemon", "--port", str(port), "--lb-listen", self.apps_lb,
                 "--state-dir", str(self.state_dir), "--node-id", node_id],
                env=self._env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        node = Node(index, node_id, port, process, log_path, log_start)
        if index <= len(self.nodes):
            self.nodes[index - 1] = node
        else:
            self.nodes.append(node)
        return node

    async def wait_ready(self, node: Node) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            # This run's ready line: an earlier run on the same port said the same.
            if f"{READY_PREFIX} api={node.url}" in node.log(since_start=True):
                return
            if not node.alive:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"node {node.node_id} did not get ready; its log:\n{node.log()[-4000:]}")

    async def start(self) -> None:
        """Start the nodes one after the other: node 1 wins the first term."""
        for index in range(1, self.size + 1):
            node = self.spawn(index)
            await self.wait_ready(node)

    async def restart(self, node: Node) -> Node:
        # Same port: the controller LB's upstreams are fixed when it starts.
        fresh = self.spawn(node.index, node.port)
        await self.wait_ready(fresh)
        return fresh

    # --- cluster views ----------------------------------------------------------------------------
    async def cluster_status(self, node: Node, timeout: float = 2.0) -> dict[str, Any] | None:
        answer = await call(f"{node.url}/cluster/status", timeout=timeout)
        return answer.body if answer.status == 200 and isinstance(answer.body, dict) else None

    async def leaders(self, skip: tuple[Node, ...] = ()) -> list[Node]:
        """Every live node that says it leads (more than one would be split brain).

        Asked through /health, which answers without the database too."""
        live = [n for n in self.nodes if n.alive and n not in skip]
        answers = await asyncio.gather(*(call(f"{n.url}/health", timeout=3) for n in live))
        return [
            n
            for n, a in zip(live, answers, strict=True)
            if a.status == 200 and isinstance(a.body, dict) and a.body.get("is_leader")
        ]

    async def wait_leader(self, timeout: float = 30.0, not_in: tuple[Node, ...] = ()) -> Node:
        """The one node that leads, ``not_in`` (a dead or frozen old leader) left out of the poll."""
        deadline = time.monotonic() + timeout
        found: list[Node] = []
        while time.monotonic() < deadline:
            found = await self.leaders(skip=not_in)
            if len(found) == 1:
                return found[0]
            await asyncio.sleep(0.1)
        raise AssertionError(f"no single leader within {timeout} s (found {[n.node_id for n in found]})")

    # --- the controller LB ------------------------------------------------------------------------
    async def start_controller_lb(self) -> str:
        """nginx in front of the nodes' APIs (templates/controller-lb.conf.j2); returns its base URL."""
        listen = f"127.0.0.1:{free_port()}"
        config = render_controller_config(
            listen=listen, nodes=[f"127.0.0.1:{n.port}" for n in self.nodes], prefix=self._controller_prefix
        )
        (self._controller_prefix / "temp").mkdir(parents=True, exist_ok=True)
        path = self._controller_prefix / "nginx.conf"
        path.write_text(config)
        proc = await asyncio.create_subprocess_exec(
            "nginx", "-p", str(self._controller_prefix), "-c", str(path),
            "-e", str(self._controller_prefix / "error.log"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0, f"controller LB nginx did not start: {out.decode()}"
        self.controller_listen = listen
        return f"http://{listen}"

    # --- apps and containers ----------------------------------------------------------------------
    async def containers(self, app: str) -> dict[str, tuple[int, bool]]:
        """Container id → (slot, running) of ``app``, straight from Docker."""
        out = await docker(
            "ps", "-a", "--no-trunc", "--filter", f"label=orchestry.app={app}",
            "--format", '{{.ID}} {{.Label "orchestry.slot"}} {{.State}}',
        )  # fmt: skip
        found: dict[str, tuple[int, bool]] = {}
        for line in out.split("\n"):
            if line.strip():
                cid, slot, state = line.split()
                found[cid] = (int(slot), state == "running")
        return found

    # --- teardown ---------------------------------------------------------------------------------
    async def close(self) -> None:
        for node in self.nodes:
            if node.alive:
                with contextlib.suppress(ProcessLookupError):
                    node.send(signal.SIGCONT)
        with contextlib.suppress(AssertionError):
            leader = await self.wait_leader(timeout=20)
            for app in sorted(self.apps):
                await call(f"{leader.url}/api/v1/apps/{app}", "DELETE", timeout=60)
        for node in self.nodes:
            if node.alive:
                node.send(signal.SIGTERM)
        for node in self.nodes:
            try:
                await asyncio.wait_for(asyncio.to_thread(node.process.wait), 40)
            except TimeoutError:
                node.process.kill()
                await asyncio.to_thread(node.process.wait)
        for pid_file in (self.state_dir / "nginx" / "nginx.pid", self._controller_prefix / "nginx.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGQUIT)
        for app in self.apps:
            ids = list(await self.containers(app))
            if ids:
                with contextlib.suppress(AssertionError):
                    await docker("rm", "-f", *ids)
