"""Whatever arrives — random structures, mutated valid documents, random text — parse_app_spec either
returns an AppSpec or raises SpecError whose message names a field.  Nothing else may escape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import SpecError
from core.spec import AppSpec, ScalingPolicy, parse_app_spec, validate_policy_update

EXAMPLE = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "examples" / "api-md-example.yml").read_text()
)
KEYS = [
    "apiVersion", "kind", "metadata", "name", "labels", "spec", "image", "type", "command", "args", "ports",
    "containerPort", "protocol", "resources", "cpu", "memory", "environment", "env", "value", "source", "key",
    "field", "loadBalancing", "terminationGracePeriodSeconds", "scaling", "mode", "minReplicas",
    "maxReplicas", "scaleInThresholdPct", "scaleOutThresholdPct", "healthCheck", "path", "port", "headers",
    "periodSeconds",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["500m", "256Mi", "12Qi", "v1", "App", "web", "/health", "secret", "auto", "0"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
    max_leaves=25,
)


def check(source: Any) -> None:
    try:
        spec = parse_app_spec(source)
    except SpecError as error:
        assert error.message
        assert error.errors and all(isinstance(message, str) and message for message in error.errors)
        assert error.message == "; ".join(error.errors) or len(error.errors) == 1
        return
    assert isinstance(spec, AppSpec)
    # Anything accepted round-trips through its canonical document with the same hash.
    again = parse_app_spec(spec.to_document())
    assert again == spec
    assert again.spec_hash() == spec.spec_hash()
    json.dumps(spec.to_document())  # the canonical document is plain JSON


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=6))
def test_random_documents_parse_or_raise_spec_error(document: dict[str, Any]) -> None:
    check(document)


@settings(max_examples=100, deadline=None)
@given(values)
def test_random_values_of_any_shape_parse_or_raise_spec_error(value: Any) -> None:
    check(value)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, item in node.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(_paths(item, (*prefix, index)))
    return found


EXAMPLE_PATHS = _paths(EXAMPLE)


@st.composite
def mutated_examples(draw: st.DrawFn) -> Any:
    document = json.loads(json.dumps(EXAMPLE))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(EXAMPLE_PATHS))
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(keys)] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation already removed or replaced this branch
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_mutated_valid_documents_parse_or_raise_spec_error(document: Any) -> None:
    check(document)


@settings(max_examples=100, deadline=None)
@given(mutated_examples())
def test_mutated_documents_as_yaml_and_json_text_behave_the_same(document: Any) -> None:
    try:
        as_json = json.dumps(document)
    except ValueError:
        return
    try:
        from_json: Any = parse_app_spec(as_json)
    except SpecError as error:
        from_json = error.errors
    try:
        from_yaml: Any = parse_app_spec(yaml.safe_dump(document))
    except SpecError as error:
        from_yaml = error.errors
    if isinstance(from_json, AppSpec) or isinstance(from_yaml, AppSpec):
        assert from_json == from_yaml


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_parses_or_raises_spec_error(text: str) -> None:
    check(text)


YAML_ALPHABET = st.sampled_from([*":-[]{},&*!|>'\"#%@` \n\tabc01?~.=", "\ufeff", "\x00", "é"])


@settings(max_examples=300, deadline=None)
@given(st.text(YAML_ALPHABET, max_size=80))
def test_yaml_syntax_soup_parses_or_raises_spec_error(text: str) -> None:
    check(text)
    check(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100))
def test_random_bytes_parse_or_raise_spec_error(data: bytes) -> None:
    check(data)


def test_yaml_alias_bombs_and_loops_are_spec_errors() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    check("metadata: {name: web}\nspec: {image: x}\n" + bomb)
    check("metadata: &m {name: web, labels: *m}\nspec: {image: x}\n")
    check("metadata: {name: web}\nspec: &s {image: x, args: [*s]}\n")
    check("[" * 5000 + "]" * 5000)
    check("{" * 5000 + "}" * 5000)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, values, max_size=4))
def test_random_policy_updates_give_a_policy_or_spec_error(changes: dict[str, Any]) -> None:
    try:
        policy = validate_policy_update(ScalingPolicy(), changes)
    except SpecError as error:
        assert error.errors and (error.field or "").startswith("scaling")
        return
    assert policy.min_replicas <= policy.max_replicas
    assert policy.scale_in_threshold_pct < policy.scale_out_threshold_pct
