"""Every answer is a wire model: no route module builds a JSON object by hand, and every JSON answer
the OpenAPI document describes is a generated component (so a route added in the old style fails here,
naming the line)."""

from __future__ import annotations

import ast
from pathlib import Path

import core.api
from core.api.openapi import openapi_document

API_DIR = Path(core.api.__file__).parent


def test_no_route_answers_with_a_hand_built_object() -> None:
    found = []
    for module in sorted(API_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "json_response"
                and node.args
                and isinstance(node.args[0], ast.Dict | ast.DictComp)
            ):
                found.append(f"{module.name}:{node.lineno}")
    assert not found, f"answer with a model of core/api/wire.py instead of a dict at {', '.join(found)}"


def test_every_documented_json_answer_and_body_is_a_generated_model() -> None:
    document = openapi_document("test")
    schemas = document["components"]["schemas"]
    inline = []
    for path, operations in document["paths"].items():
        if path == "/api/v1/openapi.json":
            continue  # the document itself
        for method, op in operations.items():
            contents = [r.get("content", {}) for r in op["responses"].values()]
            contents.append(op.get("requestBody", {}).get("content", {}))
            for content in contents:
                schema = content.get("application/json", {}).get("schema")
                if schema is not None and schema.get("$ref", "").split("/")[-1] not in schemas:
                    inline.append(f"{method.upper()} {path}")
    assert not inline, f"JSON not described by a wire model: {sorted(set(inline))}"
