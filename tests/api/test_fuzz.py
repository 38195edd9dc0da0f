"""schemathesis against the OpenAPI document, on SQLite and on PostgreSQL: no 5xx, every answer matches
its documented schema, on every route the server has (the leadership DELETE included, fuzzed last since
releasing the lease makes later writes a documented 503)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from core.api.app import create_app
from core.api.openapi import openapi_document
from tests.api.conftest import leading_api
from tests.conftest import unique_name
from tests.integration.harness import demo_app

# Releasing the lease makes every later write a (documented) 503: fuzzed after everything else.
LAST = ("DELETE", "/api/v1/cluster/leadership")
EXAMPLES_PER_OPERATION = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fuzz_operations(base_url: str) -> tuple[list[str], Counter[int]]:
    """Runs in a worker thread (schemathesis calls are blocking); returns the failures found and the
    status codes answered."""
    schema = schemathesis.openapi.from_dict(openapi_document("fuzz"))
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper(), op.path) == LAST)
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, session=session, timeout=30)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    return failures, statuses


def test_the_openapi_document_names_every_route_the_server_has() -> None:
    """schemathesis only reaches documented routes: an undocumented one would never be fuzzed."""
    documented = {
        (method.upper(), path) for path, item in openapi_document("x")["paths"].items() for method in item
    }
    app = create_app(None, "routes")  # type: ignore[arg-type]  # the router only, nothing is served
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert LAST in served


async def test_fuzzing_finds_no_server_errors_or_schema_violations(tmp_path: Path, database_url: str) -> None:
    async with leading_api(tmp_path, database_url) as (engine, server):
        # One registered app so operations on an existing name are reachable too.
        name = unique_name("fz")
        await engine.register(demo_app(name))
        base_url = str(server.make_url("")).rstrip("/")
        run: Callable[[str], tuple[list[str], Counter[int]]] = fuzz_operations
        failures, statuses = await asyncio.to_thread(run, base_url)
    store = database_url.split(":")[0]
    print(f"\n{sum(statuses.values())} fuzzed requests on {store}: {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures)
    assert not [status for status in statuses if status >= 500], statuses


async def test_event_filters_with_a_nul_byte_are_refused_or_empty_on_both_stores(
    tmp_path: Path, database_url: str
) -> None:
    """Found by the fuzzer on PostgreSQL (which refuses NUL in a string): ``/events?app=<NUL>`` was a 500."""
    async with leading_api(tmp_path, database_url) as (engine, server), TestClient(server) as client:
        name = unique_name("nul")
        await engine.register(demo_app(name))
        for path in (
            "/events?type=a%00b",
            "/api/v1/events?type=a%00b",
            f"/api/v1/apps/{name}/events?type=%00",
        ):
            answer = await client.get(path)
            assert answer.status == 400, (path, await answer.text())
            assert "query parameter 'type' must be one of" in (await answer.json())["detail"]
        answer = await client.get("/events?app=a%00b")
        assert answer.status == 200 and (await answer.json())["events"] == []
