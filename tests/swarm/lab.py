"""The Swarm lab (scripts/swarm_lab.sh) as Python objects for tests.

``lab_session()`` brings a lab up for a test session and removes it afterwards. Its ID comes from
$ORCHESTRY_LAB_ID, else from this checkout's path, so that two worktrees (or a worktree and the
integration checkout) testing at the same time never share, and never tear down, each other's lab. A
session holds a lock on its ID for its whole life; a second session of the same checkout takes the next
free ID. A session killed mid-way leaves its lab behind, and the next session with that ID removes it
first (``up`` always does), so nothing stale breaks a later run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "swarm_lab.sh"
LAB_ROOT = Path(os.environ.get("ORCHESTRY_LAB_ROOT", "/tmp/orchestry-swarm-lab"))
UP_TIMEOUT = 180.0
DOWN_TIMEOUT = 60.0
# A wait for Swarm (a restarted dockerd's node rejoining, removed services' tasks stopping), which a
# loaded machine stretches: once, 90 s ran out in a full run.
HEAL_TIMEOUT = 150.0
# How long heal lets Swarm hold a node down whose own engine says it is in the Swarm (its heartbeat
# grace is 3 s with the lab's 1 s period; a rejoin takes a second or two) before restarting its dockerd.
REJOIN_SECONDS = 15.0


class LabError(RuntimeError):
    pass


def run_script(*args: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
    """Run swarm_lab.sh; its stdout, or LabError with its stderr."""
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if result.returncode != 0:
        raise LabError(f"swarm_lab.sh {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class LabNode:
    name: str
    address: str
    docker_url: str
    tcp_url: str
    role: str
    netns: str
    switch_port: str
    swarm_node_id: str


@dataclass
class SwarmLab:
    id: str
    subnet: str
    controller_address: str
    manager_url: str
    registry: str
    image: str
    nodes: list[LabNode]
    dir: str
    # DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) of a lab whose node APIs speak TLS (up --tls).
    cert_path: str | None = None
    _clients: dict[str, docker.DockerClient] = field(default_factory=dict, repr=False)

    @classmethod
    def from_status(cls, status: dict) -> SwarmLab:
        return cls(
            id=status["id"],
            subnet=status["subnet"],
            controller_address=status["controller_address"],
            manager_url=status["manager_url"],
            registry=status["registry"],
            image=status["image"],
            nodes=[LabNode(**node) for node in status["nodes"]],
            dir=status["dir"],
            cert_path=status.get("cert_path"),
        )

    @classmethod
    def read(cls, lab_id: str) -> SwarmLab:
        return cls.from_status(json.loads(run_script("status", "--json", "--id", lab_id)))

    @property
    def manager(self) -> LabNode:
        return next(node for node in self.nodes if node.role == "manager")

    @property
    def workers(self) -> list[LabNode]:
        return [node for node in self.nodes if node.role == "worker"]

    def node(self, node: LabNode | str) -> LabNode:
        """A node by its lab name (n1…), hostname suffix, Swarm node id or itself."""
        if isinstance(node, LabNode):
            return node
        for candidate in self.nodes:
            if node in (candidate.name, candidate.swarm_node_id, candidate.netns):
                return candidate
        raise KeyError(f"no node {node!r} in lab {self.id}")

    def cut_link(self, node: LabNode | str) -> None:
        """Take the node off the lab network (its switch port down): a lost node, as Swarm sees it."""
        run_script("cut-link", self.node(node).name, "--id", self.id)

    def restore_link(self, node: LabNode | str) -> None:
        run_script("restore-link", self.node(node).name, "--id", self.id)

    def kill_dockerd(self, node: LabNode | str) -> None:
        """kill -9 the node's dockerd (its containers keep running, as on a real host)."""
        self._drop_client(self.node(node))
        run_script("kill-dockerd", self.node(node).name, "--id", self.id)

    def start_dockerd(self, node: LabNode | str) -> None:
        """Start the node's dockerd again and wait until it answers."""
        run_script("start-dockerd", self.node(node).name, "--id", self.id, timeout=90.0)

    def docker(self, node: LabNode | str | None = None) -> docker.DockerClient:
        """A client of the node's own engine (the manager's when no node is named)."""
        target = self.manager if node is None else self.node(node)
        client = self._clients.get(target.name)
        if client is None:
            client = docker.DockerClient(base_url=target.docker_url, timeout=30)
            self._clients[target.name] = client
        return client

    def swarm_node_state(self, node: LabNode | str) -> str:
        """'ready', 'down', … as the manager sees the node."""
        info = self.docker().nodes.get(self.node(node).swarm_node_id).attrs
        return info["Status"]["State"]

    def heal(self, timeout: float = HEAL_TIMEOUT) -> None:
        """Put the lab back as ``up`` left it: every link up, every dockerd running, every node active
        and ready, no service and no task left running. Called after each test, so a test that fails
        half-way (or leaves tasks shutting down) cannot change what the next one sees."""
        for node in self.nodes:
            self.restore_link(node)
            try:
                self.docker(node).ping()
            except Exception:
                self._drop_client(node)
                self.start_dockerd(node)
        deadline = time.monotonic() + timeout
        down_since: dict[str, float] = {}
        while True:
            try:
                not_ready = [n for n in self.docker().nodes.list() if n.attrs["Status"]["State"] != "ready"]
                self._rejoin_stuck(not_ready, down_since)
                # Named, not the SDK's objects: a timeout must say which node is in which state.
                unwell: list[object] = [
                    f"{n.attrs['Description']['Hostname']} {n.attrs['Status']['State']}"
                    f" ({n.attrs['Status'].get('Message', '')})"
                    for n in not_ready
                ]
                # A service a test left behind (it failed before cleaning up) goes; and tasks of removed
                # services still run for a moment (stop grace) while Swarm's scheduler counts them: the
                # next test would see its replicas placed by that residue.
                for service in self.docker().services.list():
                    service.remove()
                unwell += [
                    f"task {t['ID'][:12]} running on {t.get('NodeID', '?')[:12]}"
                    for t in self.docker().api.tasks()
                    if t["Status"]["State"] == "running"
                ]
                for node in self.docker().nodes.list():
                    spec = node.attrs["Spec"]
                    labels = {
                        k: v for k, v in (spec.get("Labels") or {}).items() if k != "orchestry.draining"
                    }
                    if spec.get("Availability") != "active" or labels != (spec.get("Labels") or {}):
                        node.update({**spec, "Availability": "active", "Labels": labels})
            except Exception as exc:  # the manager itself may still be starting
                unwell = [f"{type(exc).__name__}: {exc}"]
            if not unwell:
                return
            if time.monotonic() > deadline:
                raise LabError(f"lab {self.id} did not heal within {timeout:.0f} s: {unwell}")
            time.sleep(0.2)

    def _rejoin_stuck(self, not_ready: list[docker.models.nodes.Node], down_since: dict[str, float]) -> None:
        """Restart the dockerd of a node Swarm has held down for REJOIN_SECONDS while its own engine
        says it is in the Swarm. A dockerd restarted just as the manager expired its previous session
        is marked down ("heartbeat failure") after it registered again, and heartbeats never set a node
        ready (only a registration does): seen after test_heal's kill, down for good. Restarting
        registers it again, as an operator would."""
        now = time.monotonic()
        for stale in set(down_since) - {n.id for n in not_ready}:
            del down_since[stale]
        for swarm_node in not_ready:
            since = down_since.setdefault(swarm_node.id, now)
            if now - since < REJOIN_SECONDS:
                continue
            node = self.node(swarm_node.id)
            try:
                joined = self.docker(node).info()["Swarm"]["LocalNodeState"] == "active"
            except Exception:
                joined = False  # its dockerd is not answering: nothing to restart yet
            if joined:
                with contextlib.suppress(LabError):
                    self.kill_dockerd(node)
                self.start_dockerd(node)
                down_since[swarm_node.id] = time.monotonic()

    def _drop_client(self, node: LabNode) -> None:
        client = self._clients.pop(node.name, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        for name in list(self._clients):
            self._clients.pop(name).close()


def _checkout_id() -> str:
    return "t" + hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:5]


