"""A spec shown by `orchestry spec` (sensitive values as "***") and submitted back is refused, naming the
field: a health check's Authorization header of "***" would make every probe fail with 401.  A spec
already stored with "***" (before this check, or written by hand) still parses: the reconciler and a
scaling change parse stored specs again, and must not start failing on them."""

from __future__ import annotations

import pytest

from core.errors import SpecError
from core.spec import parse_app_spec, redact_document, refuse_redacted_values


def document(header: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": "web"},
        "spec": {"image": "orchestry/demo:latest", "ports": [{"containerPort": 8080}]},
        "healthCheck": {"path": "/health", "headers": [{"name": "Authorization", "value": header}]},
    }


def test_a_redacted_health_check_header_submitted_back_is_refused_naming_it() -> None:
    real = parse_app_spec(document("Bearer s3cr3t-token"))
    refuse_redacted_values(real)
    shown = parse_app_spec(redact_document(real.to_document()))  # a stored spec like this still parses
    with pytest.raises(SpecError) as refused:
        refuse_redacted_values(shown)
    message = str(refused.value)
    assert refused.value.field == "healthCheck.headers[0].value"
    assert (
        "healthCheck.headers[0].value" in message and "Authorization" in message and "real value" in message
    )


def test_three_stars_in_a_header_that_is_never_redacted_is_a_value_like_any_other() -> None:
    doc = document("x")
    doc["healthCheck"] = {"headers": [{"name": "X-Probe", "value": "***"}]}
    refuse_redacted_values(parse_app_spec(doc))
