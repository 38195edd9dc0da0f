"""Every API route the README and docs/ name, as `METHOD /path` or in a `curl` command, is one the
daemon serves (the OpenAPI document, which tests/api/test_openapi.py holds equal to the router)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.api.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METHODS = "GET|POST|PUT|DELETE"
NAMED = re.compile(rf"\b((?:(?:{METHODS}),\s*)*(?:{METHODS})) (/[\w{{}}/.-]*)")
CURL = re.compile(r"curl [^`\n]*")
CURL_PATH = re.compile(r"(?:\$API|https?://127\.0\.0\.1:8000)(/[\w{}/.-]*)")
BARE = re.compile(r"`(/api/v1/[\w{}/.-]+)")  # a path alone is read with GET


def served() -> dict[str, set[str]]:
    return {path: set(ops) for path, ops in openapi_document("docs").get("paths", {}).items()}


def named_routes() -> list[tuple[str, str, str]]:
    """(doc, method, path) for each route the docs name."""
    found = set()
    for doc in DOCS:
        text = doc.read_text()
        for methods, path in NAMED.findall(text):
            for method in re.split(r",\s*", methods):
                found.add((doc.name, method, path))
        found |= {(doc.name, "GET", path) for path in BARE.findall(text)}
        for command in CURL.findall(text):
            explicit = re.search(r"-X (\w+)", command)
            method = explicit.group(1) if explicit else ("POST" if " -d " in command else "GET")
            for path in CURL_PATH.findall(command):
                found.add((doc.name, method, path))
    return sorted(found)


def matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


ROUTES = named_routes()


def test_the_docs_name_routes_at_all() -> None:
    assert len(ROUTES) >= 20, ROUTES


@pytest.mark.parametrize(("doc", "method", "path"), ROUTES, ids=[f"{d}: {m} {p}" for d, m, p in ROUTES])
def test_a_named_route_is_served(doc: str, method: str, path: str) -> None:
    routes = served()
    methods = {m for template, ops in routes.items() if matches(template, path) for m in ops}
    assert methods, f"{doc} names {path}, which the API does not serve"
    assert method.lower() in methods, f"{doc} names {method} {path}; it answers {sorted(methods)}"
