"""Bad app documents sent to a real engine (Docker, nginx; SQLite and PostgreSQL stores) through every
register door of the API: each gets one 4xx whose detail names the broken field, never a 5xx, never a
secret value, and nothing changes: no app stored or updated, no event, no container started or replaced,
and the app already running under that name keeps its spec.  A valid document round-trips: what GET
shows applies again unchanged (or, when it shows "***" for a sensitive value, is refused naming it).

Cases come from tests/support/spec_cases.py (one rule broken each); example counts from the hypothesis
profile in tests/conftest.py.  Hypothesis runs in a worker thread with blocking HTTP calls while the
engine's loop serves them (as tests/api/test_fuzz.py does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import requests
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine import Engine
from core.store import Store
from tests.api.conftest import leading_api
from tests.conftest import unique_name
from tests.integration.harness import demo_app, wait_for
from tests.support.spec_cases import (
    RULES,
    SECRET_PASSWORD,
    SECRET_VALUES,
    Case,
    has_sensitive_literals,
    invalid_cases,
    invalid_policy_changes,
    unfit_to_show,
    valid_document,
    valid_documents,
)

# Every route that takes an app document; the 1.0 one and the v1 create/replace/dry run.
DOORS = [
    ("/apps/register", {}),
    ("/api/v1/apps", {"replace": "true"}),
    ("/api/v1/apps", {}),
    ("/api/v1/validate", {}),
]
PRIOR_MAX_REPLICAS = demo_app("x")["scaling"]["maxReplicas"]
APP_READS = [
    "/api/v1/apps", "/api/v1/apps/{name}", "/api/v1/apps/{name}/metrics", "/api/v1/apps/{name}/rollout",
    "/api/v1/apps/{name}/series?seconds=60", "/api/v1/overview", "/apps", "/apps/{name}/status",
    "/apps/{name}/metrics", "/apps/{name}/raw", "/metrics",
]  # fmt: skip
APP_EVALUATIONS = [
    ("/api/v1/apps/{name}/backtest", {"trace": "spike"}),
    ("/apps/{name}/simulateMetrics", {"rps": 1e6, "p95LatencyMs": 1e6, "activeConnections": 1e6,
                                      "cpuPercent": 100, "memoryPercent": 100, "evaluate": True}),
    ("/apps/{name}/simulateMetrics", {"rps": 0, "p95LatencyMs": 0, "cpuPercent": 0, "evaluate": True}),
]  # fmt: skip
API_EXAMPLES = 10  # per rule
REGISTER_EVENTS = ("app_registered", "app_updated", "policy_updated")


@dataclass
class World:
    """What the worker thread needs: the API's address, the store's URL and this installation's labels."""

    base_url: str
    database_url: str
    cluster_id: str
    prior: str  # an app running before the fuzzing starts; cases reuse its name

    def post(self, session: requests.Session, path: str, body: bytes, query: dict[str, str]) -> Any:
        return session.post(
            self.base_url + path,
            data=body,
            params=query,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )


def state(world: World, store: Store, client: docker.DockerClient) -> dict[str, Any]:
    """Everything a refused document must leave as it was."""
    apps = {
        record.name: (record.spec, record.raw, record.spec_hash, record.status, record.mode,
                      record.desired_replicas, record.policy, record.generation)
        for record in store.apps.list()
    }  # fmt: skip
    registrations = [
        event.id for event in store.events.query(category=None, limit=10_000) if event.kind in REGISTER_EVENTS
    ]
    containers = {
        container.id: (container.name, container.labels.get("orchestry.spec-hash"))
        for container in client.containers.list(
            all=True, filters={"label": f"orchestry.cluster={world.cluster_id}"}
        )
    }
    return {"apps": apps, "registrations": registrations, "containers": containers}


def judge(answer: requests.Response, field: str | None, what: str) -> None:
    """One 4xx naming ``field`` (when the case has one) with no secret and no untranslated words."""
    assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text[:500])
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and detail, (what, answer.text[:500])
    if field is not None:
        assert field in detail, (what, field, detail[:500])
    assert not unfit_to_show(detail), (what, unfit_to_show(detail), detail[:500])


def fuzz_refusals(world: World) -> list[str]:
    """Runs in a worker thread: every rule's cases, then malformed bodies, through every door; the
    failures found, each with the shrunk example."""
    failures: list[str] = []
    session = requests.Session()
    store = Store.open(world.database_url, upgrade=False)
    client = docker.from_env()
    try:
        before = state(world, store, client)
        assert world.prior in before["apps"] and before["containers"], "the prior app is not running"

        def unchanged(what: str) -> None:
            after = state(world, store, client)
            assert after == before, (what, before, after)

        def run(test: Callable[[], None], label: str) -> None:
            try:
                test()
            except Exception as exc:  # every rule's failure, then report them together
                failures.append(f"{label}: {str(exc)[:2000]}")

        for rule in RULES:
            # The rules in depth are tests/unit/test_spec_field_errors.py's; here each example is HTTP
            # calls, a store read and a Docker listing, so fewer of them, each through one door.
            @settings(max_examples=API_EXAMPLES)
            @given(invalid_cases(name=world.prior, rules=[rule]), st.sampled_from(DOORS))
            def refused(case: Case, door: tuple[str, dict[str, str]]) -> None:
                path, query = door
                judge(world.post(session, path, case.as_json(), query), case.field, f"{path}: {case.what}")
                unchanged(case.what)

            run(refused, rule)

        # The scaling block alone, as both route families change it on the running app.
        @settings(max_examples=API_EXAMPLES)
        @given(invalid_policy_changes(max_replicas=PRIOR_MAX_REPLICAS))
        def policy_refused(change: tuple[dict[str, Any], str, str]) -> None:
            changes, field, what = change
            body = json.dumps(changes).encode()
            judge(
                session.put(f"{world.base_url}/api/v1/apps/{world.prior}/scaling", data=body, timeout=30),
                field,
                what,
            )
            wrapped = json.dumps({"policy": changes}).encode()
            judge(world.post(session, f"/apps/{world.prior}/policy", wrapped, {}), field, what)
            unchanged(what)

        run(policy_refused, "scaling changes")

        @settings(max_examples=API_EXAMPLES)
        @given(malformed_bodies(world.prior), st.sampled_from(DOORS))
        def unreadable(body: bytes, door: tuple[str, dict[str, str]]) -> None:
            path, query = door
            judge(world.post(session, path, body, query), None, f"{path}: {body[:200]!r}")
            unchanged(repr(body[:200]))

        run(unreadable, "malformed bodies")
        # Secrets appear in no event (the prior app's own registration included).
        for event in store.events.query(limit=10_000):
            text = event.message + json.dumps(event.details)
            if any(secret in text for secret in SECRET_VALUES):
                failures.append(f"event {event.kind} holds a secret: {text[:300]}")
    finally:
        client.close()
        store.close()
        session.close()
    return failures