@contextlib.contextmanager
def _session_lock(kind: str = "") -> Iterator[str]:
    """An ID no other live session uses, locked until the session ends; ``kind`` (one letter) tells a
    second lab of the same session apart (the TLS lab: "x")."""
    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    wanted = os.environ.get("ORCHESTRY_LAB_ID")
    if wanted:
        candidates = [wanted[: 8 - len(kind)] + kind]
    else:
        candidates = [_checkout_id() + suffix + kind for suffix in ("", *"bcdefgh")]
    handle: IO[str] | None = None
    for lab_id in candidates:
        handle = (LAB_ROOT / f".session-{lab_id}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield lab_id
        finally:
            handle.close()
        return
    raise LabError(f"every lab ID {candidates} is in use by a live test session")


@contextlib.contextmanager
def lab_session(tls: bool = False, nodes: int | None = None) -> Iterator[SwarmLab]:
    """A lab for this session: ``tls`` gives node APIs on :2376 with TLS (a lab of its own, ID + "x");
    ``nodes``: how many (default 3)."""
    env = {**os.environ, **({"ORCHESTRY_LAB_NODES": str(nodes)} if nodes else {})}
    with _session_lock("x" if tls else "") as lab_id:
        try:
            run_script("up", "--id", lab_id, *(["--tls"] if tls else []), timeout=UP_TIMEOUT, env=env)
            lab = SwarmLab.read(lab_id)
        except BaseException:
            with contextlib.suppress(Exception):
                run_script("down", "--id", lab_id, timeout=DOWN_TIMEOUT)
            raise
        try:
            yield lab
        finally:
            lab.close()
            run_script("down", "--id", lab_id, timeout=DOWN_TIMEOUT)
