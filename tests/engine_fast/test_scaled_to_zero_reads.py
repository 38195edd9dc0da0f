"""An app scaled to 0 replicas read "running" with "0/0 replicas ready": a fault to anyone used to
Kubernetes (a Deployment at 0/0 is "scaled to zero") or compose (nothing running).  The API keeps its
status word (API.md fixes running | degraded | stopped for existing clients) and says it in the
reason; the tables for people say "scaled to 0"."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from orchestry_tui.cli import commands
from tests.support.world import MemoryWorld, app_document, unique_app


async def test_an_app_scaled_to_zero_keeps_the_api_word_and_says_why_in_its_reason(
    world: MemoryWorld, api: TestClient
) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    await world.engine.scale(name, 0)
    await world.settle(lambda: not world.runtime.running(name), "the last replica stopped")

    async def says_scaled_to_zero() -> bool:
        return (await world.engine.get_app(name)).status_reason.startswith("scaled to 0: ")

    await world.settle(says_scaled_to_zero, "the reason saying scaled to 0")
    view = await world.engine.get_app(name)
    assert view.status == "running"
    assert "nothing serves its traffic" in view.status_reason and "scale it up" in view.status_reason
    legacy = await (await api.get(f"/apps/{name}/status")).json()
    assert (legacy["status"], legacy["replicas"], legacy["ready_replicas"]) == ("running", 0, 0)
    described = await (await api.get(f"/api/v1/apps/{name}")).json()
    assert described["status"] == "running"
    assert described["status_reason"].startswith("scaled to 0: ")


class AnswersOf:
    """The CLI's client, answering each path with what the API answered it."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def get(self, path: str) -> Any:
        return self.answers[path]


async def test_orchestry_list_status_and_describe_say_scaled_to_0(
    world: MemoryWorld, api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_app()
    await world.engine.register(app_document(name, replicas=1))
    await world.engine.up(name)
    await world.ready(name, 1)
    await world.engine.scale(name, 0)

    async def says_scaled_to_zero() -> bool:
        return (await world.engine.get_app(name)).status_reason.startswith("scaled to 0: ")

    await world.settle(says_scaled_to_zero, "the reason saying scaled to 0")
    paths = ("/api/v1/apps", f"/api/v1/apps/{name}", f"/apps/{name}/metrics")
    client = AnswersOf({path: await (await api.get(path)).json() for path in paths})

    commands.list_apps(client, argparse.Namespace(format="table"))  # type: ignore[arg-type]
    [row] = [line for line in capsys.readouterr().out.splitlines() if name in line]
    assert "scaled to 0" in row and "running" not in row and "0/0" in row

    commands.status(client, argparse.Namespace(name=name, format="table"))  # type: ignore[arg-type]
    said = capsys.readouterr().out
    assert said.startswith(f"{name}: scaled to 0 — no replica is wanted, so nothing serves its traffic")
    assert "scaled to 0" not in said.split("—", 1)[1]  # said once

    commands.describe(client, argparse.Namespace(name=name, format="table", show_spec=False))  # type: ignore[arg-type]
    assert "status: scaled to 0 (no replica is wanted" in capsys.readouterr().out

    # Scripts keep reading the API's word.
    commands.list_apps(client, argparse.Namespace(format="json"))  # type: ignore[arg-type]
    listed = json.loads(capsys.readouterr().out)
    assert [a["status"] for a in listed["apps"] if a["name"] == name] == ["running"]
