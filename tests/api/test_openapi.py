"""The OpenAPI document describes exactly the routes the router serves."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from core.api.app import create_app
from core.engine import Engine
from tests.integration.harness import engine_settings


def router_operations(engine: Engine) -> set[tuple[str, str]]:
    app = create_app(engine, "n1")
    return {
        (resource.canonical, route.method.lower())
        for resource in app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }


def test_document_paths_and_methods_equal_the_router(tmp_path: Path) -> None:
    from core.api.openapi import openapi_document

    document = openapi_document("test")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    served = router_operations(Engine(engine_settings(tmp_path)))
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented routes the router does not serve"


def test_every_reference_resolves() -> None:
    from core.api.openapi import openapi_document

    document = openapi_document("test")
    schemas = document["components"]["schemas"]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                assert node["$ref"].split("/")[-1] in schemas, node["$ref"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


async def test_document_is_served_as_openapi_3_1(api: TestClient) -> None:
    response = await api.get("/api/v1/openapi.json")
    document = await response.json()
    assert response.status == 200 and document["openapi"] == "3.1.0"
    assert "/api/v1/apps/{name}/logs" in document["paths"]
