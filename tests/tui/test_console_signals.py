"""The real console process in a pseudo-terminal: a closed terminal or `kill` lets go of the lease at once,
and a console started beside a dead one applies its file when the dead one's lease runs out."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.engine import Engine
from tests.cli.conftest import ORCHESTRY
from tests.conftest import unique_name
from tests.integration.harness import demo_app, engine_settings, free_port, wait_for


@dataclass
class Console:
    process: subprocess.Popen[bytes]
    api: str
    master_fd: int

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=5) as response:
            return json.loads(response.read())

    def field(self, path: str, key: str) -> Any:
        """``key`` of the answer at ``path``, or None while the console is not answering yet."""
        try:
            return self.get(path)[key]
        except OSError:
            return None

    def is_leader(self) -> bool:
        return bool(self.field("/api/v1/cluster/status", "is_leader"))


def drain(fd: int) -> None:
    """Read the console's screen output and throw it away, so its writes never block on a full pty."""
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def start_console(state_dir: Path, spec_file: Path, lease_ttl: int) -> Console:
    master, slave = pty.openpty()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env.update(
        {
            "ORCHESTRY_STATE_DIR": str(state_dir),
            "ORCHESTRY_PORT": str(port),
            "ORCHESTRY_LB_LISTEN": f"127.0.0.1:{free_port()}",
            "ORCHESTRY_LEASE_TTL": str(lease_ttl),
            "TERM": "xterm-256color",
            "COLUMNS": "140",
            "LINES": "40",
        }
    )
    process = subprocess.Popen(
        [ORCHESTRY, "--apply", str(spec_file)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,  # its own session, so the pty is its controlling terminal
    )
    os.close(slave)
    threading.Thread(target=drain, args=(master,), daemon=True).start()
    return Console(process, f"http://127.0.0.1:{port}", master)


@pytest.fixture
def consoles(tmp_path: Path) -> Iterator[list[Console]]:
    started: list[Console] = []
    yield started
    for console in started:
        if console.process.poll() is None:
            console.process.kill()
            console.process.wait()
        os.close(console.master_fd)


def spec_file(tmp_path: Path, name: str, version: str) -> Path:
    path = tmp_path / f"{name}-{version}.yml"
    document = demo_app(name, metadata={"name": name, "labels": {"version": version}})
    path.write_text(yaml.safe_dump(document))
    return path


async def remove_everything(state_dir: Path, consoles: list[Console]) -> None:
    """The console leaves apps running by design: a fresh engine on its state dir takes them down."""
    for console in consoles:
        if console.process.poll() is None:
            console.process.send_signal(signal.SIGTERM)  # lets go of the lease for the clean-up engine
            console.process.wait(timeout=40)
    engine = Engine(engine_settings(state_dir, lease_ttl=3))
    await engine.start()
    try:
        await wait_for(engine.cluster.is_leader, timeout=20, what="the clean-up engine to lead")
        for view in await engine.list_apps():
            await engine.delete(view.name)
    finally:
        await engine.stop(stop_apps=True)


@pytest.mark.parametrize(
    ("sig", "exit_code"), [(signal.SIGHUP, 128 + signal.SIGHUP), (signal.SIGTERM, 0)], ids=["hangup", "term"]
)
async def test_a_signal_quits_the_console_and_releases_the_lease_at_once(
    tmp_path: Path, consoles: list[Console], sig: signal.Signals, exit_code: int
) -> None:
    state_dir = tmp_path / "state"
    name = unique_name("sig")
    console = start_console(state_dir, spec_file(tmp_path, name, "1"), lease_ttl=60)
    consoles.append(console)
    try:
        await wait_for(console.is_leader, timeout=60, what="the console to lead")
        await wait_for(
            lambda: console.field(f"/api/v1/apps/{name}", "ready_replicas") == 1, timeout=60, what="app ready"
        )
        console.process.send_signal(sig)
        assert console.process.wait(timeout=40) == exit_code
        # A lease of 60 s: only a released lease lets the next node lead within seconds.
        successor = Engine(engine_settings(state_dir, lease_ttl=60))
        await successor.start()
        try:
            await wait_for(successor.cluster.is_leader, timeout=10, what="the successor to lead at once")
            assert (await successor.get_app(name)).desired_replicas == 1, "the app keeps running"
        finally:
            await successor.stop()
    finally:
        await remove_everything(state_dir, consoles)


async def test_a_console_beside_a_dead_one_applies_its_file_once_the_lease_runs_out(
    tmp_path: Path, consoles: list[Console]
) -> None:
    state_dir = tmp_path / "state"
    name = unique_name("late")
    first = start_console(state_dir, spec_file(tmp_path, name, "1"), lease_ttl=5)
    consoles.append(first)
    try:
        await wait_for(first.is_leader, timeout=60, what="the first console to lead")
        first.process.kill()  # no chance to release the lease
        first.process.wait()
        second = start_console(state_dir, spec_file(tmp_path, name, "2"), lease_ttl=5)
        consoles.append(second)
        # It starts as a follower (no start failure), then applies its file as soon as it leads.
        await wait_for(lambda: second.field("/api/v1/cluster/status", "node_id"), timeout=60, what="API up")
        await wait_for(second.is_leader, timeout=30, what="the second console to take the expired lease")
        await wait_for(
            lambda: second.field(f"/api/v1/apps/{name}", "labels") == {"version": "2"},
            timeout=30,
            what="the second console's file applied",
        )
        assert second.process.poll() is None
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=40) == 0
    finally:
        await remove_everything(state_dir, consoles)