@st.composite
def malformed_bodies(draw: st.DrawFn, name: str) -> bytes:
    """Bodies that are not one JSON object: truncated, YAML, not UTF-8, another JSON type, too deep."""
    text = json.dumps(valid_document(name))
    kind = draw(st.sampled_from(["truncated", "yaml", "bytes", "not utf-8", "not an object", "deep", "text"]))
    if kind == "truncated":
        return text[: draw(st.integers(min_value=1, max_value=len(text) - 1))].encode()
    if kind == "yaml":
        return yaml.safe_dump(valid_document(name)).encode()
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "not utf-8":
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        return text[:cut].encode() + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + b"}"
    if kind == "not an object":
        other = draw(
            st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=10), st.none())
        )
        return json.dumps(other).encode()
    if kind == "deep":
        depth = draw(st.integers(min_value=65, max_value=3000))
        return ('{"metadata": ' * depth + "{}" + "}" * depth).encode()
    return draw(st.text(min_size=1, max_size=200)).encode("utf-8", "surrogatepass")


async def with_api(tmp_path: Path, database_url: str, body: Callable[[Engine, World], Any]) -> Any:
    """A leading engine serving the API, with one running app (a sensitive literal among its values)."""
    async with leading_api(tmp_path, database_url) as (engine, server):
        prior = unique_name("fz")
        document = demo_app(prior)
        document["spec"]["environment"] = [{"name": "DB_PASSWORD", "value": SECRET_PASSWORD}]
        await engine.register(document)
        await engine.up(prior)
        await wait_for(
            lambda: engine.live_app(prior) is not None and engine.live_app(prior).ready_replicas == 1,  # type: ignore[union-attr]
            timeout=60,
            what="the prior app's replica to be ready",
        )
        cluster_id = getattr(engine.runtime, "cluster_id", None)
        assert cluster_id, "the runtime labels containers with no cluster id"
        world = World(str(server.make_url("")).rstrip("/"), database_url, cluster_id, prior)
        return await body(engine, world)


async def test_bad_documents_get_a_4xx_naming_the_field_and_change_nothing(
    tmp_path: Path, database_url: str
) -> None:
    async def fuzz(_engine: Engine, world: World) -> list[str]:
        return await asyncio.to_thread(fuzz_refusals, world)

    failures = await with_api(tmp_path, database_url, fuzz)
    assert not failures, "\n\n".join(failures)


def round_trips(world: World) -> None:
    """Runs in a worker thread: register a valid document, then apply back what GET shows."""
    session = requests.Session()
    name = unique_name("rt")

    def describe() -> dict[str, Any]:
        answer = session.get(f"{world.base_url}/api/v1/apps/{name}", timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    @settings(max_examples=API_EXAMPLES)
    @given(valid_documents(name=name))
    def round_trip(document: dict[str, Any]) -> None:
        answer = world.post(session, "/api/v1/apps", json.dumps(document).encode(), {"replace": "true"})
        assert answer.status_code in (200, 201), answer.text
        first = describe()
        raw = session.get(f"{world.base_url}/apps/{name}/raw", timeout=30).json()["raw"]
        for shown in (first["spec"], raw):
            assert not any(secret in json.dumps(shown) for secret in SECRET_VALUES), shown
            body = json.dumps(shown).encode()
            preview = world.post(session, "/api/v1/validate", body, {})
            again = world.post(session, "/api/v1/apps", body, {"replace": "true"})
            if has_sensitive_literals(document):
                for answer in (preview, again):
                    judge(answer, "DB_PASSWORD", "a shown spec with *** applied back")
            else:
                assert preview.status_code == 200 and preview.json()["change"] == "unchanged", preview.text
                assert again.status_code == 200, again.text
            after = describe()
            assert after["spec"] == first["spec"]
        # Whatever register took, every read of the app takes too (extreme but valid numbers included).
        for path in APP_READS:
            answer = session.get(world.base_url + path.format(name=name), timeout=30)
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        for path, body in APP_EVALUATIONS:
            answer = world.post(session, path.format(name=name), json.dumps(body).encode(), {})
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])

    try:
        round_trip()
    finally:
        session.delete(f"{world.base_url}/api/v1/apps/{name}", timeout=30)
        session.close()


async def test_what_get_shows_applies_again_unchanged(tmp_path: Path, database_url: str) -> None:
    async def run(_engine: Engine, world: World) -> None:
        await asyncio.to_thread(round_trips, world)

    await with_api(tmp_path, database_url, run)
