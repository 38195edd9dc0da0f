"""A document that breaks one rule (a wrong type in any field, a number out of range, an unknown key, a
duplicate, an empty or too long name, a secret written where input is shown back...) is refused with a
SpecError naming that field, in words a person can act on, without echoing a secret value; as a mapping,
as JSON text and as YAML text alike.  A valid document round-trips through its canonical and its
redacted (shown) form.  Cases: tests/support/spec_cases.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.errors import SpecError
from core.spec import ScalingPolicy, parse_app_spec, refuse_redacted_values, validate_policy_update
from tests.support.spec_cases import (
    MAX_MESSAGE_CHARS,
    RULES,
    Case,
    has_sensitive_literals,
    invalid_cases,
    invalid_policy_changes,
    unfit_to_show,
    valid_documents,
)


def assert_names_the_field(error: SpecError, case: Case) -> None:
    assert any(message.startswith(case.field + " ") for message in error.errors), (case.what, error.errors)
    for message in error.errors:
        assert not unfit_to_show(message), (case.what, unfit_to_show(message), message)
        assert len(message) <= MAX_MESSAGE_CHARS, (case.what, len(message), message[:200])


def refusal(source: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_app_spec(source)
    return caught.value


@pytest.mark.parametrize("rule", RULES)
@given(data=st.data())
def test_a_document_breaking_one_rule_is_refused_naming_that_field(rule: str, data: st.DataObject) -> None:
    case = data.draw(invalid_cases(rules=[rule]))
    assert_names_the_field(refusal(case.document), case)
    assert_names_the_field(refusal(json.dumps(case.document)), case)
    assert_names_the_field(refusal(yaml.safe_dump(case.document, allow_unicode=True)), case)


@given(invalid_policy_changes(max_replicas=10))
def test_a_scaling_change_breaking_one_rule_is_refused_naming_that_field(
    change: tuple[dict[str, Any], str, str],
) -> None:
    changes, field, what = change
    with pytest.raises(SpecError) as caught:
        validate_policy_update(ScalingPolicy(max_replicas=10), changes)
    assert_names_the_field(caught.value, Case(changes, field, what))


@given(valid_documents())
def test_a_valid_document_round_trips_through_its_canonical_and_shown_forms(document: dict[str, Any]) -> None:
    spec = parse_app_spec(document)
    again = parse_app_spec(spec.to_document())
    assert again == spec and again.spec_hash() == spec.spec_hash()
    assert parse_app_spec(yaml.safe_dump(spec.to_document())) == spec
    shown = parse_app_spec(spec.redacted_document())
    if has_sensitive_literals(document):
        # "***" in place of a real value must not be applied back as the value.
        with pytest.raises(SpecError) as caught:
            refuse_redacted_values(shown)
        assert "DB_PASSWORD" in caught.value.message and "write the real value" in caught.value.message
    else:
        refuse_redacted_values(shown)
        assert shown == spec and shown.spec_hash() == spec.spec_hash()


# --- the exact examples the property tests found ---------------------------------------------------


@pytest.mark.parametrize("name", ["web\n", "DB\n"])
def test_a_name_with_a_trailing_newline_is_refused(name: str) -> None:
    """Found by the property test: the name patterns ended in "$", which also matches before a final
    newline, so "web\\n" registered (Docker refuses that container name; nginx got a file "web\\n.conf")."""
    error = refusal({"metadata": {"name": name.lower()}, "spec": {"image": "x"}})
    assert error.field == "metadata.name" and "is not a valid app name" in error.message
    error = refusal(
        {"metadata": {"name": "web"}, "spec": {"image": "x", "env": [{"name": name, "value": "1"}]}}
    )
    assert error.field == "spec.env[0].name" and "is not a valid environment variable name" in error.message
    error = refusal({"metadata": {"name": "web", "labels": {"team\n": "x"}}, "spec": {"image": "x"}})
    assert error.field == "metadata.labels.team\n"
    headers = [{"name": "X-Probe\n", "value": "1"}]
    error = refusal(
        {"metadata": {"name": "web"}, "spec": {"image": "x"}, "healthCheck": {"headers": headers}}
    )
    assert error.field == "healthCheck.headers[0].name"


SECRET = "pw-sentinel-4f9c2e1b"


@pytest.mark.parametrize(
    ("spec", "health", "field", "fix"),
    [
        ({"environment": [f"DB_PASSWORD={SECRET}"]}, None, "spec.environment[0]", "must be a mapping"),
        ({"environment": f"DB_PASSWORD={SECRET}"}, None, "spec.environment", "must be a list"),
        ({"env": [{"name": f"DB_PASSWORD={SECRET}", "value": ""}]}, None, "spec.env[0].name", "under value"),
        ({}, {"headers": [f"Authorization: Bearer {SECRET}"]}, "healthCheck.headers[0]", "must be a mapping"),
        ({}, {"headers": [{"name": f"Authorization: Bearer {SECRET}", "value": ""}]},
         "healthCheck.headers[0].name", "under value"),
    ],
    ids=["compose list", "compose text", "NAME=value as name", "header line", "header line as name"],
)  # fmt: skip
def test_a_secret_written_in_the_wrong_place_is_not_shown_back(
    spec: dict[str, Any], health: dict[str, Any] | None, field: str, fix: str
) -> None:
    """Found by the property test: a variable or probe header written as one text (compose's
    NAME=value, a whole header line) was echoed in the error, credential included."""
    document: dict[str, Any] = {"metadata": {"name": "web"}, "spec": {"image": "x", **spec}}
    if health is not None:
        document["healthCheck"] = health
    error = refusal(document)
    assert SECRET not in error.message
    assert error.field == field and fix in error.message, error.message


@pytest.mark.parametrize("blank", ["key", "field"])
def test_a_blank_secret_reference_is_refused(blank: str) -> None:
    """Found by the property test: key: " " passed as a secret name that no secret can ever have."""
    entry = {"name": "DB_PASSWORD", "source": "secret", "key": "db", "field": "password", blank: " "}
    error = refusal({"metadata": {"name": "web"}, "spec": {"image": "x", "environment": [entry]}})
    assert error.field == f"spec.environment[0].{blank}" and "is missing" in error.message


def test_long_input_is_cut_when_shown() -> None:
    """Found by the property test: a 5,000-character name came back whole in the message (4,217 chars)."""
    error = refusal({"metadata": {"name": "a" * 5000}, "spec": {"image": "x"}})
    assert error.field == "metadata.name" and len(error.message) < 200, len(error.message)
    error = refusal({"metadata": {"name": "web"}, "spec": {"image": "x", "resources": {"cpu": "9" * 5000}}})
    assert error.field == "spec.resources.cpu" and "out of range" in error.message
    assert len(error.message) < 200, len(error.message)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"environment": [{"name": "A", "value": "a\x00b"}]}, "spec.environment[0].value"),
        ({"command": ["/bin/serve", "a\x00b"]}, "spec.command[1]"),
    ],
    ids=["variable", "argument"],
)
def test_text_holding_a_nul_is_refused(spec: dict[str, Any], field: str) -> None:
    """Found by the property test, checked on Docker 20.10: an environment value with a NUL registered,
    then its container failed to start (500 from Docker); an argument with one was cut there."""
    error = refusal({"metadata": {"name": "web"}, "spec": {"image": "x", **spec}})
    assert error.field == field and "holds a NUL character" in error.message and "remove it" in error.message


@pytest.mark.parametrize("image", ["Orchestry/Demo", "image::tag", "a..b", "a:é", "a" * 256])
def test_an_image_docker_cannot_parse_is_refused(image: str) -> None:
    """Each registered, then every replica failed at create: "invalid reference format"."""
    error = refusal({"metadata": {"name": "web"}, "spec": {"image": image}})
    assert error.field == "spec.image" and "is not a Docker image reference" in error.message


@pytest.mark.parametrize(
    "image",
    ["orchestry/demo:latest", "x", "reg:5000/demo:1", "Registry.Example.com/team/app:v1.2_3", "a__b-c.d",
     "alpine:3.19@sha256:" + "b" * 64, "[::1]:5000/x:y"],
)  # fmt: skip
def test_image_references_docker_takes_are_accepted(image: str) -> None:
    assert parse_app_spec({"metadata": {"name": "web"}, "spec": {"image": image}}).container.image == image
